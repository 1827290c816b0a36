/**
 * Account locks that hold across processes: what a storage backend offers through
 * `StorageBackend.lockAccount`, and the lock files SQLite and Prosody's file store use.
 *
 * A lease is shared (exports) or exclusive (imports). Every holder dies with its process: a
 * database session ends with it, and a lock file names its owner's pid, so a file whose owner is
 * gone is taken over.
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export type AccountLockMode = 'shared' | 'exclusive';

/** Held until `release`; releasing twice is harmless. */
export interface AccountLease {
  release(): Promise<void>;
}

/** Takes a lease without waiting: undefined while another holder conflicts. */
export type AccountLocker = (jid: string, mode: AccountLockMode) => Promise<AccountLease | undefined>;

/** A 64-bit signed key for PostgreSQL's advisory locks, from the bare JID. */
export function advisoryKey(jid: string): string {
  return createHash('sha256').update(`xporta:account:${jid}`).digest().readBigInt64BE(0).toString();
}

/** A lock name for MariaDB/MySQL GET_LOCK (at most 64 characters). */
export function namedLockKey(jid: string): string {
  return `xporta:${createHash('sha256').update(jid).digest('hex').slice(0, 48)}`;
}

function ownerAlive(file: string): boolean {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
  } catch (err) {
    // Gone meanwhile: its owner released it.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
  // Files are complete when they appear (see HolderFile); anything else is not ours to judge.
  if (!Number.isInteger(pid) || pid <= 0) return true;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * This process's holder file: its pid, written once under `<directory>/.holders/`, and
 * hard-linked into place as each lock file, so that a lock file is complete the moment it
 * appears (a holder killed at any moment never leaves an empty one behind) and taking a lock
 * costs one link rather than a file written aside. Holder files of processes that are gone are
 * removed when a process makes its own.
 */
const holderFiles = new Set<string>();

class HolderFile {
  private path: string | undefined;

  constructor(
    private readonly directory: string,
    private readonly fileMode: number,
    private readonly dirMode: number,
  ) {}

  /** Creates `file` as a link to the holder file, failing with EEXIST when it exists and ENOENT when its directory does not. */
  link(file: string): void {
    for (let attempt = 0; ; attempt++) {
      const holder = this.path ?? this.create();
      try {
        linkSync(holder, file);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        // The holder file has too many links, or was removed by someone: a new one serves.
        if (attempt > 0 || (code !== 'EMLINK' && !(code === 'ENOENT' && !existsSync(holder)))) throw err;
        this.path = undefined;
      }
    }
  }

  private create(): string {
    const holders = join(this.directory, '.holders');
    mkdirSync(holders, { recursive: true, mode: this.dirMode });
    for (const name of readdirSync(holders)) {
      const file = join(holders, name);
      if (!ownerAlive(file)) removeQuietly(file);
    }
    const path = join(holders, `${process.pid}-${randomUUID()}`);
    writeFileSync(path, String(process.pid), { flag: 'wx', mode: this.fileMode });
    if (holderFiles.size === 0) process.once('exit', () => holderFiles.forEach(removeQuietly));
    holderFiles.add(path);
    this.path = path;
    return path;
  }
}

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Lock files under one directory: `<account>.x` for the exclusive holder (created atomically,
 * failing when it exists), and `<account>/s-<pid>-<id>` per shared holder, where `<account>`
 * names the account by a hash of its JID. Each side creates its own file first and then looks for
 * the other kind, so two racing holders may both back off but never both proceed. The exclusive
 * file lies beside the account directories, which only shared holders create: an import into an
 * account never exported costs no directory (a host import of many new accounts, no mkdir each),
 * and finding no shared holder is one failed directory read. Files of processes that no longer
 * run are ignored and removed. Every process on the machine that shares the storage must use the
 * same directory (the configured dataDir).
 */
export function fileAccountLocker(directory: string, fileMode = 0o600): AccountLocker {
  const dirMode = fileMode | ((fileMode & 0o444) >> 2);
  const holder = new HolderFile(directory, fileMode, dirMode);
  return (jid, mode) => {
    const name = createHash('sha256').update(jid).digest('hex').slice(0, 32);
    const dir = join(directory, name);
    /** Creates `file` in `parent`, which is made on first use (and then stays). */
    const publish = (file: string, parent: string): void => {
      try {
        holder.link(file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        mkdirSync(parent, { recursive: true, mode: dirMode });
        holder.link(file);
      }
    };
    const exclusive = join(directory, `${name}.x`);
    const liveShared = (): boolean => {
      // No directory: no shared holder ever took this account (it is made before their file).
      if (!existsSync(dir)) return false;
      return readdirSync(dir)
        .filter((f) => f.startsWith('s-'))
        .some((f) => {
          const file = join(dir, f);
          if (ownerAlive(file)) return true;
          removeQuietly(file);
          return false;
        });
    };
    let mine: string;
    if (mode === 'exclusive') {
      let created = false;
      for (let attempt = 0; attempt < 2 && !created; attempt++) {
        try {
          publish(exclusive, directory);
          created = true;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          if (ownerAlive(exclusive)) return Promise.resolve(undefined);
          removeQuietly(exclusive);
        }
      }
      if (!created) return Promise.resolve(undefined);
      if (liveShared()) {
        removeQuietly(exclusive);
        return Promise.resolve(undefined);
      }
      mine = exclusive;
    } else {
      mine = join(dir, `s-${process.pid}-${randomUUID()}`);
      publish(mine, dir);
      try {
        if (ownerAlive(exclusive)) {
          removeQuietly(mine);
          return Promise.resolve(undefined);
        }
      } catch (err) {
        removeQuietly(mine);
        throw err;
      }
    }
    let released = false;
    return Promise.resolve({
      release: () => {
        if (!released) {
          released = true;
          // The account's directory stays: removing it could race another process's mkdir.
          removeQuietly(mine);
        }
        return Promise.resolve();
      },
    });
  };
}
