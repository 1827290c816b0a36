/**
 * Files xporta creates for itself (its state store, the default SQLite store, spools, the audit
 * log, the generated token) are private: 0600 by default, 0640 when `files.mode` says so for a
 * deployment whose operators read them through a group. SQLite gives a database's -wal, -shm and
 * -journal siblings the mode of the database file, so creating that file first with the right
 * mode covers them too.
 */
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';

export type PrivateFileMode = 0o600 | 0o640;

export const DEFAULT_FILE_MODE: PrivateFileMode = 0o600;

/** The directory mode that goes with a file mode: owner-only, or owner plus group read/search. */
export function directoryModeFor(mode: PrivateFileMode): number {
  return mode === 0o640 ? 0o750 : 0o700;
}

/**
 * Creates `path` (and its directory) with `mode` unless it exists; an existing file keeps the mode
 * its owner gave it. The process umask cannot widen the mode: it is set explicitly after creation.
 */
export function ensurePrivateFile(path: string, mode: PrivateFileMode = DEFAULT_FILE_MODE): void {
  mkdirSync(dirname(path), { recursive: true, mode: directoryModeFor(mode) });
  let fd: number;
  try {
    fd = openSync(path, 'wx', mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  try {
    chmodSync(path, mode);
  } finally {
    closeSync(fd);
  }
}
