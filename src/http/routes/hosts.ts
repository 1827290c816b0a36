/**
 * Whole-host endpoints (operator tokens only) and background job status.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { exportHostDocument, importHostDocument, validateHostDocument, type HostImportResult } from '../../transfer/host-transfer.js';
import { JOBS_FILE, JobStore, type JobProgress, type JobRecord } from '../../core/job-store.js';
import type { DocumentEvent } from '../../records/model.js';
import { outgoingClient } from '../../lib/net/outgoing.js';
import { deliverWebhook } from '../../core/webhooks.js';
import { readDocument } from '../../xep0227/reader.js';
import { writeDocument } from '../../xep0227/writer.js';
import { actorOf, auditNote } from '../audit-trail.js';
import { guardHost, principalOf, type ServiceContext } from '../context.js';
import { attachmentDisposition } from '../download.js';
import { directoryModeFor } from '../../lib/private-files.js';
import { spoolHostUpload } from '../host-upload.js';
import { problems } from '../problem.js';
import { importBody } from '../upload.js';
import { booleanParam, countBytes, kindsOrProblem, toProblem } from './users.js';
import { routeSchemas } from '../schemas/routes.js';

interface HostParams {
  host: string;
}

interface HostImportQuery {
  include?: string;
  exclude?: string;
  mode?: string;
  dryRun?: string;
  createAccount?: string;
  async?: string;
  callbackUrl?: string;
}

/** Progress is logged every this many accounts. */
const LOG_EVERY_USERS = 100;

