/**
 * Per-account endpoints: streamed export, atomic import, user tokens.
 */
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { tapAsync } from '../../lib/async-iter.js';
import type { Config, Scope } from '../../config/config.js';
import { JidError } from '../../lib/jid.js';
import { OutgoingError, outgoingClient, withErrorsMapped, type OutgoingClient } from '../../lib/net/outgoing.js';
import { StorageError, type ApplyReport, type UserRef } from '../../storage/backend.js';
import { exportUserDocument, importUserDocument, selectKinds, TransferError, type UserImportOptions, type UserImportReport } from '../../transfer/account-transfer.js';
import { Xep0227Error } from '../../xep0227/errors.js';
import { dataKindOf, type DataKind, type DocumentEvent } from '../../records/model.js';
import { readDocument, type ReaderOptions } from '../../xep0227/reader.js';
import { writeDocument, type InvalidCharsReplaced } from '../../xep0227/writer.js';
import { DEFAULT_RETRY_POLICY, withRetries } from '../../storage/retry.js';
import { auditNote } from '../audit-trail.js';
import { attachmentDisposition } from '../download.js';
import { guardAccount, type ServiceContext } from '../context.js';
import type { Metrics } from '../../core/metrics.js';
import { Problem, problems } from '../problem.js';
import { spoolUpload } from '../spool.js';
import { onlyFields } from './tokens.js';
import { byteLimit, importBody } from '../upload.js';
import { routeSchemas } from '../schemas/routes.js';

interface JidParams {
  jid: string;
}

interface ExportQuery {
  include?: string;
  exclude?: string;
}

interface ImportQuery extends ExportQuery {
  mode?: string;
  dryRun?: string;
  createAccount?: string;
  keepSubscriptions?: string;
}

interface ImportFromBody {
  url?: unknown;
  token?: unknown;
  mode?: unknown;
  dryRun?: unknown;
  createAccount?: unknown;
  include?: unknown;
  exclude?: unknown;
}

interface TokenBody {
  scopes?: unknown;
  ttlSeconds?: unknown;
}

/** Maps the layers' own errors to problems; anything else is left for the 500 handler. */
export function toProblem(err: unknown): unknown {
  if (err instanceof Problem) return err;
  if (err instanceof Xep0227Error) {
    return new Problem(err.status, `xml-${err.code}`, err.status === 413 ? 'Content too large' : 'Invalid document', err.detail, {
      line: err.line,
      column: err.column,
    });
  }
  if (err instanceof JidError) return problems.unprocessable(`invalid JID in the document: ${err.reason}`);
  if (err instanceof TransferError) {
    return err.code === 'bad-kind' ? problems.badRequest(err.message) : problems.unprocessable(err.message);
  }
  if (err instanceof StorageError) {
    switch (err.code) {
      case 'user-not-found':
        return problems.notFound(err.message);
      case 'user-exists':
      case 'conflict':
        return problems.conflict(err.message);
      case 'invalid-data':
        return problems.unprocessable(err.message);
      case 'unavailable':
        return problems.storageUnavailable(err.message, STORAGE_RETRY_AFTER_SECONDS);
      case 'insufficient-storage':
        return problems.insufficientStorage(err.message);
    }
  }
  if (isNoSpaceError(err)) return problems.insufficientStorage('no space left on the device that holds the spool or the store; nothing was changed');
  return err;
}

/** What a 503 for a storage failure tells the client to wait before trying again. */
export const STORAGE_RETRY_AFTER_SECONDS = 5;

