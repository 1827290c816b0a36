/**
 * Request bodies as byte streams with their limits: the import uploads (raw XML, optionally
 * gzip-encoded, or one multipart file) and the deadlines every body is read under. Every fault of
 * a body surfaces as a problem: 400 (malformed or cut short), 408 (too slow), 413 (too large),
 * 415 (wrong type) — never as an unhandled error.
 */
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { FastifyRequest } from 'fastify';
import type { LimitsConfig } from '../config/config.js';
import { Problem, problems } from './problem.js';

export const XML_TYPES = ['application/xml', 'text/xml', 'application/xep-0227+xml', 'application/xpie+xml'];
export const MULTIPART_TYPE = 'multipart/form-data';

export type UploadLimits = Pick<LimitsConfig, 'maxUploadBytes' | 'uploadIdleTimeoutMs' | 'requestTimeoutMs'>;

/** The request's media type, lower case, without parameters ('' when absent). */
export function mediaTypeOf(request: FastifyRequest): string {
  return String(request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** Whether the request announces a body (a length above zero, or a chunked one). */
export function announcesBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** Fails the stream with 413 once more than `limit` bytes passed. */
export function byteLimit(limit: number, what: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, callback: TransformCallback) {
      seen += chunk.length;
      if (seen > limit) callback(problems.tooLarge(`${what} exceeds ${limit} bytes`));
      else callback(null, chunk);
    },
  });
}

/**
 * `source` re-emitted under two deadlines: it fails with 408 when `idleMs` pass while a chunk is
 * wanted and none arrives (time spent waiting for a slow consumer does not count), or when
 * `totalMs` pass in all. Errors and early ends of `source` become 400. Destroying the result
 * leaves `source` paused, not destroyed: the response to the request must still get out.
 */
export function withDeadlines(source: Readable, deadlines: { idleMs: number; totalMs: number }, what: string): Readable {
  let idle: NodeJS.Timeout | undefined;
  const stopIdle = (): void => {
    if (idle !== undefined) clearTimeout(idle);
    idle = undefined;
  };
  const armIdle = (): void => {
    idle ??= setTimeout(() => out.destroy(problems.timeout(`${what} sent nothing for ${deadlines.idleMs} ms`)), deadlines.idleMs);
  };
  const onData = (chunk: Buffer): void => {
    stopIdle();
    if (out.push(chunk)) armIdle();
    else source.pause();
  };
  const onEnd = (): void => {
    stopIdle();
    clearTimeout(total);
    out.push(null);
  };
  const onError = (err: unknown): void => {
    out.destroy(err instanceof Problem ? err : problems.badRequest(`${what} could not be read: ${err instanceof Error ? err.message : String(err)}`));
  };
  const onClose = (): void => {
    if (!source.readableEnded) onError(new Error('the connection closed before its end'));
  };
  let total: NodeJS.Timeout | undefined;
  const out = new Readable({
    read() {
      // The clock starts when the body is first wanted: a body nobody reads has no deadline to miss.
      total ??= setTimeout(() => out.destroy(problems.timeout(`${what} took longer than ${deadlines.totalMs} ms`)), deadlines.totalMs);
      armIdle();
      source.resume();
    },
    destroy(err, callback) {
      stopIdle();
      clearTimeout(total);
      source.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose);
      source.pause();
      callback(err);
    },
  });
  // A reader may stop listening before a deadline passes (Fastify's body parser does at its size
  // limit); the timeout must not then surface as an unhandled 'error'. Readers that listen still get it.
  out.on('error', () => undefined);
  // Paused before the 'data' listener goes on, so nothing flows until the consumer asks.
  source.pause();
  source.on('data', onData).once('end', onEnd).on('error', onError).once('close', onClose);
  // A multipart file can fail (body cut short) before anyone listens to it.
  if (source.destroyed) process.nextTick(() => onError(source.errored ?? new Error('the body closed before its end')));
  return out;
}

/**
 * The upload of an import route as a byte stream: raw XML (optionally `Content-Encoding: gzip`)
 * or the one file of a multipart body, with the size limit applied to the bytes received and to
 * the decompressed bytes, and the upload deadlines.
 */
