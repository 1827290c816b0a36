/**
 * All-or-nothing replacement of a set of files, for one user's import.
 *
 * Stage: every new file is written to `<file>~xporta-<random>` in the file's own directory and
 * fsynced; a file to delete is only noted. Nothing visible changes. Any failure (or
 * {@link FileTransaction.rollback}) deletes the temporaries and the originals stay untouched.
 *
 * Commit:
 * 1. every original is checked to be the one seen when it was read (inode, size, mtime): a
 *    running Prosody that wrote meanwhile makes the import fail with `conflict`, not lose data;
 * 2. a journal listing every step is written and fsynced (`<data_path>/.xporta-journal-*.json`;
 *    Prosody ignores dot files there);
 * 3. each original gets a backup `<file>~xporta-<random>.bak`: a hard link, so it costs nothing
 *    and keeps the very inode (a copy where links are impossible);
 * 4. temporaries are renamed over their targets and deletions unlinked, one by one;
 * 5. the directories are fsynced, the journal is removed (the commit point), then the backups.
 *
 * A failure in 3–4 is rolled back at once: renamed targets get their backup renamed back (or are
 * removed when they did not exist), untouched ones keep their original. If the process dies in
 * 3–5 instead, the journal remains and {@link recoverJournals} (run before every import) rolls
 * the same way. Prosody ignores all these names: they end neither in `.dat` nor in `.list`.
 *
 * The window that remains: between the first and the last rename of step 4 (microseconds for
 * the handful of files of one user) a reader, Prosody included, can see some files new and
 * others old; and after a crash there, until the next recovery runs. rename(2) keeps every
 * single file whole at every moment.
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants, createReadStream } from 'node:fs';
import { copyFile, link, mkdir, open, readFile, readdir, rename, rm, stat, unlink, writeFile, chown, chmod, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { hostname } from 'node:os';
import { StorageError } from '../backend.js';

/** Points where tests make the transaction fail, to prove nothing half-done remains. */
export interface TransactionFaults {
  /** Called before each temporary file is created (dry runs create none). */
  beforeStage?(path: string): void | Promise<void>;
  /** Called before the rename (or unlink) of the n-th (0-based) target during commit. */
  beforeRename?(index: number, path: string): void | Promise<void>;
}

export const TEMP_MARK = '~xporta-';
const JOURNAL_PREFIX = '.xporta-journal-';
const SCRATCH_PREFIX = '.xporta-scratch-';
const WRITE_CHUNK = 256 * 1024;

