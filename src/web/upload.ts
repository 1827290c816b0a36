/**
 * The file of the page's upload form, spooled once: the one file part of a multipart body,
 * decompressed when it is gzip (told by its first bytes, whatever its name), with the page's size
 * limit on the bytes received and on the decompressed bytes, written to a private spool file.
 */
import type { Readable} from 'node:stream';
import { PassThrough, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { FastifyRequest } from 'fastify';
import { spoolUpload, type Spool } from '../core/spool.js';
import type { PrivateFileMode } from '../lib/private-files.js';

export type UploadFailure = 'too-large' | 'no-file' | 'broken-gzip' | 'broken-upload';

export class UploadError extends Error {
  constructor(readonly code: UploadFailure) {
    super(code);
    this.name = 'UploadError';
  }
}

function byteLimit(limit: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, callback: TransformCallback) {
      seen += chunk.length;
      if (seen > limit) callback(new UploadError('too-large'));
      else callback(null, chunk);
    },
  });
}

/** The first bytes of `source` (up to `n`), put back so that the stream still starts with them. */
async function peek(source: Readable, n: number): Promise<Buffer> {
  let head = Buffer.alloc(0);
  while (head.length < n && !source.readableEnded && !source.destroyed) {
    const chunk = source.read() as Buffer | null;
    if (chunk !== null) {
      head = Buffer.concat([head, chunk]);
      continue;
    }
    await new Promise<void>((resolve) => {
      const done = (): void => {
        source.off('readable', done).off('end', done).off('error', done).off('close', done);
        resolve();
      };
      source.on('readable', done).on('end', done).on('error', done).on('close', done);
    });
  }
  if (head.length > 0) source.unshift(head);
  return head;
}

/**
 * The upload's file, spooled; throws {@link UploadError}. Busboy ends a file quietly at its size
 * limit, so it is given one byte more: the counter sees the excess and refuses the file.
 */
export async function spoolFormFile(request: FastifyRequest, limit: number, dataDir: string, mode: PrivateFileMode): Promise<Spool> {
  let file;
  try {
    file = await request.file({ limits: { files: 1, fileSize: limit + 1, fields: 4 } });
  } catch {
    throw new UploadError('broken-upload');
  }
  if (!file) throw new UploadError('no-file');
  const source = file.file;
  let piped: Promise<void> | undefined;
  try {
    const head = await peek(source, 2);
    if (head.length === 0) throw new UploadError('no-file');
    const gzip = head[0] === 0x1f && head[1] === 0x8b;
    const out = new PassThrough();
    const stages = gzip ? [byteLimit(limit), createGunzip(), byteLimit(limit)] : [byteLimit(limit)];
    // Every failure of a stage destroys `out` with it, and so fails the spool's own copy.
    piped = pipeline([source, ...stages, out] as unknown as [Readable, PassThrough]);
    piped.catch(() => undefined);
    const spool = await spoolUpload(out, dataDir, 'web', mode);
    await piped;
    return spool;
  } catch (thrown) {
    // The stage that failed says why better than the spool's copy, which only saw its input end.
    const err: unknown = piped ? await piped.then(() => thrown, (e: unknown) => e) : thrown;
    // What is left of the body flows away, so the answer gets out on a connection that still reads.
    source.resume();
    if (err instanceof UploadError) throw err;
    if (typeof (err as { code?: unknown }).code === 'string' && String((err as { code: string }).code).startsWith('Z_')) throw new UploadError('broken-gzip');
    if ((file as { file: { truncated?: boolean } }).file.truncated === true) throw new UploadError('too-large');
    throw new UploadError('broken-upload');
  }
}
