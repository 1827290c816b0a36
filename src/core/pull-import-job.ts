/**
 * A pull-import ({@link pullImport}) run as a background job: the face answers as soon as the
 * account's lease is held and the remote login succeeded, so that a busy account, a missing
 * account, a full set of slots or a wrong password are still answered at once; from then on
 * the job's record carries the progress (records and archived messages read, against the
 * archive size the remote server announced) and, at the end, the report or the failure.
 *
 * The job's record names the local account (`host` holds its JID) and the remote JID in its
 * report: never the password. A cancel asked through any process sharing the state aborts the
 * pull at its next record; the import is then rolled back whole.
 */
import { randomUUID } from 'node:crypto';
import type { AuditEntry } from './audit.js';
import type { ServiceContext } from './context.js';
import type { JobProgress, JobRecord, JobStore } from './job-store.js';
import { pullImport, type PullImportProgress, type PullImportRequest, type PullImportServices } from './pull-import.js';

export const PULL_IMPORT_JOB = 'xmpp-import';

/** Progress is written to the job store at most this often (a write per message would cost more than the import). */
const PROGRESS_EVERY_MS = 250;

export interface PullImportJobSpec {
  /** The audit line of the job's end, less its outcome. */
  readonly audit: Omit<AuditEntry, 'outcome' | 'reason' | 'counts'>;
}

function jobProgress(progress: PullImportProgress, ended?: 'ok' | 'failed'): JobProgress {
  const { records, messages, archiveTotal } = progress;
  return {
    done: ended === undefined ? 0 : 1,
    failed: ended === 'failed' ? 1 : 0,
    total: 1,
    records,
    bytes: 0,
    messages,
    ...(archiveTotal !== undefined ? { archiveTotal, estimate: archiveTotal > 0 ? Math.min(1, messages / archiveTotal) : 1 } : {}),
  };
}

/**
 * Starts the pull-import and resolves with its job once it is under way; rejects, with no job
 * made, when it fails before that (busy, no such account, login refused, …).
 */
export function startPullImportJob(
  services: PullImportServices & Pick<ServiceContext, 'metrics' | 'audit'>,
  jobs: JobStore,
  request: Omit<PullImportRequest, 'signal' | 'onStarted' | 'onProgress'>,
  spec: PullImportJobSpec,
): Promise<JobRecord> {
  const { metrics, audit } = services;
  const abort = new AbortController();
  let job: JobRecord | undefined;
  let progress: PullImportProgress = { records: 0, messages: 0 };
  let written = 0;
  return new Promise<JobRecord>((resolve, reject) => {
    pullImport(services, {
      ...request,
      signal: abort.signal,
      onStarted: () => {
        job = jobs.create({ id: randomUUID(), type: PULL_IMPORT_JOB, host: request.jid, progress: jobProgress(progress) });
        metrics.inc('xporta_jobs_total', { type: PULL_IMPORT_JOB, state: 'started' });
        resolve(job);
      },
      onProgress: (now) => {
        progress = now;
        if (!job || Date.now() - written < PROGRESS_EVERY_MS) return;
        written = Date.now();
        // A cancel asked through any process sharing the state is seen here.
        if (jobs.progress(job.id, jobProgress(progress))) abort.abort();
      },
    }).then(
      (report) => {
        if (!job) return reject(new Error('the pull-import ended without starting'));
        jobs.finish(job.id, 'succeeded', { result: report, progress: jobProgress(progress, 'ok') });
        metrics.inc('xporta_jobs_total', { type: PULL_IMPORT_JOB, state: 'succeeded' });
        const counts: Record<string, number> = {};
        for (const [kind, n] of Object.entries(report.counts)) if (typeof n === 'number') counts[kind] = n;
        audit.record({ ...spec.audit, outcome: 'ok', counts });
      },
      (err: unknown) => {
        if (!job) return reject(err);
        const state = abort.signal.aborted ? 'cancelled' : 'failed';
        const reason = state === 'cancelled' ? 'cancelled; nothing was written' : err instanceof Error ? err.message : String(err);
        jobs.finish(job.id, state, { error: reason, progress: jobProgress(progress, 'failed') });
        metrics.inc('xporta_jobs_total', { type: PULL_IMPORT_JOB, state });
        audit.record({ ...spec.audit, outcome: 'failed', reason });
      },
    );
  });
}
