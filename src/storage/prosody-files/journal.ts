/**
 * What an import leaves on disk besides the stores: the names of its temporaries, backups,
 * scratch files and commit journals, and the recovery from imports whose process died (see
 * transaction.ts for the commit these belong to).
 */
import { randomBytes } from 'node:crypto';
import { readFile, readdir, rename, rm, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { hostname } from 'node:os';
import { fsyncPath, isNotFound, snapshotOf } from './durable-fs.js';

export const TEMP_MARK = '~xporta-';
export const JOURNAL_PREFIX = '.xporta-journal-';
export const SCRATCH_PREFIX = '.xporta-scratch-';
/** An export's linked copy of one account's files (snapshot.ts): a directory in the data directory. */
export const SNAPSHOT_PREFIX = '.xporta-snapshot-';

/**
 * `<pid>-<random>`: the process id lets {@link removeOrphans} tell the temporaries of a live import
 * (in this or another process on this machine) from those a dead one left behind.
 */
export function randomSuffix(): string {
  return `${process.pid}-${randomBytes(9).toString('hex')}`;
}

interface JournalEntry {
  readonly path: string;
  readonly temp: string | null;
  readonly backup: string | null;
}

export interface Journal {
  readonly pid: number;
  readonly host: string;
  readonly entries: readonly JournalEntry[];
}

/** Journals of commits running in this process right now. */
export const activeJournals = new Set<string>();
/** A journal older than this cannot belong to a commit still running (they take milliseconds). */
const STALE_JOURNAL_MS = 60 * 60 * 1000;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Names from before temporaries carried a process id: `<18 hex digits>`. */
const LEGACY_SUFFIX = /^[0-9a-f]{18}(?:\.|$)/;
const PID_SUFFIX = /^(\d+)-[0-9a-f]{18}(?:\.|$)/;

/**
 * Whether a temporary (the part of its name after the mark) is one nobody will use again: its
 * process is gone, or it has no process id and is older than any import still running could
 * have left it. The temporaries of this process's own imports are never orphans.
 */
async function isOrphan(path: string, suffix: string): Promise<boolean> {
  const withPid = PID_SUFFIX.exec(suffix);
  if (withPid) {
    const pid = Number(withPid[1]);
    return pid !== process.pid && !processAlive(pid);
  }
  if (!LEGACY_SUFFIX.test(suffix)) return false;
  const age = Date.now() - ((await snapshotOf(path))?.mtimeMs ?? Date.now());
  return age >= STALE_JOURNAL_MS;
}

/**
 * Deletes what imports that died left outside a journal: staged files (`<file>~xporta-*`, a kill
 * while staging), backups of finished commits (`~xporta-*.bak`; a journal that still names one
 * is replayed first by {@link recoverJournals}), scratch files (`.xporta-scratch-*`) and the
 * snapshot directories of exports that died (`.xporta-snapshot-*`). Looks in
 * the data directory and in each `<host>/<store>/` directory below it, where Prosody's files
 * are. Returns the number of files removed.
 */
export async function removeOrphans(dataDir: string): Promise<number> {
  let removed = 0;
  const sweep = async (dir: string, depth: number): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (depth === 0 && entry.name.startsWith(SNAPSHOT_PREFIX)) {
          if (await isOrphan(path, entry.name.slice(SNAPSHOT_PREFIX.length))) {
            await rm(path, { recursive: true, force: true });
            removed++;
          }
        } else if (depth < 2) await sweep(path, depth + 1);
        continue;
      }
      let suffix: string | undefined;
      const mark = entry.name.indexOf(TEMP_MARK);
      if (mark > 0) suffix = entry.name.slice(mark + TEMP_MARK.length);
      else if (depth === 0 && entry.name.startsWith(SCRATCH_PREFIX)) suffix = entry.name.slice(SCRATCH_PREFIX.length);
      if (suffix === undefined || !(await isOrphan(path, suffix))) continue;
      await rm(path, { force: true });
      removed++;
    }
  };
  await sweep(dataDir, 0);
  return removed;
}

/**
 * Rolls back every import whose process died during its commit (see the module comment).
 * Journals of live processes on this machine are left alone: they are still committing.
 * Returns the number of journals replayed.
 */
export async function recoverJournals(dataDir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dataDir);
  } catch (err) {
    if (isNotFound(err)) return 0;
    throw err;
  }
  let replayed = 0;
  for (const name of names) {
    if (!name.startsWith(JOURNAL_PREFIX) || !name.endsWith('.json')) continue;
    const path = join(dataDir, name);
    let journal: Journal;
    try {
      journal = JSON.parse(await readFile(path, 'utf8')) as Journal;
    } catch (err) {
      if (isNotFound(err)) continue;
      // Written with O_EXCL and fsynced before any rename: a torn journal means no rename ran.
      await unlink(path).catch(() => undefined);
      continue;
    }
    if (activeJournals.has(path)) continue;
    if (journal.host === hostname() && journal.pid !== process.pid && processAlive(journal.pid)) {
      const age = Date.now() - ((await snapshotOf(path))?.mtimeMs ?? 0);
      if (age < STALE_JOURNAL_MS) continue;
    }
    for (const e of journal.entries) {
      const tempLeft = e.temp !== null && (await snapshotOf(e.temp)) !== null;
      if (tempLeft) {
        await rm(e.temp as string, { force: true });
        if (e.backup) await rm(e.backup, { force: true });
      } else if (e.backup && (await snapshotOf(e.backup)) !== null) {
        await rename(e.backup, e.path);
        await rm(e.backup, { force: true });
      } else if (!e.backup && e.temp !== null) {
        // A new file that was renamed into place: it did not exist before.
        await rm(e.path, { force: true });
      }
    }
    for (const dir of new Set(journal.entries.map((e) => dirname(e.path)))) await fsyncPath(dir);
    await unlink(path);
    replayed++;
  }
  return replayed;
}
