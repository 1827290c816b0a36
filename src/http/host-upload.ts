/**
 * A host document uploaded as multipart/form-data with the files it XIncludes (ejabberd's
 * `export_piefxis` main file and its per-host files): the part named `file` is the main
 * document, every other file part is stored under its filename, which is what an `href` of the
 * main document names. Everything goes into a directory of its own that the reader may include
 * from, and nowhere else.
 */
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyRequest } from 'fastify';
import { problems } from './problem.js';

/** The name the main document is stored under: a leading dot, which no accepted include name has. */
const MAIN = '.main.xml';
/** The included files' names: plain file names, as ejabberd writes them. */
const INCLUDE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;
/** More files than any export writes (one per virtual host). */
const MAX_FILES = 256;

/**
 * Stores the parts in `dir` (which must exist and be private) and returns the main document's
 * path. `limit` bounds the bytes of all parts together.
 */
export async function spoolHostUpload(request: FastifyRequest, dir: string, limit: number, mode: number): Promise<string> {
  let total = 0;
  let main: string | undefined;
  const names = new Set<string>();
  for await (const part of request.files({ limits: { files: MAX_FILES, fileSize: limit } })) {
    let name: string;
    if (part.fieldname === 'file') {
      if (main !== undefined) throw problems.badRequest('the multipart body holds two parts named file');
      name = MAIN;
      main = join(dir, MAIN);
    } else {
      name = part.filename;
      if (!INCLUDE_NAME.test(name)) throw problems.badRequest(`included file name ${JSON.stringify(name)} must be a plain file name, as its href names it`);
      if (names.has(name)) throw problems.badRequest(`two included files are named ${name}`);
      names.add(name);
    }
    const count = new Transform({
      transform(chunk: Buffer, _enc, callback: TransformCallback) {
        total += chunk.length;
        if (total > limit) callback(problems.tooLarge(`the upload exceeds ${limit} bytes`));
        else callback(null, chunk);
      },
    });
    await pipeline(part.file, count, createWriteStream(join(dir, name), { mode, flags: 'wx' }));
  }
  if (main === undefined) throw problems.badRequest('the multipart body holds no part named file (the main document)');
  return main;
}
