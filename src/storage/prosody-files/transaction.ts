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
import { rename, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { hostname } from 'node:os';
import { StorageError } from '../backend.js';
import type { AccountLease } from '../account-lock.js';
import { ensureDir, fsyncPath, makeBackup, sameFile, snapshotOf, writeDurably, type Snapshot } from './durable-fs.js';
import { JOURNAL_PREFIX, SCRATCH_PREFIX, TEMP_MARK, activeJournals, randomSuffix, type Journal } from './journal.js';
import { NullFile, TempFile, type StagedFile } from './staged-file.js';

/** Points where tests make the transaction fail, to prove nothing half-done remains. */
export interface TransactionFaults {
  /** Called before each temporary file is created (dry runs create none). */
  beforeStage?(path: string): void | Promise<void>;
  /** Called before the rename (or unlink) of the n-th (0-based) target during commit. */
  beforeRename?(index: number, path: string): void | Promise<void>;
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

export interface FileTransactionOptions {
  /** Where the commit journal goes: Prosody's data_path. */
  readonly journalDir: string;
  readonly dryRun: boolean;
  readonly faults?: TransactionFaults;
  /**
   * Held from the check of the originals until the journal is gone, so an export's snapshot
   * (snapshot.ts) sees the user's files either all before or all after this commit.
   */
  readonly commitLock?: () => Promise<AccountLease>;
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
    let lease: AccountLease | undefined;
    try {
      for (const e of entries) if (e.file instanceof TempFile) await e.file.finish();
      lease = await this.options.commitLock?.();
      // Every file read counts, written or not: what is written was derived from it.
      for (const e of this.entries.values()) {
        const now = await snapshotOf(e.path);
        if (!sameFile(e.snapshot ?? null, now)) {
          const name = relative(this.options.journalDir, e.path);
          throw new StorageError('conflict', `${name} changed while the import was prepared (is Prosody running and the user online?)`);
        }
      }
    } catch (err) {
      await lease?.release();
      await this.rollback();
      throw err;
    }
    try {
      await this.commitChecked(entries);
    } finally {
      await lease?.release();
    }
  }

  private async commitChecked(entries: Entry[]): Promise<void> {
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