export async function importBody(request: FastifyRequest, limits: UploadLimits): Promise<Readable> {
  const type = mediaTypeOf(request);
  if (type !== MULTIPART_TYPE && !XML_TYPES.includes(type)) {
    throw problems.unsupportedMediaType(`send application/xml (optionally Content-Encoding: gzip) or multipart/form-data, not ${type || 'no type'}`);
  }
  const encoding = String(request.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding !== 'identity' && encoding !== 'gzip') throw problems.unsupportedMediaType(`unsupported Content-Encoding ${encoding}`);
  const deadlines = { idleMs: limits.uploadIdleTimeoutMs, totalMs: limits.requestTimeoutMs };
  const raw = type === MULTIPART_TYPE ? await multipartFile(request, limits) : (request.body as Readable);
  return uploadStream(withDeadlines(raw, deadlines, 'the upload'), encoding === 'gzip', limits.maxUploadBytes, 'the upload');
}

/**
 * The first file of a multipart body. Busboy truncates a file at its size limit and ends it
 * quietly, so it is given one byte more than the limit: the byte counter downstream sees the
 * excess and answers 413 instead of a truncated document.
 */
async function multipartFile(request: FastifyRequest, limits: UploadLimits): Promise<Readable> {
  if (!/;\s*boundary=/i.test(String(request.headers['content-type']))) throw problems.badRequest('the multipart body has no boundary');
  const pending = request.file({ limits: { files: 1, fileSize: limits.maxUploadBytes + 1 } });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(problems.timeout(`no file part arrived within ${limits.uploadIdleTimeoutMs} ms`)), limits.uploadIdleTimeoutMs);
  });
  try {
    const file = await Promise.race([pending, timedOut]);
    if (!file) throw problems.badRequest('the multipart body holds no file');
    return file.file;
  } catch (err) {
    // A part that arrives after the deadline is dropped, and a late failure has no one to tell.
    pending.then((late) => late?.file.destroy(), () => undefined);
    throw multipartProblem(err);
  } finally {
    clearTimeout(timer);
  }
}

/** @fastify/multipart's errors carry their HTTP status; busboy's own (no boundary, cut short) do not. */
function multipartProblem(err: unknown): Problem {
  if (err instanceof Problem) return err;
  const message = err instanceof Error ? err.message : String(err);
  const status = (err as { statusCode?: unknown }).statusCode;
  if (status === 413) return problems.tooLarge(`the multipart body exceeds a limit: ${message}`);
  return problems.badRequest(`the multipart body is malformed: ${message}`);
}

/**
 * `raw` with the size limit on the bytes received and, when gzip-encoded, on the decompressed
 * bytes too, so a gzip bomb stops at the limit. Corrupt, truncated or mislabelled gzip is a 400.
 */
function uploadStream(raw: Readable, gzip: boolean, limit: number, what: string): Readable {
  const out = new PassThrough();
  const failed = (err: unknown): void => {
    if (err instanceof Problem) out.destroy(err);
    else if (typeof (err as { code?: unknown }).code === 'string' && (err as { code: string }).code.startsWith('Z_')) {
      out.destroy(problems.badRequest(`${what} is not valid gzip: ${(err as Error).message}`));
    } else out.destroy(problems.badRequest(`${what} could not be read: ${err instanceof Error ? err.message : String(err)}`));
  };
  // The route may still be busy (taking the lock, asking the storage) when the body fails: the
  // failure must not surface as an unhandled 'error' then. `out` is destroyed with it, so the
  // consumer that comes later gets it all the same.
  out.on('error', () => undefined);
  // `out` stays outside the pipeline, which would destroy it with the raw error before `failed` maps it.
  const sink = async (source: AsyncIterable<Buffer>): Promise<void> => {
    for await (const chunk of source) {
      if (out.destroyed) return; // the consumer went away: ending the loop tears the pipeline down
      if (!out.write(chunk)) await drainedOrClosed(out);
    }
    out.end();
  };
  if (gzip) pipeline(raw, byteLimit(limit, what), createGunzip(), byteLimit(limit, `${what} (decompressed)`), sink).catch(failed);
  else pipeline(raw, byteLimit(limit, what), sink).catch(failed);
  return out;
}

function drainedOrClosed(stream: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done).off('close', done);
      resolve();
    };
    stream.on('drain', done).on('close', done);
  });
}