function isNoSpaceError(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export function kindsOrProblem(query: ExportQuery): ReturnType<typeof selectKinds> {
  try {
    return selectKinds(query.include, query.exclude);
  } catch (err) {
    throw toProblem(err);
  }
}

export function booleanParam(name: string, value: string | undefined): boolean {
  if (value === undefined || value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1' || value === '') return true;
  throw problems.badRequest(`${name} must be true or false`);
}

export const userRoutes: FastifyPluginAsync<{ ctx: ServiceContext }> = async (app, { ctx }) => {
  const { config, storage, metrics } = ctx;

  app.get<{ Params: JidParams; Querystring: ExportQuery }>('/v1/users/:jid/export', { schema: routeSchemas.exportUser, config: { guard: { account: 'export' } } }, async (request, reply) => {
    const { ref, jid } = guardAccount(ctx, request, request.params.jid, 'export');
    const kinds = kindsOrProblem(request.query);
    auditNote(request, { account: jid, kinds: [...kinds] });
    if (!(await storage.userExists(ref))) throw problems.notFound(`no account ${jid}`);
    reply
      .header('content-type', 'application/xml; charset=utf-8')
      .header('content-disposition', attachmentDisposition(`${jid}.xml`))
      .header('vary', 'accept-encoding');
    // The streamed export has no length or validator to give; a HEAD reads nothing.
    if (request.method === 'HEAD') return reply.send(Readable.from([]));
    const lease = await ctx.locks.tryAcquire(jid, 'shared');
    if (!lease) throw problems.conflict(`an import into ${jid} is running`);

    const abort = new AbortController();
    const timed = metrics.time('export');
    // A client that goes away stops the storage read, not just the socket writes.
    reply.raw.on('finish', () => timed('ok'));
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
      timed(reply.raw.writableFinished ? 'ok' : 'error');
      lease.release();
    });

    const counted = countRecords(exportUserDocument(storage, ref, kinds, abort.signal), metrics, 'export');
    const onInvalidChars = (r: InvalidCharsReplaced): void =>
      request.log.warn({ jid, kind: r.kind, detail: r.detail, codePoint: r.codePoint }, 'stored text XML 1.0 cannot carry was exported with U+FFFD in its place');
    let body: Readable = Readable.from(countBytes(writeDocument(counted, { onInvalidChars }), (n) => metrics.inc('xporta_bytes_streamed_total', { direction: 'export' }, n)), {
      objectMode: false,
    });
    const gzip = /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
    if (gzip) {
      const compressed = createGzip();
      body.on('error', (err) => compressed.destroy(err));
      body = body.pipe(compressed);
      reply.header('content-encoding', 'gzip');
    }
    return reply.send(body);
  });

  app.put<{ Params: JidParams; Querystring: ImportQuery }>('/v1/users/:jid/import', { schema: routeSchemas.importUser, config: { guard: { account: 'import' }, upload: true } }, async (request, reply) => {
    const { ref, jid, principal } = guardAccount(ctx, request, request.params.jid, 'import');
    const kinds = kindsOrProblem(request.query);
    const mode = request.query.mode ?? 'replace';
    if (mode !== 'replace' && mode !== 'merge') throw problems.badRequest('mode must be replace or merge');
    const dryRun = booleanParam('dryRun', request.query.dryRun);
    const createAccount = booleanParam('createAccount', request.query.createAccount);
    auditNote(request, { account: jid, kinds: [...kinds], mode, dryRun });

    // The lock first: it may wait on another process's storage, and the body must not flow into
    // its size and deadline checks while nobody listens for their errors.
    const lease = await ctx.locks.tryAcquire(jid, 'exclusive');
    if (!lease) throw problems.conflict(`another operation on ${jid} is running`);
    let source: Readable;
    try {
      source = await importBody(request, config.limits);
    } catch (err) {
      lease.release();
      throw err;
    }
    const slot = ctx.importSlots.tryTake();
    if (!slot) {
      lease.release();
      source.destroy();
      throw problems.tooManyRequests('too many imports are running; try again later', 30);
    }
    const timed = metrics.time(dryRun ? 'dry_run' : 'import');
    const finished = (outcome: 'ok' | 'error'): void => {
      timed(outcome);
      if (dryRun) metrics.inc('xporta_dry_runs_total', { scope: 'user', outcome });
      else metrics.inc('xporta_imports_total', { source: 'upload', outcome });
    };
    try {
      if (!createAccount && !(await storage.userExists(ref))) {
        throw problems.notFound(`no account ${jid} (use createAccount=true to create it)`);
      }
      const keepSubscriptions = booleanParam('keepSubscriptions', request.query.keepSubscriptions);
      // The whole upload is on local disk before the storage transaction opens: a slow client
      // holds no database lock, and a retry reads the same document again.
      const report = await importThroughSpool(ctx, request, source, 'user', ref, { mode, dryRun, include: kinds, createAccount, keepSubscriptions });
      finished('ok');
      auditNote(request, { counts: reportCounts(report) });
      ctx.notifier?.importFinished({ jid, report, principal });
      return reply.code(200).send(report);
    } catch (err) {
      finished('error');
      throw toProblem(err);
    } finally {
      source.destroy();
      slot.release();
      lease.release();
    }
  });

  app.post<{ Params: JidParams; Body: ImportFromBody }>('/v1/users/:jid/import-from', { schema: routeSchemas.importUserFrom, config: { guard: { account: 'import' } } }, async (request, reply) => {
    const { ref, jid, principal } = guardAccount(ctx, request, request.params.jid, 'import');
    const body = request.body ?? {};
    if (typeof body.url !== 'string') throw problems.badRequest('url is required');
    let url: URL;
    try {
      url = new URL(body.url);
    } catch {
      throw problems.badRequest('url must be an absolute http(s) URL');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw problems.badRequest('url must be an absolute http(s) URL');
    if (body.token !== undefined && typeof body.token !== 'string') throw problems.badRequest('token must be a string');
    const kinds = kindsOrProblem({ ...(typeof body.include === 'string' ? { include: body.include } : {}), ...(typeof body.exclude === 'string' ? { exclude: body.exclude } : {}) });
    const mode = body.mode ?? 'replace';
    if (mode !== 'replace' && mode !== 'merge') throw problems.badRequest('mode must be replace or merge');
    const dryRun = body.dryRun === true;
    const createAccount = body.createAccount === true;
    auditNote(request, { account: jid, kinds: [...kinds], mode, dryRun });

    const lease = await ctx.locks.tryAcquire(jid, 'exclusive');
    if (!lease) throw problems.conflict(`another operation on ${jid} is running`);
    const slot = ctx.importSlots.tryTake();
    if (!slot) {
      lease.release();
      throw problems.tooManyRequests('too many imports are running; try again later', 30);
    }
    const abort = new AbortController();
    // Only a client that leaves early cancels the pull; a finished exchange closes too.
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    const timed = metrics.time(dryRun ? 'dry_run' : 'import_from');
    const finished = (outcome: 'ok' | 'error'): void => {
      timed(outcome);
      if (dryRun) metrics.inc('xporta_dry_runs_total', { scope: 'user', outcome });
      else metrics.inc('xporta_imports_total', { source: 'url', outcome });
    };
    let source: Readable | undefined;
    try {
      if (!createAccount && !(await storage.userExists(ref))) throw problems.notFound(`no account ${jid} (use createAccount=true to create it)`);
      source = await fetchExport(outgoingClient(config), url, body.token, config.limits.maxUploadBytes, abort.signal);
      // As for uploads: the transfer from the other service holds no database lock, and a retry reads the copy.
      const report = await importThroughSpool(ctx, request, source, 'pull', ref, { mode, dryRun, include: kinds, createAccount, signal: abort.signal });
      finished('ok');
      auditNote(request, { counts: reportCounts(report) });
      ctx.notifier?.importFinished({ jid, report, principal });
      return reply.send({ ...report, source: url.origin + url.pathname });
    } catch (err) {
      finished('error');
      if (err instanceof OutgoingError) {
        request.log.debug({ upstream: err.internal }, 'import-from: the source failed');
        throw upstreamProblem(err);
      }
      throw toProblem(err);
    } finally {
      source?.destroy();
      slot.release();
      lease.release();
    }
  });

  app.post<{ Params: JidParams; Body: TokenBody }>('/v1/users/:jid/tokens', { schema: routeSchemas.mintUserToken, config: { guard: { account: 'admin' } } }, async (request, reply) => {
    const { jid, ref } = guardAccount(ctx, request, request.params.jid, 'admin');
    auditNote(request, { account: jid });
    const body = onlyFields(request.body, TOKEN_FIELDS) as TokenBody;
    const scopes = body.scopes ?? ['export'];
    if (!Array.isArray(scopes) || scopes.length === 0 || !scopes.every((s) => s === 'export' || s === 'import')) {
      throw problems.badRequest('scopes must be a non-empty array of "export" and "import"');
    }
    const ttlSeconds = body.ttlSeconds ?? 900;
    if (typeof ttlSeconds !== 'number' || !Number.isInteger(ttlSeconds)) throw problems.badRequest('ttlSeconds must be an integer');
    if (!(await storage.userExists(ref))) throw problems.notFound(`no account ${jid}`);
    const { token, claims } = ctx.auth.mintUserToken({ jid, scopes: scopes as Scope[], ttlSeconds });
    auditNote(request, { target: claims.jti });
    return reply
      .code(201)
      .header('cache-control', 'no-store')
      .send({ token, jid, jti: claims.jti, scopes: claims.scp, expiresAt: new Date(claims.exp * 1000).toISOString() });
  });
};

/**
 * Copies an uploaded or pulled document to the spool, then applies it with bounded retries of
 * transient storage failures, each reading the spooled copy again; the copy is removed after.
 * Bytes and records are counted once.
 */
async function importThroughSpool(
  ctx: ServiceContext,
  request: FastifyRequest,
  source: Readable,
  spoolKind: 'user' | 'pull',
  ref: UserRef,
  options: UserImportOptions,
): Promise<UserImportReport> {
  const { config, storage, metrics } = ctx;
  const received = Readable.from(countBytes(source, (n) => metrics.inc('xporta_bytes_streamed_total', { direction: 'import' }, n)), { objectMode: false });
  const spool = await spoolUpload(received, config.dataDir, spoolKind, config.files.mode);
  try {
    return await withRetries(
      (attempt) => {
        const events = readDocument(spool.open(), readerLimitsOf(config.limits, options.include));
        return importUserDocument(storage, ref, attempt === 1 ? countRecords(events, metrics, options.dryRun ? 'dry_run' : 'import') : events, options);
      },
      DEFAULT_RETRY_POLICY,
      (err, attempt, delayMs) =>
        request.log.warn({ jid: `${ref.user}@${ref.host}`, attempt, delayMs, err: (err as Error).message }, 'import failed for a transient reason; retrying'),
      options.signal,
    );
  } finally {
    await spool.remove();
  }
}

/** The reader's options for an uploaded or pulled document. */
function readerLimitsOf(limits: Config['limits'], kinds: ReadonlySet<DataKind>): ReaderOptions {
  return {
    maxDepth: limits.maxDepth,
    maxElementBytes: limits.maxElementBytes,
    maxElementNodes: limits.maxElementNodes,
    maxDocumentBytes: limits.maxUploadBytes,
    // Credentials left out are never parsed.
    credentials: kinds.has('credentials'),
  };
}

const TOKEN_FIELDS = new Set(['scopes', 'ttlSeconds']);

/** An import report's figures for the audit log: records per kind, skipped items, whether the account was created. */
function reportCounts(report: ApplyReport): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [kind, n] of Object.entries(report.counts)) if (typeof n === 'number') counts[kind] = n;
  counts.skipped = report.skipped.length;
  if (report.created) counts.created = 1;
  return counts;
}

