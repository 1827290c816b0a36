/**
 * Whole-host endpoints (operator tokens only) and background job status.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { exportHostDocument, importHostDocument, validateHostDocument, type HostAccountOutcome, type HostImportResult } from '../../transfer/host-transfer.js';
import { EventSpoolWriter, readEventSpool, spoolingEvents } from '../../transfer/event-spool.js';
import type { ServiceContext } from '../../core/context.js';
import { countStreamedBytes } from '../../core/counting.js';
import { documentStream } from '../../core/export-stream.js';
import { HostImport } from '../../core/import-pipeline.js';
import { importMode, importReaderOptions } from '../../core/import-options.js';
import { startHostImportJob } from '../../core/host-import-job.js';
import { hostResultJson, OutcomeFile } from '../../core/outcome-file.js';
import { JOBS_FILE, JobStore, type JobRecord } from '../../core/job-store.js';
import type { DocumentEvent } from '../../records/model.js';
import { readDocument } from '../../xep0227/reader.js';
import { actorOf, auditNote } from '../audit-trail.js';
import { guardHost, principalOf } from '../guard.js';
import { attachmentDisposition } from '../download.js';
import { directoryModeFor } from '../../lib/private-files.js';
import { spoolHostUpload } from '../host-upload.js';
import { booleanParam, httpUrlParam, kindsParam } from '../params.js';
import { problems } from '../problem.js';
import { importBody } from '../upload.js';
import { acceptsGzip } from '../account-io.js';
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
    const kinds = kindsParam(request.query);
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
      // Each account is read under the shared lease a user export takes: never halfway through an import.
      lockAccount: (jid) => ctx.locks.acquire(jid, 'shared', { signal: abort.signal }),
      onUser: (user, progress) => {
        if (progress.done % LOG_EVERY_USERS === 0) request.log.info({ host, exported: progress.done, last: user }, 'host export progress');
      },
    });
    const gzip = acceptsGzip(request.headers);
    if (gzip) reply.header('content-encoding', 'gzip');
    const body = documentStream(events, ctx.metrics, {
      gzip,
      onInvalidChars: (r) =>
        request.log.warn({ host, user: r.user, kind: r.kind, detail: r.detail, codePoint: r.codePoint }, 'stored text XML 1.0 cannot carry was exported with U+FFFD in its place'),
    });
    return reply
      .header('content-type', 'application/xml; charset=utf-8')
      .header('content-disposition', attachmentDisposition(`${host}.xml`))
      .header('vary', 'accept-encoding')
      .send(body);
  });

  app.put<{ Params: HostParams; Querystring: HostImportQuery }>('/v1/hosts/:host/import', { schema: routeSchemas.importHost, config: { guard: { host: 'import' }, upload: true } }, async (request, reply) => {
    const host = guardHost(ctx, request, request.params.host, 'import');
    const kinds = kindsParam(request.query);
    const mode = importMode(request.query.mode, 'merge');
    const dryRun = booleanParam('dryRun', request.query.dryRun);
    const createAccount = booleanParam('createAccount', request.query.createAccount);
    const runAsync = booleanParam('async', request.query.async);
    const callback = callbackOf(request.query.callbackUrl, runAsync, config.webhooks.secret);
    const principal = principalOf(ctx, request);
    auditNote(request, { host, kinds: [...kinds], mode, dryRun });

    const hostImport = HostImport.begin(ctx);
    // The upload goes to disk, not memory, and so do the events its validation parses, which the
    // apply pass reads (event-spool.ts). Their names are xporta's own, never the caller's
    // (X-Request-Id), so concurrent uploads cannot collide.
    const spoolDir = join(config.dataDir, 'spool');
    // A multipart upload may hold the files the main document XIncludes: the upload gets a
    // directory of its own, which is all the reader may include from.
    const withIncludes = request.isMultipart() && String(request.headers['content-encoding'] ?? 'identity').toLowerCase() === 'identity';
    const uploadDir = join(spoolDir, `host-import-${randomUUID()}`);
    let spool = `${uploadDir}.xml`;
    const eventSpool = `${uploadDir}.events`;
    // A `<host>` root (ejabberd's export_piefxis_host) is one host; credentials are not read when excluded.
    const readerOptions = importReaderOptions(config.limits, kinds, { from: 'upload', roots: ['server-data', 'host'], ...(withIncludes ? { includeDir: uploadDir } : {}) });
    const cleanup = async (): Promise<void> => {
      hostImport.release();
      await rm(withIncludes ? uploadDir : spool, { recursive: true, force: true });
      await rm(eventSpool, { force: true });
    };
    let total: number;
    let sizes: readonly number[];
    let users: readonly string[];
    let eventBytes = 0;
    try {
      await mkdir(spoolDir, { recursive: true, mode: directoryModeFor(config.files.mode) });
      if (withIncludes) {
        await mkdir(uploadDir, { mode: directoryModeFor(config.files.mode) });
        spool = await spoolHostUpload(request, uploadDir, config.limits.maxUploadBytes, config.files.mode);
      } else {
        const received = countStreamedBytes(await importBody(request, config.limits), ctx.metrics, 'import');
        await pipeline(received, createWriteStream(spool, { mode: config.files.mode, flags: 'wx' }));
      }
      const writer = await EventSpoolWriter.create(eventSpool, config.files.mode);
      try {
        ({ sizes, users } = await validateHostDocument(spoolingEvents(readDocument(createReadStream(spool), readerOptions), writer), host));
      } finally {
        await writer.close();
      }
      eventBytes = writer.size;
      total = sizes.length;
    } catch (err) {
      await cleanup();
      throw err;
    }

    const totalBytes = (await stat(spool).catch(() => undefined))?.size;
    const abort = new AbortController();
    const counted = { records: 0, bytes: 0 };
    /**
     * The events read by the apply pass, and its records counted for the job's progress; its
     * bytes as the share of the document's that the share of the events read stands for.
     */
    const applyPass = (): AsyncIterable<DocumentEvent> => {
      let read = 0;
      const onBytes = (bytes: number): void => {
        read += bytes;
        counted.bytes = totalBytes !== undefined && eventBytes > 0 ? Math.round((Math.min(read, eventBytes) / eventBytes) * totalBytes) : read;
      };
      return countRecords(readEventSpool(eventSpool, onBytes), () => counted.records++);
    };

    /** The apply pass; each account's outcome goes to `onOutcome` as it is final, not into the result. */
    const run = async (onOutcome: (outcome: HostAccountOutcome) => void, onProgress?: (done: number, failed: number) => void): Promise<HostImportResult> => {
      try {
        return await hostImport.run({ host, dryRun, principal }, (gate) =>
          importHostDocument(storage, host, applyPass(), {
            mode,
            dryRun,
            include: kinds,
            createAccount,
            total,
            sizes,
            users,
            signal: abort.signal,
            lockAccount: gate.lockAccount,
            reopen: () => readEventSpool(eventSpool),
            onOutcome: (outcome) => {
              gate.outcome(outcome);
              onOutcome(outcome);
            },
            onUser: (user, progress) => {
              onProgress?.(progress.done, progress.failed);
              if (progress.done % LOG_EVERY_USERS === 0) request.log.info({ host, imported: progress.done, total, last: user }, 'host import progress');
            },
          }),
        );
      } finally {
        await cleanup();
      }
    };

    if (runAsync) {
      // The request's audit line says "accepted"; the job's end gets a line of its own.
      const job = startHostImportJob(
        ctx,
        jobs,
        {
          host,
          total,
          ...(totalBytes !== undefined ? { totalBytes } : {}),
          counted,
          ...(callback ? { callback } : {}),
          audit: { action: 'host-import', actor: actorOf(principal), host, kinds: [...kinds], mode, dryRun, requestId: request.id },
          log: request.log,
        },
        (onProgress, onOutcome, cancelled) => {
          cancelled.addEventListener('abort', () => abort.abort(), { once: true });
          return run(onOutcome, onProgress);
        },
      );
      return reply.code(202).header('location', `/v1/jobs/${job.id}`).send(job);
    }
    // The accounts' outcomes wait in a file until the answer lists them (outcome-file.ts).
    let outcomes: OutcomeFile;
    try {
      outcomes = new OutcomeFile(`${uploadDir}.users.json`, config.files.mode);
    } catch (err) {
      await cleanup();
      throw err;
    }
    let result: HostImportResult;
    try {
      result = await run((outcome) => outcomes.add(outcome));
      for (const outcome of result.users) outcomes.add(outcome);
      outcomes.close();
    } catch (err) {
      outcomes.remove();
      throw err;
    }
    reply.raw.once('close', () => outcomes.remove());
    auditNote(request, { counts: { users: result.progress.done, failed: result.progress.failed } });
    return reply.code(200).header('content-type', JSON_TYPE).send(Readable.from(hostResultJson(result, outcomes.path)));
  });

  /** One answer for "no such job" and "not yours": job ids are not to be probed. */
  const visibleJob = (request: FastifyRequest, id: string): JobRecord => {
    // A host import's users list stays in its file: json() reads it from there as it is sent.
    const job = jobs.get(id, { users: false });
    if (!job || !mayRead(ctx, request, job)) throw problems.notFound('no such job');
    return job;
  };

  app.get<{ Querystring: { limit?: string } }>('/v1/jobs', { schema: routeSchemas.listJobs, config: { guard: 'authenticated' } }, async (request, reply) => {
    const limit = request.query.limit === undefined ? 100 : Number(request.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw problems.badRequest('limit must be an integer from 1 to 1000');
    const visible = jobs.list(limit, { users: false }).filter((job) => mayRead(ctx, request, job));
    return reply.header('content-type', JSON_TYPE).send(Readable.from(jobList(jobs, visible)));
  });

  app.delete<{ Params: { id: string } }>('/v1/jobs/:id', { schema: routeSchemas.cancelJob, config: { guard: 'authenticated' } }, async (request, reply) => {
    const job = visibleJob(request, request.params.id);
    if (job.state !== 'running') throw problems.conflict(`the job has ended (${job.state})`);
    jobs.requestCancel(job.id);
    return reply.code(202).send(jobs.get(job.id));
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', { schema: routeSchemas.getJob, config: { guard: 'authenticated' } }, async (request, reply) =>
    reply.header('content-type', JSON_TYPE).send(Readable.from(jobs.json(visibleJob(request, request.params.id)))),
  );
};

/** What reply.send gives a JSON body; a streamed one says it itself. */
const JSON_TYPE = 'application/json; charset=utf-8';

/** `{"jobs":[…]}` as JSON.stringify gives it, each job's text from {@link JobStore.json}. */
async function* jobList(jobs: JobStore, list: readonly JobRecord[]): AsyncGenerator<string | Buffer> {
  yield '{"jobs":[';
  for (let i = 0; i < list.length; i++) {
    if (i > 0) yield ',';
    yield* jobs.json(list[i] as JobRecord);
  }
  yield ']}';
}

/** The job's completion callback, checked before anything is read. */
function callbackOf(raw: string | undefined, runAsync: boolean, secret: string | undefined): URL | undefined {
  if (raw === undefined) return undefined;
  if (!runAsync) throw problems.badRequest('callbackUrl needs async=true');
  if (secret === undefined) throw problems.badRequest('callbackUrl needs webhooks.secret in the configuration (callbacks are always signed)');
  return httpUrlParam('callbackUrl', raw);
}

/**
 * Jobs act on a host, or on one account (its JID in `host`): operators allowed on that host may
 * read and cancel it, and so may a user token of that very account.
 */
function mayRead(ctx: ServiceContext, request: FastifyRequest, job: JobRecord): boolean {
  const principal = principalOf(ctx, request);
  const at = job.host.lastIndexOf('@');
  if (principal.kind === 'user') return at >= 0 && principal.jid === job.host;
  const host = at >= 0 ? job.host.slice(at + 1) : job.host;
  return principal.hosts.includes('*') || principal.hosts.includes(host);
}

/** The events unchanged, `onRecord` told of each record (anything inside a `<user>`). */
async function* countRecords(events: AsyncIterable<DocumentEvent>, onRecord: () => void): AsyncGenerator<DocumentEvent> {
  for await (const event of events) {
    if (event.kind !== 'host' && event.kind !== 'host-end' && event.kind !== 'user' && event.kind !== 'user-end') onRecord();
    yield event;
  }
}
