/**
 * Per-account endpoints: streamed export, atomic import, user tokens.
 */
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { request as httpRequest, type Dispatcher } from 'undici';
import { tapAsync } from '../../async-iter.js';
import type { Scope } from '../../config.js';
import { JidError } from '../../jid.js';
import { StorageError, type ApplyReport } from '../../storage/backend.js';
import { exportUserDocument, importUserDocument, selectKinds, TransferError } from '../../transfer.js';
import { Xep0227Error } from '../../xep0227/errors.js';
import { dataKindOf, type DataKind, type DocumentEvent } from '../../xep0227/model.js';
import { readDocument } from '../../xep0227/reader.js';
import { writeDocument } from '../../xep0227/writer.js';
import { auditNote } from '../audit-trail.js';
import { guardAccount, type ServiceContext } from '../context.js';
import type { Metrics } from '../metrics.js';
import { Problem, problems } from '../problem.js';
import { onlyFields } from './tokens.js';

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

/** `application/xpie+xml` is what the web migrator sends. */
export const XML_TYPES = ['application/xml', 'text/xml', 'application/xep-0227+xml', 'application/xpie+xml'];

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
        return problems.unavailable(err.message);
    }
  }
  return err;
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

/** Fails the stream with 413 once more than `limit` bytes passed. */
function byteLimit(limit: number, what: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, callback: TransformCallback) {
      seen += chunk.length;
      if (seen > limit) callback(problems.tooLarge(`${what} exceeds ${limit} bytes`));
      else callback(null, chunk);
    },
  });
}

export const userRoutes: FastifyPluginAsync<{ ctx: ServiceContext }> = async (app, { ctx }) => {
  const { config, storage, metrics } = ctx;

  app.get<{ Params: JidParams; Querystring: ExportQuery }>('/v1/users/:jid/export', async (request, reply) => {
    const { ref, jid } = guardAccount(ctx, request, request.params.jid, 'export');
    const kinds = kindsOrProblem(request.query);
    auditNote(request, { account: jid, kinds: [...kinds] });
    if (!(await storage.userExists(ref))) throw problems.notFound(`no account ${jid}`);
    const lease = ctx.locks.tryAcquire(jid, 'shared');
    if (!lease) throw problems.conflict(`an import into ${jid} is running`);

    const abort = new AbortController();
    // A client that goes away stops the storage read, not just the socket writes.
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
      lease.release();
    });

    const counted = countRecords(exportUserDocument(storage, ref, kinds, abort.signal), metrics, 'export');
    let body: Readable = Readable.from(countBytes(writeDocument(counted), (n) => metrics.inc('xporta_bytes_streamed_total', { direction: 'export' }, n)), {
      objectMode: false,
    });
    const gzip = /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''));
    if (gzip) {
      const compressed = createGzip();
      body.on('error', (err) => compressed.destroy(err));
      body = body.pipe(compressed);
      reply.header('content-encoding', 'gzip');
    }
    reply
      .header('content-type', 'application/xml; charset=utf-8')
      .header('content-disposition', `attachment; filename="${jid.replace(/[^\w@.+-]/g, '_')}.xml"`)
      .header('vary', 'accept-encoding');
    return reply.send(body);
  });

  app.put<{ Params: JidParams; Querystring: ImportQuery }>('/v1/users/:jid/import', async (request, reply) => {
    const { ref, jid, principal } = guardAccount(ctx, request, request.params.jid, 'import');
    const kinds = kindsOrProblem(request.query);
    const mode = request.query.mode ?? 'replace';
    if (mode !== 'replace' && mode !== 'merge') throw problems.badRequest('mode must be replace or merge');
    const dryRun = booleanParam('dryRun', request.query.dryRun);
    const createAccount = booleanParam('createAccount', request.query.createAccount);
    auditNote(request, { account: jid, kinds: [...kinds], mode, dryRun });

    const source = await importBody(request, config.limits.maxUploadBytes);
    const lease = ctx.locks.tryAcquire(jid, 'exclusive');
    if (!lease) {
      source.destroy();
      throw problems.conflict(`another operation on ${jid} is running`);
    }
    const slot = ctx.importSlots.tryTake();
    if (!slot) {
      lease.release();
      source.destroy();
      throw problems.tooManyRequests('too many imports are running; try again later', 30);
    }
    metrics.set('xporta_imports_in_progress', ctx.importSlots.inUse);
    try {
      if (!createAccount && !(await storage.userExists(ref))) {
        throw problems.notFound(`no account ${jid} (use createAccount=true to create it)`);
      }
      const events = countRecords(
        readDocument(source, {
          maxDepth: config.limits.maxDepth,
          maxElementBytes: config.limits.maxElementBytes,
          maxDocumentBytes: config.limits.maxUploadBytes,
          credentials: kinds.has('credentials'),
        }),
        metrics,
        'import',
      );
      const keepSubscriptions = booleanParam('keepSubscriptions', request.query.keepSubscriptions);
      const report = await importUserDocument(storage, ref, events, { mode, dryRun, include: kinds, createAccount, keepSubscriptions });
      auditNote(request, { counts: reportCounts(report) });
      ctx.notifier?.importFinished({ jid, report, principal });
      return reply.code(200).send(report);
    } catch (err) {
      throw toProblem(err);
    } finally {
      source.destroy();
      slot.release();
      lease.release();
      metrics.set('xporta_imports_in_progress', ctx.importSlots.inUse);
    }
  });

  app.post<{ Params: JidParams; Body: ImportFromBody }>('/v1/users/:jid/import-from', async (request, reply) => {
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

    const lease = ctx.locks.tryAcquire(jid, 'exclusive');
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
    try {
      if (!createAccount && !(await storage.userExists(ref))) throw problems.notFound(`no account ${jid} (use createAccount=true to create it)`);
      const source = await fetchExport(url, body.token, config.limits.maxUploadBytes, abort.signal);
      const events = readDocument(source, {
        maxDepth: config.limits.maxDepth,
        maxElementBytes: config.limits.maxElementBytes,
        maxDocumentBytes: config.limits.maxUploadBytes,
        credentials: kinds.has('credentials'),
      });
      const report = await importUserDocument(storage, ref, events, { mode, dryRun, include: kinds, createAccount, signal: abort.signal });
      auditNote(request, { counts: reportCounts(report) });
      ctx.notifier?.importFinished({ jid, report, principal });
      return reply.send({ ...report, source: url.origin + url.pathname });
    } catch (err) {
      throw toProblem(err);
    } finally {
      slot.release();
      lease.release();
    }
  });

  app.post<{ Params: JidParams; Body: TokenBody }>('/v1/users/:jid/tokens', async (request, reply) => {
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

const TOKEN_FIELDS = new Set(['scopes', 'ttlSeconds']);

/** An import report's figures for the audit log: records per kind, skipped items, whether the account was created. */
function reportCounts(report: ApplyReport): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const [kind, n] of Object.entries(report.counts)) if (typeof n === 'number') counts[kind] = n;
  counts.skipped = report.skipped.length;
  if (report.created) counts.created = 1;
  return counts;
}

