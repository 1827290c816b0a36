/**
 * Prosody's internal file storage (`storage = "internal"`, util/datamanager.lua) as a
 * {@link StorageBackend}: `.dat` files for keyval/map stores, `.list` files for archives.
 *
 * Reads never load a `.list` file whole: items are parsed one at a time as the lines arrive.
 * An import is one {@link FileTransaction}: all of the user's new files are prepared beside the
 * old ones and only then renamed into place (see transaction.ts for the guarantees and the
 * window that remains). Prosody reads these files on demand and caches some of them (rosters of
 * online users, MAM item counts): import while Prosody is stopped, or at least while the user is
 * offline; a file Prosody changes during an import makes it fail with `conflict`.
 */
import { access, constants as fsConstants, stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ApplyOptions, ApplyReport, ReadOptions, StorageBackend, StorageSnapshot, UserRef } from '../backend.js';
import { StorageError } from '../backend.js';
import { DATA_KINDS, type DataKind, type UserRecord, type UserStart } from '../../records/model.js';
import { accountFromStore, type ProsodyHostOptions, type ProsodyVersion } from '../prosody/accounts.js';
import { detectProsodyVersion } from './generation.js';
import { ARCHIVE_STORE, OFFLINE_STORE, archiveRecordFromItem, offlineRecordFromItem } from '../prosody/archive.js';
import { blocklistFromStore } from '../prosody/blocklist.js';
import { archiveItemToElement, storeToElement } from '../prosody/opaque.js';
import { PEP_ITEMS_PREFIX, PEP_STORE, pepItemFromArchive, pepNodeFromStore } from '../prosody/pep.js';
import { privacyFromStore } from '../prosody/privacy.js';
import { privateFromStore } from '../prosody/private.js';
import { rosterFromStore } from '../prosody/roster.js';
import { PreserializedError } from '../prosody/stanza.js';
import { DEFAULT_IMPORTABLE_STORES, isOpaqueStore } from '../prosody/stores.js';
import { compareStrings } from '../prosody/util.js';
import { vcardFromStore } from '../prosody/vcard.js';
import { DEFAULT_ARCHIVE_ITEM_LIMIT, DEFAULT_SEEN_IN_MEMORY, ProsodyFilesImport } from './import.js';
import { FileStore, type FileLimits } from './files.js';
import { stanzaOfListItem } from './list-items.js';
import { PathError } from './paths.js';
import { recoverJournals, removeOrphans } from './journal.js';
import { FileTransaction, type TransactionFaults } from './transaction.js';
import { CommitLocks, FilesSnapshot } from './snapshot.js';

export interface ProsodyFilesOptions {
  /** Prosody's `data_path`. */
  readonly path: string;
  /** The VirtualHosts served, with what xporta must know of their configuration. */
  readonly hosts: Readonly<Record<string, ProsodyHostOptions>>;
  /** Opaque stores an import may write (default: account_details, archive_prefs). */
  readonly importStores?: readonly string[];
  /**
   * Prosody's `storage_archive_item_limit` (default 10,000). An import writes every item anyway
   * and warns when a store ends up above it, since Prosody would refuse further items.
   */
  readonly archiveItemLimit?: number;
  /** Size and depth limits for what is read. */
  readonly limits?: FileLimits;
  /** The Prosody generation; when absent it is detected from the host's directory (see generation.ts), else 0.12. */
  readonly serverVersion?: ProsodyVersion;
  /** Failure injection for tests. */
  readonly faults?: TransactionFaults;
  /**
   * @internal Keys an archive store's de-duplication keeps in memory before it moves them to a
   * scratch file (default {@link DEFAULT_SEEN_IN_MEMORY}); tests lower it to reach that path.
   */
  readonly seenInMemory?: number;
}

/** A full disk (or quota) while staging or committing, wherever it surfaced, as `insufficient-storage`. */
function noSpaceAsStorageError(err: unknown): unknown {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      return new StorageError('insufficient-storage', 'no space left in the Prosody data directory; the import was rolled back and nothing was changed', { cause: err });
    }
  }
  return err;
}

export class ProsodyFilesBackend implements StorageBackend {
  readonly name = 'prosody-files';
  readonly supportedKinds: ReadonlySet<DataKind> = new Set(DATA_KINDS);
  private readonly dataDir: string;
  private readonly files: FileStore;
  private readonly importStores: ReadonlySet<string>;
  /** Imports per user run one after the other. */
  private readonly userQueues = new Map<string, Promise<unknown>>();
  private readonly commitLocks: CommitLocks;

