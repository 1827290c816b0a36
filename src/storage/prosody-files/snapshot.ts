/**
 * Consistent reads of one account for an export, against imports that commit meanwhile.
 *
 * An import replaces each of the user's files whole, by rename (transaction.ts), and changes
 * nothing in place. So a hard link taken to every one of the user's files at one moment pins
 * that moment's content: a later rename puts a new inode at the path and leaves the linked one
 * as it was. The links go into a directory of the snapshot's own below the data directory
 * (`.xporta-snapshot-<pid>-<random>/`, the same layout, on the same file system; a copy where
 * links are impossible), the export reads from there, and closing removes it.
 *
 * "One moment" is made by a commit lock per account (lock files in `.xporta-locks/` in the data
 * directory, honoured by every process on the storage): a commit holds it exclusively from the
 * check of its originals until its journal is gone; taking the links holds it shared. Each side
 * holds it for milliseconds, so the other waits briefly rather than failing. A journal a dead
 * commit left is rolled back before the links are taken.
 *
 * What this does not pin: Prosody appends messages to a `.list` file in place, and such an
 * append (the account's own traffic while it is exported) lands in the linked file too.
 */
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { StorageError } from '../backend.js';
import { fileAccountLocker, type AccountLease, type AccountLocker } from '../account-lock.js';
import { isNotFound, makeBackup } from './durable-fs.js';
import { FileStore, type FileLimits } from './files.js';
import { SNAPSHOT_PREFIX, randomSuffix, recoverJournals } from './journal.js';
import type { FileExtension } from './paths.js';

export const COMMIT_LOCKS_DIR = '.xporta-locks';

/** How long either side waits for the other's few milliseconds, and how often it looks. */
const COMMIT_LOCK_WAIT_MS = 30_000;
const COMMIT_LOCK_POLL_MS = 5;

/** The per-account commit lock of one data directory. */
export class CommitLocks {
  private readonly locker: AccountLocker;

  constructor(dataDir: string) {
    this.locker = fileAccountLocker(join(dataDir, COMMIT_LOCKS_DIR));
  }

  /** Waits while the other side holds it; `unavailable` (retryable) if that lasts far longer than any commit. */
  async acquire(jid: string, mode: 'shared' | 'exclusive'): Promise<AccountLease> {
    const deadline = Date.now() + COMMIT_LOCK_WAIT_MS;
    for (;;) {
      const lease = await this.locker(jid, mode);
      if (lease) return lease;
      if (Date.now() >= deadline) {
        throw new StorageError('unavailable', `the files of ${jid} stayed locked by another import or export for ${COMMIT_LOCK_WAIT_MS / 1000} s`, { retryable: true });
      }
      await new Promise((resolve) => setTimeout(resolve, COMMIT_LOCK_POLL_MS));
    }
  }
}

const EXTENSIONS: readonly FileExtension[] = ['dat', 'list'];

/** The linked files of the accounts an export has read so far; `files` reads them. */
export class FilesSnapshot {
  readonly files: FileStore;
  private readonly pinned = new Map<string, Promise<void>>();
  private closed = false;

  constructor(
    private readonly source: FileStore,
    private readonly locks: CommitLocks,
    limits: FileLimits,
  ) {
    this.files = new FileStore(join(source.dataDir, `${SNAPSHOT_PREFIX}${randomSuffix()}`), limits);
  }

  /** Links the account's files on first use; later calls for the same account reuse them. */
  pin(host: string, user: string): Promise<void> {
    const key = `${user}@${host}`;
    let done = this.pinned.get(key);
    if (!done) {
      done = this.link(host, user, key);
      this.pinned.set(key, done);
    }
    return done;
  }

  private async link(host: string, user: string, jid: string): Promise<void> {
    if (this.closed) throw new Error('snapshot closed');
    const lease = await this.locks.acquire(jid, 'shared');
    try {
      await recoverJournals(this.source.dataDir);
      for (const ext of EXTENSIONS) {
        for (const store of await this.source.userStores(host, user, ext)) {
          const from = this.source.path(host, store, user, ext);
          const to = this.files.path(host, store, user, ext);
          await mkdir(dirname(to), { recursive: true, mode: 0o700 });
          try {
            await makeBackup(from, to);
          } catch (err) {
            // Removed by Prosody between the listing and the link: absent at this moment, as it is now.
            if (!isNotFound(err)) throw err;
          }
        }
      }
    } finally {
      await lease.release();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.allSettled(this.pinned.values());
    await rm(this.files.dataDir, { recursive: true, force: true });
  }
}
