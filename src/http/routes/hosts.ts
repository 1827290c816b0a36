/**
 * Whole-host endpoints (operator tokens only) and background job status.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { FastifyPluginAsync } from 'fastify';
import { exportHostDocument, importHostDocument, validateHostDocument, type HostImportResult } from '../../host-transfer.js';
import { JobRegistry } from '../../jobs.js';
import { readDocument } from '../../xep0227/reader.js';
import { writeDocument } from '../../xep0227/writer.js';
import { actorOf, auditNote } from '../audit-trail.js';
import { guardHost, principalOf, type ServiceContext } from '../context.js';
import { attachmentDisposition } from '../download.js';
import { directoryModeFor } from '../../private-files.js';
import { spoolHostUpload } from '../host-upload.js';
import { problems } from '../problem.js';
import { importBody } from '../upload.js';
import { booleanParam, countBytes, kindsOrProblem, toProblem } from './users.js';

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
}

/** Progress is logged every this many accounts. */
const LOG_EVERY_USERS = 100;

export const hostRoutes: FastifyPluginAsync<{ ctx: ServiceContext }> = async (app, { ctx }) => {
  const { config, storage } = ctx;
  const jobs = new JobRegistry();

  app.get<{ Params: HostParams; Querystring: { include?: string; exclude?: string } }>('/v1/hosts/:host/export', { config: { guard: { host: 'export' } } }, async (request, reply) => {
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

  app.put<{ Params: HostParams; Querystring: HostImportQuery }>('/v1/hosts/:host/import', { config: { guard: { host: 'import' }, upload: true } }, async (request, reply) => {
    const host = guardHost(ctx, request, request.params.host, 'import');
    const kinds = kindsOrProblem(request.query);
    const mode = request.query.mode ?? 'merge';
    if (mode !== 'replace' && mode !== 'merge') throw problems.badRequest('mode must be replace or merge');
    const dryRun = booleanParam('dryRun', request.query.dryRun);
    const createAccount = booleanParam('createAccount', request.query.createAccount);
    const runAsync = booleanParam('async', request.query.async);
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

    const run = async (onProgress?: (done: number, failed: number) => void): Promise<HostImportResult> => {
      const timed = ctx.metrics.time(dryRun ? 'host_dry_run' : 'host_import');
      const finished = (outcome: 'ok' | 'error'): void => {
        timed(outcome);
        ctx.metrics.inc('xporta_host_transfers_total', { direction: 'import', dry_run: String(dryRun), outcome });
        if (dryRun) ctx.metrics.inc('xporta_dry_runs_total', { scope: 'host', outcome });
      };
      try {
        const result = await importHostDocument(storage, host, readDocument(createReadStream(spool), readerOptions), {
          mode,
          dryRun,
          include: kinds,
          createAccount,
          total,
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
      const job = jobs.start('host-import', host, (j) => {
        j.progress = { done: 0, failed: 0, total };
        ctx.metrics.inc('xporta_jobs_total', { type: 'host-import', state: 'started' });
        return run((done, failed) => (j.progress = { done, failed, total })).then(
          (result) => {
            ctx.metrics.inc('xporta_jobs_total', { type: 'host-import', state: 'succeeded' });
            ctx.audit.record({ ...finished, outcome: 'ok', counts: { users: result.progress.done, failed: result.progress.failed } });
            return result;
          },
          (err: unknown) => {
            ctx.metrics.inc('xporta_jobs_total', { type: 'host-import', state: 'failed' });
            ctx.audit.record({ ...finished, outcome: 'failed', reason: err instanceof Error ? err.message : String(err) });
            throw err;
          },
        );
      });
      return reply.code(202).header('location', `/v1/jobs/${job.id}`).send(job);
    }
    const result = await run();
    auditNote(request, { counts: { users: result.progress.done, failed: result.progress.failed } });
    return reply.code(200).send(result);
  });

  app.get<{ Params: { id: string } }>('/v1/jobs/:id', { config: { guard: 'authenticated' } }, async (request, reply) => {
    const principal = principalOf(ctx, request);
    const job = jobs.get(request.params.id);
    // One answer for "no such job" and "not yours": job ids are not to be probed.
    if (!job || principal.kind !== 'operator' || !(principal.hosts.includes('*') || principal.hosts.includes(job.host))) {
      throw problems.notFound('no such job');
    }
    return reply.send(job);
  });
};