interface Snapshot {
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

async function snapshotOf(path: string): Promise<Snapshot | null> {
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

/**
 * `<pid>-<random>`: the process id lets {@link removeOrphans} tell the temporaries of a live import
 * (in this or another process on this machine) from those a dead one left behind.
 */
function randomSuffix(): string {
  return `${process.pid}-${randomBytes(9).toString('hex')}`;
}

async function fsyncPath(path: string): Promise<void> {
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

interface Ownership {
  readonly uid: number;
  readonly gid: number;
  readonly mode: number;
}

/**
 * The owner and mode a file put in `path`'s place should get, so that Prosody can still write it
 * and nobody else gains access: the replaced file's, or for a new file its directory's without
 * the execute bits (Prosody's default umask 027 gives 0750 directories and 0640 files).
 */
async function ownershipFor(path: string): Promise<Ownership | undefined> {
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

async function applyOwnership(path: string, owner: Ownership | undefined): Promise<void> {
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

/** A file being written to its temporary name. */
export interface StagedFile {
  readonly path: string;
  write(text: string): Promise<void>;
  /** Appends another file's bytes unchanged. */
  appendFileContents(source: string): Promise<void>;
  /** Bytes written so far. */
  readonly bytes: number;
}

class TempFile implements StagedFile {
  private handle: FileHandle | undefined;
  private buffered: string[] = [];
  private bufferedLength = 0;
  bytes = 0;

  constructor(
    readonly path: string,
    readonly temp: string,
  ) {}

  async open(): Promise<void> {
    // Private until finished: it may hold credentials; finish() gives it the final mode.
    this.handle = await open(this.temp, 'wx', 0o600);
  }

  async write(text: string): Promise<void> {
    this.buffered.push(text);
    this.bufferedLength += text.length;
    if (this.bufferedLength >= WRITE_CHUNK) await this.flush();
  }

  private async flush(): Promise<void> {
    if (this.bufferedLength === 0 || !this.handle) return;
    const data = Buffer.from(this.buffered.join(''), 'utf8');
    this.buffered = [];
    this.bufferedLength = 0;
    await this.handle.write(data);
    this.bytes += data.length;
  }

  async appendFileContents(source: string): Promise<void> {
    await this.flush();
    if (!this.handle) throw new Error('file is closed');
    let last = 0x0a;
    for await (const chunk of createReadStream(source)) {
      const data = chunk as Buffer;
      if (data.length === 0) continue;
      await this.handle.write(data);
      this.bytes += data.length;
      last = data[data.length - 1] as number;
    }
    // What follows must start on a line of its own, as Prosody's next append would.
    if (last !== 0x0a) await this.write('\n');
  }

  /** Take over the original's owner and mode, flush, fsync, close. */
  async finish(): Promise<void> {
    if (!this.handle) return;
    await this.flush();
    await applyOwnership(this.temp, await ownershipFor(this.path));
    await this.handle.sync();
    await this.handle.close();
    this.handle = undefined;
  }

  async discard(): Promise<void> {
    await this.handle?.close().catch(() => undefined);
    this.handle = undefined;
    await rm(this.temp, { force: true });
  }
}

/** What a dry run writes: nothing, but the same sizes. */
class NullFile implements StagedFile {
  bytes = 0;
  constructor(readonly path: string) {}
  write(text: string): Promise<void> {
    this.bytes += Buffer.byteLength(text, 'utf8');
    return Promise.resolve();
  }
  async appendFileContents(source: string): Promise<void> {
    this.bytes += (await stat(source)).size;
  }
}

interface Entry {
  readonly path: string;
  snapshot: Snapshot | null | undefined;
  file?: TempFile | NullFile;
  remove: boolean;
  backup?: string;
  /** Commit progress: the target now holds the new state. */
  done?: boolean;
}

interface JournalEntry {
  readonly path: string;
  readonly temp: string | null;
  readonly backup: string | null;
}

interface Journal {
  readonly pid: number;
  readonly host: string;
  readonly entries: readonly JournalEntry[];
}

/** Journals of commits running in this process right now. */
const activeJournals = new Set<string>();
/** A journal older than this cannot belong to a commit still running (they take milliseconds). */
const STALE_JOURNAL_MS = 60 * 60 * 1000;

export interface FileTransactionOptions {
  /** Where the commit journal goes: Prosody's data_path. */
  readonly journalDir: string;
  readonly dryRun: boolean;
  readonly faults?: TransactionFaults;
}

export class FileTransaction {
  private readonly entries = new Map<string, Entry>();
  private state: 'open' | 'committed' | 'rolled-back' = 'open';

  constructor(private readonly options: FileTransactionOptions) {}

  private entry(path: string): Entry {
    if (this.state !== 'open') throw new Error(`transaction already ${this.state}`);
    let e = this.entries.get(path);
    if (!e) {
      e = { path, snapshot: undefined, remove: false };
      this.entries.set(path, e);
    }
    return e;
  }

  /**
   * Notes the file's current identity. Call before reading a file whose content the new one is
   * derived from: commit fails if it changed afterwards. Returns whether it exists.
   */
  async observe(path: string): Promise<boolean> {
    const e = this.entry(path);
    if (e.snapshot === undefined) e.snapshot = await snapshotOf(path);
    return e.snapshot !== null;
  }

  /** A new file to replace `path` on commit; a second call for the same path starts it over. */
  async stage(path: string): Promise<StagedFile> {
    const e = this.entry(path);
    await this.observe(path);
    if (e.file instanceof TempFile) await e.file.discard();
    e.remove = false;
    if (this.options.dryRun) {
      e.file = new NullFile(path);
      return e.file;
    }
    await this.options.faults?.beforeStage?.(path);
    await ensureDir(dirname(path));
    const file = new TempFile(path, `${path}${TEMP_MARK}${randomSuffix()}`);
    e.file = file;
    await file.open();
    return file;
  }

  /**
   * A path for a file the import needs while it runs (not a store), beside the journals in
   * Prosody's data directory rather than in a temporary directory that may be memory. The caller
   * creates and removes it.
   */
  scratchPath(extension: string): string {
    return join(this.options.journalDir, `${SCRATCH_PREFIX}${randomSuffix()}${extension}`);
  }

  /** `path` is deleted on commit (if it exists then). */
  async remove(path: string): Promise<void> {
    const e = this.entry(path);
    await this.observe(path);
    if (e.file instanceof TempFile) await e.file.discard();
    e.file = undefined;
    e.remove = true;
  }

  private ordered(): Entry[] {
    const all = [...this.entries.values()].filter((e) => e.file !== undefined || (e.remove && e.snapshot !== null));
    // List indexes (Prosody 13's `.lidx`) go first: a list is never in place beside a stale index.
    // The account file last: until it is in place, a new account does not exist for Prosody.
    const isIndex = (e: Entry): boolean => e.path.endsWith('.lidx');
    const isAccount = (e: Entry): boolean => basename(dirname(e.path)) === 'accounts';
    return [...all.filter(isIndex), ...all.filter((e) => !isAccount(e) && !isIndex(e)), ...all.filter(isAccount)];
  }

  async rollback(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'rolled-back';
    const errors: unknown[] = [];
    for (const e of this.entries.values()) {
      if (e.file instanceof TempFile) await e.file.discard().catch((err: unknown) => errors.push(err));
    }
    if (errors.length > 0) throw new AggregateError(errors, 'could not remove every temporary file');
  }

  async commit(): Promise<void> {
    if (this.state !== 'open') throw new Error(`transaction already ${this.state}`);
    if (this.options.dryRun) {
      this.state = 'committed';
      return;
    }
    const entries = this.ordered();
    try {
      for (const e of entries) if (e.file instanceof TempFile) await e.file.finish();
      // Every file read counts, written or not: what is written was derived from it.
      for (const e of this.entries.values()) {
        const now = await snapshotOf(e.path);
        if (!sameFile(e.snapshot ?? null, now)) {
          const name = relative(this.options.journalDir, e.path);
          throw new StorageError('conflict', `${name} changed while the import was prepared (is Prosody running and the user online?)`);
        }
      }
    } catch (err) {
      await this.rollback();
      throw err;
    }

    const journalPath = join(this.options.journalDir, `${JOURNAL_PREFIX}${randomSuffix()}.json`);
    for (const e of entries) if (e.snapshot) e.backup = `${e.path}${TEMP_MARK}${randomSuffix()}.bak`;
    const journal: Journal = {
      pid: process.pid,
      host: hostname(),
      entries: entries.map((e) => ({ path: e.path, temp: e.file instanceof TempFile ? e.file.temp : null, backup: e.backup ?? null })),
    };
    activeJournals.add(journalPath);
    try {
      await writeDurably(journalPath, JSON.stringify(journal));
    } catch (err) {
      activeJournals.delete(journalPath);
      await rm(journalPath, { force: true }).catch(() => undefined);
      await this.rollback();
      throw err;
    }
    try {
      await this.apply(entries, journalPath);
    } finally {
      activeJournals.delete(journalPath);
    }
  }

  private async apply(entries: Entry[], journalPath: string): Promise<void> {
    try {
      for (const e of entries) if (e.backup) await makeBackup(e.path, e.backup);
      for (const [i, e] of entries.entries()) {
        await this.options.faults?.beforeRename?.(i, e.path);
        if (e.file instanceof TempFile) await rename(e.file.temp, e.path);
        else await unlink(e.path);
        e.done = true;
      }
      for (const dir of new Set(entries.map((e) => dirname(e.path)))) await fsyncPath(dir);
    } catch (err) {
      try {
        await this.undo(entries);
        await unlink(journalPath);
        await fsyncPath(this.options.journalDir);
      } catch (undoErr) {
        this.state = 'rolled-back';
        throw new StorageError('unavailable', `import failed and could not be fully rolled back; the journal ${journalPath} will be replayed before the next import`, {
          cause: new AggregateError([err, undoErr]),
        });
      }
      this.state = 'rolled-back';
      throw err;
    }

    // Removing the journal is the commit point: until then a recovery rolls this import back.
    try {
      await unlink(journalPath);
    } catch (err) {
      this.state = 'rolled-back';
      throw new StorageError('unavailable', `the journal ${journalPath} could not be removed: the next import will roll this one back`, { cause: err });
    }
    this.state = 'committed';
    // Leftover backups would only waste space: Prosody never reads them.
    await fsyncPath(this.options.journalDir).catch(() => undefined);
    for (const e of entries) if (e.backup) await rm(e.backup, { force: true }).catch(() => undefined);
  }

  private async undo(entries: Entry[]): Promise<void> {
    for (const e of entries) {
      if (e.done) {
        if (e.backup) await rename(e.backup, e.path);
        else await rm(e.path, { force: true });
      } else {
        if (e.file instanceof TempFile) await rm(e.file.temp, { force: true });
        if (e.backup) await rm(e.backup, { force: true });
      }
    }
    for (const dir of new Set(entries.map((e) => dirname(e.path)))) await fsyncPath(dir);
  }
}

function sameFile(a: Snapshot | null, b: Snapshot | null): boolean {
  if (a === null || b === null) return a === b;
  return a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

async function makeBackup(path: string, backup: string): Promise<void> {
  try {
    await link(path, backup);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV' && code !== 'EMLINK') throw err;
    await copyFile(path, backup, fsConstants.COPYFILE_EXCL);
    await fsyncPath(backup);
  }
}

async function writeDurably(path: string, text: string): Promise<void> {
  await writeFile(path, text, { flag: 'wx', mode: 0o600 });
  await fsyncPath(path);
  await fsyncPath(dirname(path));
}

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
 * is replayed first by {@link recoverJournals}) and scratch files (`.xporta-scratch-*`). Looks in
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
        if (depth < 2) await sweep(path, depth + 1);
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