  constructor(private readonly options: ProsodyFilesOptions) {
    this.dataDir = resolve(options.path);
    this.files = new FileStore(this.dataDir, options.limits ?? {});
    this.commitLocks = new CommitLocks(this.dataDir);
    this.importStores = new Set(options.importStores ?? DEFAULT_IMPORTABLE_STORES);
  }

  async ping(): Promise<void> {
    try {
      if (!(await stat(this.dataDir)).isDirectory()) throw new Error('not a directory');
      await access(this.dataDir, fsConstants.R_OK | fsConstants.W_OK | fsConstants.X_OK);
    } catch (err) {
      throw new StorageError('unavailable', `Prosody data directory ${this.dataDir}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }

  /**
   * Rolls back imports interrupted by a crash during their commit, then deletes the temporaries
   * and scratch files dead imports left behind; returns how many journals were replayed.
   */
  async recover(): Promise<number> {
    const replayed = await recoverJournals(this.dataDir);
    await removeOrphans(this.dataDir);
    return replayed;
  }

  /** The configured hosts and every host directory found in the data directory. */
  async listHosts(): Promise<string[]> {
    const hosts = new Set([...Object.keys(this.options.hosts), ...(await this.files.hosts())]);
    return [...hosts].sort(compareStrings);
  }

  async *listUsers(host: string): AsyncIterable<string> {
    yield* await this.guard(() => this.files.users(host, 'accounts', 'dat'));
  }

  async userExists(ref: UserRef): Promise<boolean> {
    return (await this.readAccountTable(ref)) !== undefined;
  }

  private readAccountTable(ref: UserRef, files: FileStore = this.files) {
    return this.guard(() => files.readTable(files.path(ref.host, 'accounts', ref.user, 'dat')));
  }

  async readAccount(ref: UserRef, files: FileStore = this.files): Promise<UserStart | null> {
    const data = await this.readAccountTable(ref, files);
    return data ? accountFromStore(ref.user, data) : null;
  }

  /**
   * Each account an export reads is pinned at its first read: hard links to all of its files,
   * taken while no import of it commits (see snapshot.ts).
   */
  snapshot(): Promise<StorageSnapshot> {
    const snapshot = new FilesSnapshot(this.files, this.commitLocks, this.options.limits ?? {});
    const pinned = async (ref: UserRef): Promise<FileStore> => {
      await this.guard(() => snapshot.pin(ref.host, ref.user));
      return snapshot.files;
    };
    const readUser = async function* (this: ProsodyFilesBackend, ref: UserRef, options: ReadOptions): AsyncGenerator<UserRecord> {
      yield* this.readUser(ref, options, await pinned(ref));
    };
    return Promise.resolve({
      readAccount: async (ref) => this.readAccount(ref, await pinned(ref)),
      readUser: readUser.bind(this),
      close: () => snapshot.close(),
    });
  }

  /** Path problems (an empty or unencodable name) are the caller's invalid data. */
  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof PathError) throw new StorageError('invalid-data', err.message, { cause: err });
      throw err;
    }
  }

  async *readUser(ref: UserRef, options: ReadOptions, files: FileStore = this.files): AsyncIterable<UserRecord> {
    try {
      yield* this.records(ref, options, files);
    } catch (err) {
      if (err instanceof PathError || err instanceof PreserializedError) {
        throw new StorageError('invalid-data', `${ref.user}@${ref.host}: ${err.message}`, { cause: err });
      }
      throw err;
    }
  }

  private async *records(ref: UserRef, options: ReadOptions, files: FileStore): AsyncGenerator<UserRecord> {
    const { host, user } = ref;
    const jid = `${user}@${host}`;
    const { include, signal } = options;
    const dat = (store: string): string => files.path(host, store, user, 'dat');
    const list = (store: string): string => files.path(host, store, user, 'list');
    const table = (store: string) => files.readTable(dat(store));
    const listStores = include.has('pep') || include.has('other') ? await files.userStores(host, user, 'list') : [];

    if (include.has('roster')) {
      const data = await table('roster');
      if (data) {
        const { roster, pending } = rosterFromStore(data, jid);
        yield roster;
        yield* pending;
      }
    }
    if (include.has('vcard')) {
      const data = await table('vcard');
      if (data && data.get('name') !== undefined) yield vcardFromStore(data);
    }
    if (include.has('private')) {
      const data = await table('private');
      for (const [key, value] of [...(data?.hash ?? [])].sort((a, b) => compareStrings(a[0], b[0]))) {
        const record = key === '' ? undefined : privateFromStore(key, value);
        if (record) yield record;
      }
    }
    if (include.has('pep')) {
      const data = await table(PEP_STORE);
      for (const [node, value] of [...(data?.hash ?? [])].sort((a, b) => compareStrings(a[0], b[0]))) {
        if (node !== '') yield pepNodeFromStore(node, value);
      }
      for (const store of listStores) {
        if (!store.startsWith(PEP_ITEMS_PREFIX)) continue;
        const node = store.slice(PEP_ITEMS_PREFIX.length);
        for await (const item of files.readList(list(store), signal)) yield pepItemFromArchive(node, item);
      }
    }
    if (include.has('archive')) {
      for await (const item of files.readList(list(ARCHIVE_STORE), signal)) {
        const record = archiveRecordFromItem(item, jid);
        if (record) yield record;
      }
    }
    if (include.has('offline')) {
      for await (const item of files.readList(list(OFFLINE_STORE), signal)) {
        const record = offlineRecordFromItem(item);
        if (record) yield record;
      }
    }
    if (include.has('blocklist')) {
      const data = await table('blocklist');
      if (data) yield blocklistFromStore(data);
    }
    if (include.has('privacy')) {
      const data = await table('privacy');
      if (data) yield privacyFromStore(data);
    }
    if (include.has('other')) {
      for (const store of await files.userStores(host, user, 'dat')) {
        if (!isOpaqueStore(store, false)) continue;
        const data = await table(store);
        if (data) yield { kind: 'opaque', element: storeToElement(store, data) };
      }
      for (const store of listStores) {
        if (!isOpaqueStore(store, true)) continue;
        // mod_storage_internal hands out stanzas, as mod_storage_sql's `xml` values are.
        for await (const item of files.readList(list(store), signal)) {
          yield { kind: 'opaque', element: archiveItemToElement(store, stanzaOfListItem(item)) };
        }
      }
    }
  }

  async applyUser(ref: UserRef, account: UserStart, records: AsyncIterable<UserRecord>, options: ApplyOptions): Promise<ApplyReport> {
    const host = this.options.hosts[ref.host];
    if (!host) throw new StorageError('invalid-data', `host ${ref.host} is not configured for this backend`);
    options.signal?.throwIfAborted();
    const key = `${ref.user}@${ref.host}`;
    const previous = this.userQueues.get(key) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.applyNow(ref, host, account, records, options));
    this.userQueues.set(key, run);
    try {
      return await run;
    } finally {
      if (this.userQueues.get(key) === run) this.userQueues.delete(key);
    }
  }

  private async applyNow(ref: UserRef, host: ProsodyHostOptions, account: UserStart, records: AsyncIterable<UserRecord>, options: ApplyOptions): Promise<ApplyReport> {
    if (!options.dryRun) await this.recover();
    const tx = new FileTransaction({
      journalDir: this.dataDir,
      dryRun: options.dryRun,
      commitLock: () => this.commitLocks.acquire(`${ref.user}@${ref.host}`, 'exclusive'),
      ...(this.options.faults ? { faults: this.options.faults } : {}),
    });
    try {
      const serverVersion = this.options.serverVersion ?? (await detectProsodyVersion(this.dataDir, ref.host)) ?? '0.12';
      const importer = new ProsodyFilesImport(this.files, tx, ref, {
        host,
        serverVersion,
        importStores: this.importStores,
        archiveItemLimit: this.options.archiveItemLimit ?? DEFAULT_ARCHIVE_ITEM_LIMIT,
        seenInMemory: this.options.seenInMemory ?? DEFAULT_SEEN_IN_MEMORY,
      }, options);
      let report: ApplyReport;
      try {
        report = await this.guard(() => importer.run(account, records));
      } finally {
        importer.close();
      }
      options.signal?.throwIfAborted();
      await tx.commit();
      return report;
    } catch (err) {
      await tx.rollback().catch(() => undefined);
      throw noSpaceAsStorageError(err);
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.userQueues.values()]);
  }
}