/**
 * Pulls a XEP-0227 export from another service as a stream, through the outgoing-request policy
 * (src/net/outgoing.ts: address checks at connect time, no redirects, idle and total deadlines).
 * The stream fails with a 413 problem past `limit` bytes (decompressed too) and with an
 * {@link OutgoingError} for anything the source did wrong.
 */
async function fetchExport(client: OutgoingClient, url: URL, token: string | undefined, limit: number, signal: AbortSignal): Promise<Readable> {
  const response = await client.request(url, {
    method: 'GET',
    headers: { accept: 'application/xml', 'accept-encoding': 'gzip', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    signal,
  });
  const limited = limitedBody(response.body, String(response.headers['content-encoding'] ?? '') === 'gzip', limit, 'the source document');
  // Corrupt gzip and the like are the source's fault: summarised like a failed connection.
  return withErrorsMapped(limited, (err) =>
    err instanceof Problem || err instanceof OutgoingError ? err : new OutgoingError('failed', `${url.origin}${url.pathname}: ${(err as Error).message}`),
  );
}

/** 422 when the policy refused the address, else 502; the text never says what answered there. */
function upstreamProblem(err: OutgoingError): Problem {
  return err.reason === 'refused'
    ? new Problem(422, 'outgoing-refused', 'Refused by the outgoing-request policy', err.message)
    : new Problem(502, 'upstream-failed', 'Bad gateway', err.message);
}

/**
 * A byte stream with the size limit applied to the bytes received and, when gzip-encoded, to the
 * decompressed bytes too, so a gzip bomb stops at the limit. Failures surface on the stream.
 */
function limitedBody(raw: Readable, gzip: boolean, limit: number, what: string): Readable {
  const out = new PassThrough();
  const failed = (err: unknown): void => {
    out.destroy(err instanceof Error ? err : new Error(String(err)));
  };
  if (gzip) pipeline(raw, byteLimit(limit, what), createGunzip(), byteLimit(limit, `${what} (decompressed)`), out).catch(failed);
  else pipeline(raw, byteLimit(limit, what), out).catch(failed);
  return out;
}

/** Counts bytes as they are pulled, without a 'data' listener that would bypass backpressure. */
export async function* countBytes<T extends Uint8Array>(chunks: AsyncIterable<T>, count: (bytes: number) => void): AsyncGenerator<T> {
  for await (const chunk of chunks) {
    count(chunk.length);
    yield chunk;
  }
}

/**
 * Records counted per kind and added to the metrics every {@link RECORD_TALLY_EVERY} records and
 * at the end: building a label key for each of a million archived messages cost a tenth of an
 * export's time.
 */
export function countRecords(events: AsyncIterable<DocumentEvent>, metrics: Metrics, direction: 'export' | 'import' | 'dry_run'): AsyncIterable<DocumentEvent> {
  const tally = new Map<DataKind, number>();
  let pending = 0;
  const flush = (): void => {
    for (const [kind, n] of tally) metrics.inc('xporta_records_total', { direction, kind }, n);
    tally.clear();
    pending = 0;
  };
  return tapAsync(
    events,
    (event) => {
      if (event.kind === 'host' || event.kind === 'host-end' || event.kind === 'user' || event.kind === 'user-end') return;
      const kind = dataKindOf(event);
      tally.set(kind, (tally.get(kind) ?? 0) + 1);
      if (++pending === RECORD_TALLY_EVERY) flush();
    },
    flush,
  );
}

/** Often enough that a scrape during a long transfer sees it move. */
const RECORD_TALLY_EVERY = 1024;

