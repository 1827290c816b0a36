/**
 * Serving a file as a download: RFC 6266 names, and RFC 9110 validators and byte ranges.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Problem, sendProblem } from './problem.js';

/**
 * `attachment` with the name twice (RFC 6266 §4.3): `filename*` in UTF-8 (RFC 8187) for any
 * name, and an ASCII `filename` for clients that know only that one, with every other character
 * replaced by `_`.
 */
export function attachmentDisposition(name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\/%;]/gu, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

export interface ByteRange {
  readonly start: number;
  /** Inclusive. */
  readonly end: number;
}

/**
 * The one range a `Range` header asks for within `size` bytes: `undefined` to send the whole
 * representation (no header, another unit, several ranges or a malformed one, all of which RFC
 * 9110 §14.2 lets a server ignore), or `'unsatisfiable'`.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (last !== '' && Number(last) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}

export interface DownloadFile {
  readonly path: string;
  readonly size: number;
  /** Strong, quoted. */
  readonly etag: string;
  readonly filename: string;
  readonly contentType: string;
}

/**
 * Answers GET or HEAD for `file`: 200, 206 for one satisfiable range (unless `If-Range` names
 * another version), 304 for a matching `If-None-Match`, 416 otherwise. HEAD opens nothing.
 */
export function sendDownload(request: FastifyRequest, reply: FastifyReply, file: DownloadFile): FastifyReply {
  reply
    .header('accept-ranges', 'bytes')
    .header('etag', file.etag)
    .header('cache-control', 'private, no-cache')
    .header('content-disposition', attachmentDisposition(file.filename));
  const ifNoneMatch = request.headers['if-none-match'];
  if (ifNoneMatch !== undefined && ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === file.etag || tag.trim() === '*')) {
    return reply.code(304).send();
  }
  const ifRange = request.headers['if-range'];
  // If-Range with a date, or a weak or other tag, means "the whole thing": only a strong match keeps the range.
  const rangeHeader = ifRange === undefined || ifRange === file.etag ? request.headers.range : undefined;
  const range = parseRange(rangeHeader, file.size);
  if (range === 'unsatisfiable') {
    reply.header('content-range', `bytes */${file.size}`);
    return sendProblem(reply, new Problem(416, 'range-not-satisfiable', 'Range not satisfiable', `the file has ${file.size} bytes`));
  }
  const { start, end } = range ?? { start: 0, end: file.size - 1 };
  const length = file.size === 0 ? 0 : end - start + 1;
  reply.type(file.contentType).header('content-length', String(length));
  if (range) reply.code(206).header('content-range', `bytes ${start}-${end}/${file.size}`);
  // Fastify's HEAD answers replace the length of an empty payload with 0, but keep it for a stream.
  if (request.method === 'HEAD' || length === 0) return reply.send(Readable.from([]));
  return reply.send(createReadStream(file.path, { start, end }));
}
