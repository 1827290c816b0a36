/**
 * An upload copied to a private file under `<dataDir>/spool` before anything is applied: the
 * storage transaction then reads a local file at disk speed instead of waiting on the client
 * (a slow upload no longer holds a database write lock), and the document can be read again
 * when an attempt must be retried.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DEFAULT_FILE_MODE, directoryModeFor, type PrivateFileMode } from '../lib/private-files.js';

export interface Spool {
  readonly path: string;
  /** A fresh read of the whole document. */
  open(): Readable;
  /** Deletes the file; safe to call more than once. */
  remove(): Promise<void>;
}

export function spoolDirectory(dataDir: string): string {
  return join(dataDir, 'spool');
}

/**
 * Copies `body` to a new spool file named by xporta (`<kind>-<random>.xml`, never after anything a
 * caller sent); on failure nothing is left behind.
 */
export async function spoolUpload(body: Readable, dataDir: string, kind: 'user' | 'pull' | 'web', mode: PrivateFileMode = DEFAULT_FILE_MODE): Promise<Spool> {
  const dir = spoolDirectory(dataDir);
  const path = join(dir, `${kind}-${randomUUID()}.xml`);
  const remove = (): Promise<void> => rm(path, { force: true });
  try {
    await mkdir(dir, { recursive: true, mode: directoryModeFor(mode) });
    await pipeline(body, createWriteStream(path, { mode, flags: 'wx' }));
  } catch (err) {
    body.destroy();
    await remove();
    throw err;
  }
  return { path, open: () => createReadStream(path), remove };
}

/**
 * Deletes what a previous run of the service left in the spool (it was killed mid-import): at
 * start nothing of this process is there yet, and `dataDir` belongs to one service. Returns how
 * many files went.
 */
export async function clearSpool(dataDir: string): Promise<number> {
  const dir = spoolDirectory(dataDir);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  for (const name of names) await rm(join(dir, name), { force: true, recursive: true });
  return names.length;
}
