/**
 * The file-system steps an all-or-nothing replacement of files is made of: telling whether a file
 * is the one seen before, making it durable, giving a new file the owner and mode Prosody expects.
 */
import { constants as fsConstants } from 'node:fs';
import { chmod, chown, copyFile, link, mkdir, open, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface Snapshot {
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

export async function snapshotOf(path: string): Promise<Snapshot | null> {
  try {
    const s = await stat(path);
    return { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs };
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

export function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

export function sameFile(a: Snapshot | null, b: Snapshot | null): boolean {
  if (a === null || b === null) return a === b;
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

export async function fsyncPath(path: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'r');
    await handle.sync();
  } catch (err) {
    // Some filesystems refuse fsync on a directory; the rename itself has still happened.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'ENOENT') throw err;
  } finally {
    await handle?.close();
  }
}

export interface Ownership {
  readonly uid: number;
  readonly gid: number;
  readonly mode: number;
}

/**
 * The owner and mode a file put in `path`'s place should get, so that Prosody can still write it
 * and nobody else gains access: the replaced file's, or for a new file its directory's without
 * the execute bits (Prosody's default umask 027 gives 0750 directories and 0640 files).
 */
export async function ownershipFor(path: string): Promise<Ownership | undefined> {
  try {
    const s = await stat(path);
    return { uid: s.uid, gid: s.gid, mode: s.mode & 0o7777 };
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  try {
    const d = await stat(dirname(path));
    return { uid: d.uid, gid: d.gid, mode: d.mode & 0o666 };
  } catch {
    return undefined;
  }
}

export async function applyOwnership(path: string, owner: Ownership | undefined): Promise<void> {
  if (!owner) return;
  // Only root can give a file away; running as Prosody's own user, files are its own already.
  if (process.getuid?.() === 0) await chown(path, owner.uid, owner.gid).catch(() => undefined);
  await chmod(path, owner.mode);
}

/** Creates missing directories like Prosody does: owned and protected like their parent. */
export async function ensureDir(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    if ((await snapshotOf(d)) !== null) break;
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing) {
    const parent = await stat(dirname(d));
    await mkdir(d, 0o700).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    await applyOwnership(d, { uid: parent.uid, gid: parent.gid, mode: parent.mode & 0o7777 });
  }
}

export async function makeBackup(path: string, backup: string): Promise<void> {
  try {
    await link(path, backup);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV' && code !== 'EMLINK') throw err;
    await copyFile(path, backup, fsConstants.COPYFILE_EXCL);
    await fsyncPath(backup);
  }
}

export async function writeDurably(path: string, text: string): Promise<void> {
  await writeFile(path, text, { flag: 'wx', mode: 0o600 });
  await fsyncPath(path);
  await fsyncPath(dirname(path));
}
