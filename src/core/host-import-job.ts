/**
 * A host import run as a background job: its record in the job store (progress between
 * accounts, a cancel asked through any process sharing the state), its metrics, the audit line
 * of its end, and the signed completion callback (src/core/webhooks.ts). The face that accepted
 * the upload answers at once with the job. Each account's outcome goes to the job's users file
 * as it is final (outcome-file.ts), not into memory: the job's result lists them from there.
 */
import { randomUUID } from 'node:crypto';
import type { HostAccountOutcome, HostImportResult } from '../transfer/host-transfer.js';
import { outgoingClient } from '../lib/net/outgoing.js';
import type { AuditEntry } from './audit.js';
import type { ServiceContext } from './context.js';
import type { JobProgress, JobRecord, JobStore } from './job-store.js';
import { OutcomeFile } from './outcome-file.js';
import { deliverWebhook } from './webhooks.js';

export interface HostImportJobSpec {
  readonly host: string;
  /** Accounts in the document. */
  readonly total: number;
  /** The document's size, for the progress estimate. */
  readonly totalBytes?: number;
  /** Records and bytes the apply pass has read so far (it updates them). */
  readonly counted: { readonly records: number; readonly bytes: number };
  /** Where the job's end is POSTed, signed with webhooks.secret. */
  readonly callback?: URL;
  /** The audit line of the job's end, less its outcome. */
  readonly audit: Omit<AuditEntry, 'outcome' | 'reason' | 'counts'>;
  readonly log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/**
 * Starts `run` as a job and returns its record. `run` is told of each account's end (its
 * progress, and its outcome, which it must hand to `onOutcome` rather than keep in its result)
 * and is given the signal a cancel aborts; it must release what it holds however it ends.
 */
export function startHostImportJob(
  ctx: Pick<ServiceContext, 'config' | 'metrics' | 'audit'>,
  jobs: JobStore,
  spec: HostImportJobSpec,
  run: (onProgress: (done: number, failed: number) => void, onOutcome: (outcome: HostAccountOutcome) => void, signal: AbortSignal) => Promise<HostImportResult>,
): JobRecord {
  const { config, metrics, audit } = ctx;
  const abort = new AbortController();
  const progressOf = (done: number, failed: number): JobProgress => ({
    done,
    failed,
    total: spec.total,
    records: spec.counted.records,
    bytes: spec.counted.bytes,
    ...(spec.totalBytes !== undefined ? { totalBytes: spec.totalBytes, estimate: spec.totalBytes > 0 ? Math.min(1, spec.counted.bytes / spec.totalBytes) : 1 } : {}),
  });
  const job = jobs.create({ id: randomUUID(), type: 'host-import', host: spec.host, progress: progressOf(0, 0) });
  metrics.inc('xporta_jobs_total', { type: 'host-import', state: 'started' });
  let last = { done: 0, failed: 0 };
  let users: OutcomeFile;
  try {
    users = new OutcomeFile(jobs.usersFile(job.id), config.files.mode);
  } catch (err) {
    jobs.finish(job.id, 'failed', { error: err instanceof Error ? err.message : String(err) });
    throw err;
  }
  const notify = (): void => {
    const secret = config.webhooks.secret;
    if (!spec.callback || secret === undefined) return;
    const ended = jobs.get(job.id);
    void deliverWebhook(outgoingClient(config), { ...config.webhooks, secret }, spec.callback, { event: 'job.finished', job: ended }, {
      onAttemptFailed: (attempt, reason) => spec.log.warn({ job: job.id, attempt, reason }, 'job callback not delivered'),
    }).then((outcome) => {
      if (outcome.delivered) spec.log.info({ job: job.id, attempts: outcome.attempts }, 'job callback delivered');
      else spec.log.warn({ job: job.id, attempts: outcome.attempts }, 'job callback given up');
    });
  };
  const ran = async (): Promise<HostImportResult> => {
    const result = await run(
      (done, failed) => {
        last = { done, failed };
        // A cancel asked through any process sharing the state is seen here, between accounts.
        if (jobs.progress(job.id, progressOf(done, failed))) abort.abort();
      },
      (outcome) => users.add(outcome),
      abort.signal,
    );
    // Outcomes left in the result (none when `run` handed them all over) go to the file too.
    for (const outcome of result.users) users.add(outcome);
    users.close();
    return { ...result, users: [] };
  };
  void ran().then(
    (result) => {
      const state = abort.signal.aborted ? 'cancelled' : 'succeeded';
      jobs.finish(job.id, state, { result, usersInFile: true, progress: progressOf(result.progress.done, result.progress.failed) });
      metrics.inc('xporta_jobs_total', { type: 'host-import', state });
      audit.record({
        ...spec.audit,
        outcome: state === 'succeeded' ? 'ok' : 'failed',
        ...(state === 'cancelled' ? { reason: 'cancelled' } : {}),
        counts: { users: result.progress.done, failed: result.progress.failed },
      });
      notify();
    },
    (err: unknown) => {
      users.remove();
      const reason = err instanceof Error ? err.message : String(err);
      jobs.finish(job.id, 'failed', { error: reason, progress: progressOf(last.done, last.failed) });
      metrics.inc('xporta_jobs_total', { type: 'host-import', state: 'failed' });
      audit.record({ ...spec.audit, outcome: 'failed', reason });
      notify();
    },
  );
  return job;
}