/** The upload as a byte stream: raw XML (optionally gzip-encoded) or one multipart file. */
export async function importBody(request: FastifyRequest, limit: number): Promise<Readable> {
  const type = String(request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  let raw: Readable;
  if (type === 'multipart/form-data') {
    const file = await request.file({ limits: { files: 1, fileSize: limit } });
    if (!file) throw problems.badRequest('the multipart body holds no file');
    raw = file.file;
  } else if (XML_TYPES.includes(type)) {
    raw = request.body as Readable;
  } else {
    throw problems.unsupportedMediaType(`send application/xml (optionally Content-Encoding: gzip) or multipart/form-data, not ${type || 'no type'}`);
  }
  const encoding = String(request.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity' && encoding !== 'gzip') throw problems.unsupportedMediaType(`unsupported Content-Encoding ${encoding}`);
  return limitedBody(raw, encoding === 'gzip', limit, 'the upload');
}

/**
 * Pulls a XEP-0227 export from another service as a stream. Redirects are not followed: the
 * caller named one URL, and a redirect could point the request (with its token) elsewhere.
 */
async function fetchExport(url: URL, token: string | undefined, limit: number, signal: AbortSignal): Promise<Readable> {
  let response: Dispatcher.ResponseData;
  try {
    response = await httpRequest(url, {
      method: 'GET',
      headers: { accept: 'application/xml', 'accept-encoding': 'gzip', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      signal,
      headersTimeout: 30_000,
      bodyTimeout: 300_000,
    });
  } catch (err) {
    throw new Problem(502, 'upstream-unreachable', 'Bad gateway', `cannot reach ${url.origin}: ${(err as Error).message}`);
  }
  if (response.statusCode !== 200) {
    await response.body.dump();
    throw new Problem(502, 'upstream-error', 'Bad gateway', `${url.origin} answered ${response.statusCode}`);
  }
  return limitedBody(response.body, String(response.headers['content-encoding'] ?? '') === 'gzip', limit, 'the source document');
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
async function* countBytes(chunks: AsyncIterable<Buffer>, count: (bytes: number) => void): AsyncGenerator<Buffer> {
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
function countRecords(events: AsyncIterable<DocumentEvent>, metrics: Metrics, direction: 'export' | 'import'): AsyncIterable<DocumentEvent> {
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