export const hostRoutes: FastifyPluginAsync<{ ctx: ServiceContext }> = async (app, { ctx }) => {
  const { config, storage } = ctx;
  const jobs = ctx.jobs ?? JobStore.open(join(config.dataDir, JOBS_FILE), config.files.mode);

  app.get<{ Params: HostParams; Querystring: { include?: string; exclude?: string } }>('/v1/hosts/:host/export', { schema: routeSchemas.exportHost, config: { guard: { host: 'export' } } }, async (request, reply) => {
    const host = guardHost(ctx, request, request.params.host, 'export');
    const kinds = kindsOrProblem(request.query);
    auditNote(request, { host, kinds: [...kinds] });
    const abort = new AbortController();
    const timed = ctx.metrics.time('host_export');
    let counted = false;
    const finished = (outcome: 'ok' | 'error'): void => {
      if (counted) return;
      counted = true;
      timed(outcome);
      ctx.metrics.inc('xporta_host_transfers_total', { direction: 'export', dry_run: 'false', outcome });
    };
    reply.raw.on('finish', () => finished('ok'));
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
      finished(reply.raw.writableFinished ? 'ok' : 'error');
    });
    const events = exportHostDocument(storage, host, kinds, {
      signal: abort.signal,
      onUser: (user, progress) => {
        if (progress.done % LOG_EVERY_USERS === 0) request.log.info({ host, exported: progress.done, last: user }, 'host export progress');
      },
    });
    let body: Readable = Readable.from(
      countBytes(
        writeDocument(events, {
          onInvalidChars: (r) =>
            request.log.warn({ host, user: r.user, kind: r.kind, detail: r.detail, codePoint: r.codePoint }, 'stored text XML 1.0 cannot carry was exported with U+FFFD in its place'),
        }),
        (n) => ctx.metrics.inc('xporta_bytes_streamed_total', { direction: 'export' }, n),
      ),
    );
    if (/\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''))) {
      const gzip = createGzip();
      body.on('error', (err) => gzip.destroy(err));
      body = body.pipe(gzip);
      reply.header('content-encoding', 'gzip');
    }
    return reply
      .header('content-type', 'application/xml; charset=utf-8')
      .header('content-disposition', attachmentDisposition(`${host}.xml`))
      .header('vary', 'accept-encoding')
      .send(body);
  });

  app.put<{ Params: HostParams; Querystring: HostImportQuery }>('/v1/hosts/:host/import', { schema: routeSchemas.importHost, config: { guard: { host: 'import' }, upload: true } }, async (request, reply) => {
    const host = guardHost(ctx, request, request.params.host, 'import');
    const kinds = kindsOrProblem(request.query);
    const mode = request.query.mode ?? 'merge';
    if (mode !== 'replace' && mode !== 'merge') throw problems.badRequest('mode must be replace or merge');
    const dryRun = booleanParam('dryRun', request.query.dryRun);
    const createAccount = booleanParam('createAccount', request.query.createAccount);
    const runAsync = booleanParam('async', request.query.async);
    const callback = callbackOf(request.query.callbackUrl, runAsync, config.webhooks.secret);
    auditNote(request, { host, kinds: [...kinds], mode, dryRun });
    // A `<host>` root (ejabberd's export_piefxis_host) is one host; credentials are not read when excluded.
    const readerLimits = {
      maxDepth: config.limits.maxDepth,
      maxElementBytes: config.limits.maxElementBytes,
      maxElementNodes: config.limits.maxElementNodes,
      maxDocumentBytes: config.limits.maxUploadBytes,
      roots: ['server-data', 'host'] as const,
      credentials: kinds.has('credentials'),
    };

    const slot = ctx.importSlots.tryTake();
    if (!slot) throw problems.tooManyRequests('too many imports are running; try again later', 30);
    // The upload goes to disk, not memory: it is read twice (validate, then apply). Its name is
    // xporta's own, never the caller's (X-Request-Id), so concurrent uploads cannot collide.
    const spoolDir = join(config.dataDir, 'spool');
    // A multipart upload may hold the files the main document XIncludes: the upload gets a
    // directory of its own, which is all the reader may include from.
    const withIncludes = request.isMultipart() && String(request.headers['content-encoding'] ?? 'identity').toLowerCase() === 'identity';
    const uploadDir = join(spoolDir, `host-import-${randomUUID()}`);
    let spool = `${uploadDir}.xml`;
    const readerOptions = withIncludes ? { ...readerLimits, allowXInclude: true, baseDir: uploadDir } : readerLimits;
    const cleanup = async (): Promise<void> => {
      slot.release();
      await rm(withIncludes ? uploadDir : spool, { recursive: true, force: true });
    };
    let total: number;
    try {
      await mkdir(spoolDir, { recursive: true, mode: directoryModeFor(config.files.mode) });
      if (withIncludes) {
        await mkdir(uploadDir, { mode: directoryModeFor(config.files.mode) });
        spool = await spoolHostUpload(request, uploadDir, config.limits.maxUploadBytes, config.files.mode);
      } else {
        const received = countBytes(await importBody(request, config.limits), (n) => ctx.metrics.inc('xporta_bytes_streamed_total', { direction: 'import' }, n));
        await pipeline(received, createWriteStream(spool, { mode: config.files.mode, flags: 'wx' }));
      }
      total = (await validateHostDocument(readDocument(createReadStream(spool), readerOptions), host)).length;
    } catch (err) {
      await cleanup();
      throw toProblem(err);
    }

    const totalBytes = (await stat(spool).catch(() => undefined))?.size;
    const abort = new AbortController();
    const counted = { records: 0, bytes: 0 };
    /** The spool read by the apply pass, its bytes and records counted for the job's progress. */
    const applyPass = (): AsyncIterable<DocumentEvent> => {
      const source = createReadStream(spool);
      source.on('data', (chunk) => (counted.bytes += chunk.length));
      return countRecords(readDocument(source, readerOptions), () => counted.records++);
    };

    const run = async (onProgress?: (done: number, failed: number) => void): Promise<HostImportResult> => {
      const timed = ctx.metrics.time(dryRun ? 'host_dry_run' : 'host_import');
      const finished = (outcome: 'ok' | 'error'): void => {
        timed(outcome);
        ctx.metrics.inc('xporta_host_transfers_total', { direction: 'import', dry_run: String(dryRun), outcome });
        if (dryRun) ctx.metrics.inc('xporta_dry_runs_total', { scope: 'host', outcome });
      };
      try {
        const result = await importHostDocument(storage, host, applyPass(), {
          mode,
          dryRun,
          include: kinds,
          createAccount,
          total,
          signal: abort.signal,
          lockAccount: (jid) => ctx.locks.tryAcquire(jid, 'exclusive'),
          reopen: () => readDocument(createReadStream(spool), readerOptions),
          onUser: (user, progress) => {
            onProgress?.(progress.done, progress.failed);
            if (progress.done % LOG_EVERY_USERS === 0) request.log.info({ host, imported: progress.done, total, last: user }, 'host import progress');
          },
        });
        finished('ok');
        return result;
      } catch (err) {
        finished('error');
        throw err;
      } finally {
        await cleanup();
      }
    };

    if (runAsync) {
      // The request's audit line says "accepted"; the job's end gets a line of its own.
      const finished = { action: 'host-import' as const, actor: actorOf(principalOf(ctx, request)), host, kinds: [...kinds], mode, dryRun, requestId: request.id };
      const progressOf = (done: number, failed: number): JobProgress => ({
        done,
        failed,
        total,
        records: counted.records,
        bytes: counted.bytes,
        ...(totalBytes !== undefined ? { totalBytes, estimate: totalBytes > 0 ? Math.min(1, counted.bytes / totalBytes) : 1 } : {}),
      });
      const job = jobs.create({ id: randomUUID(), type: 'host-import', host, progress: progressOf(0, 0) });
      ctx.metrics.inc('xporta_jobs_total', { type: 'host-import', state: 'started' });
      let last = { done: 0, failed: 0 };
      const notify = (): void => {
        const secret = config.webhooks.secret;
        if (!callback || secret === undefined) return;
        const ended = jobs.get(job.id);
        void deliverWebhook(outgoingClient(config), { ...config.webhooks, secret }, callback, { event: 'job.finished', job: ended }, {
          onAttemptFailed: (attempt, reason) => request.log.warn({ job: job.id, attempt, reason }, 'job callback not delivered'),
        }).then((outcome) => {
          if (outcome.delivered) request.log.info({ job: job.id, attempts: outcome.attempts }, 'job callback delivered');
          else request.log.warn({ job: job.id, attempts: outcome.attempts }, 'job callback given up');
        });
      };
      void run((done, failed) => {
        last = { done, failed };
        // A cancel asked through any process sharing the state is seen here, between accounts.
        if (jobs.progress(job.id, progressOf(done, failed))) abort.abort();
      }).then(
        (result) => {
          const state = abort.signal.aborted ? 'cancelled' : 'succeeded';
          jobs.finish(job.id, state, { result, progress: progressOf(result.progress.done, result.progress.failed) });
          ctx.metrics.inc('xporta_jobs_total', { type: 'host-import', state });
          ctx.audit.record({ ...finished, outcome: state === 'succeeded' ? 'ok' : 'failed', ...(state === 'cancelled' ? { reason: 'cancelled' } : {}), counts: { users: result.progress.done, failed: result.progress.failed } });
          notify();
        },
        (err: unknown) => {
          const reason = err instanceof Error ? err.message : String(err);
          jobs.finish(job.id, 'failed', { error: reason, progress: progressOf(last.done, last.failed) });
          ctx.metrics.inc('xporta_jobs_total', { type: 'host-import', state: 'failed' });
          ctx.audit.record({ ...finished, outcome: 'failed', reason });
          notify();
        },
      );
      return reply.code(202).header('location', `/v1/jobs/${job.id}`).send(job);
    }
    const result = await run();
    auditNote(request, { counts: { users: result.progress.done, failed: result.progress.failed } });
    return reply.code(200).send(result);
  });

  /** One answer for "no such job" and "not yours": job ids are not to be probed. */
  const visibleJob = (request: FastifyRequest, id: string): JobRecord => {
    const job = jobs.get(id);
    if (!job || !mayRead(ctx, request, job)) throw problems.notFound('no such job');
    return job;
  };

  app.get<{ Querystring: { limit?: string } }>('/v1/jobs', { schema: routeSchemas.listJobs, config: { guard: 'authenticated' } }, async (request, reply) => {
    const limit = request.query.limit === undefined ? 100 : Number(request.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw problems.badRequest('limit must be an integer from 1 to 1000');
    return reply.send({ jobs: jobs.list(limit).filter((job) => mayRead(ctx, request, job)) });
  });

  app.delete<{ Params: { id: string } }>('/v1/jobs/:id', { schema: routeSchemas.cancelJob, config: { guard: 'authenticated' } }, async (request, reply) => {
    const job = visibleJob(request, request.params.id);
    if (job.state !== 'running') throw problems.conflict(`the job has ended (${job.state})`);
    jobs.requestCancel(job.id);
    return reply.code(202).send(jobs.get(job.id));
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', { schema: routeSchemas.getJob, config: { guard: 'authenticated' } }, async (request, reply) => reply.send(visibleJob(request, request.params.id)));
};

/** The job's completion callback, checked before anything is read. */
function callbackOf(raw: string | undefined, runAsync: boolean, secret: string | undefined): URL | undefined {
  if (raw === undefined) return undefined;
  if (!runAsync) throw problems.badRequest('callbackUrl needs async=true');
  if (secret === undefined) throw problems.badRequest('callbackUrl needs webhooks.secret in the configuration (callbacks are always signed)');
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw problems.badRequest('callbackUrl must be an absolute http(s) URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw problems.badRequest('callbackUrl must be an absolute http(s) URL');
  return url;
}

/** Jobs act on hosts: operators allowed on the job's host may read and cancel it. */
function mayRead(ctx: ServiceContext, request: FastifyRequest, job: JobRecord): boolean {
  const principal = principalOf(ctx, request);
  return principal.kind === 'operator' && (principal.hosts.includes('*') || principal.hosts.includes(job.host));
}

/** The events unchanged, `onRecord` told of each record (anything inside a `<user>`). */
async function* countRecords(events: AsyncIterable<DocumentEvent>, onRecord: () => void): AsyncGenerator<DocumentEvent> {
  for await (const event of events) {
    if (event.kind !== 'host' && event.kind !== 'host-end' && event.kind !== 'user' && event.kind !== 'user-end') onRecord();
    yield event;
  }
}
