/**
 * Prosody's SQL storage (mod_storage_sql, Prosody 0.12) as a {@link StorageBackend}, over SQLite,
 * PostgreSQL and MySQL/MariaDB. Reads stream archives page by page (keyset pagination on
 * `sort_id`), holding no connection between pages; an import runs in one transaction.
 */
import type { AccountsRead, ApplyBatch, ApplyOptions, ApplyReport, ReadOptions, StorageBackend, StorageSnapshot, UserRef } from '../backend.js';
import { StorageError } from '../backend.js';
import { openApplyBatch } from '../sql/batch.js';
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
import { DEFAULT_IMPORTABLE_STORES, isOpaqueStore } from '../prosody/stores.js';
import { compareStrings } from '../prosody/util.js';
import { vcardFromStore } from '../prosody/vcard.js';
import { ProsodyJsonError } from '../prosody/json.js';
import { PreserializedError } from '../prosody/stanza.js';
import { StoredValueError } from '../prosody/values.js';
import { XmlCharError } from '../../xml/xml.js';
import { BulkLoadWarningError } from '../sql/row-stream.js';
import { ProsodySqlImport } from './import.js';
import { PendingGroup } from './pending-rows.js';
import { databaseAccountLocks, inTransaction, openDialect, openSnapshot, pingDatabase, snapshotReads, storageErrorOf, type AccountLocks, type SqlConnection } from '../sql/connection.js';
import { text } from '../sql/columns.js';
import type { SqlDialect, SqlSession } from '../sql/dialect.js';
import { mergeKeyval } from '../prosody/keyval.js';
import { loadHostRows, queriedRows, type AccountRows } from './account-rows.js';
import { ensureSchema } from './schema.js';

export type ProsodySqlConnection = SqlConnection;

/** `keyval_store_get` on an account's rows: undefined when the store has none. */
async function keyval(rows: AccountRows, store: string): Promise<ReturnType<typeof mergeKeyval> | undefined> {
  const entries = await rows.entries(store);
  return entries && mergeKeyval(entries);
}

export interface ProsodySqlSettings {
  /** The VirtualHosts served, with what xporta must know of their configuration. */
  readonly hosts: Readonly<Record<string, ProsodyHostOptions>>;
  /** Opaque stores an import may write (default: account_details, archive_prefs). */
  readonly importStores?: readonly string[];
  /** Archive rows fetched per query when reading (default 1000). */
  readonly readBatchSize?: number;
  /** The Prosody generation; when absent it is detected from the database (see generation.ts), else 0.12. */
  readonly serverVersion?: ProsodyVersion;
}

export type ProsodySqlOptions = ProsodySqlConnection & ProsodySqlSettings;

/** Data that cannot be encoded for Prosody (or stored data Prosody's format does not allow). */
const DATA_ERRORS = [XmlCharError, ProsodyJsonError, PreserializedError, StoredValueError, BulkLoadWarningError];

function asStorageError(err: unknown): unknown {
  return storageErrorOf(err, DATA_ERRORS);
}

export class ProsodySqlBackend implements StorageBackend {
  readonly name: string;
  readonly supportedKinds: ReadonlySet<DataKind> = new Set(DATA_KINDS);
  private readonly db: SqlDialect;
  /** The database's own account locks (PostgreSQL, MariaDB); absent on SQLite. */
  readonly lockAccount?: AccountLocks;
  private readonly settings: ProsodySqlSettings;
  private readonly importStores: ReadonlySet<string>;
  private readonly batchSize: number;
  private schema: Promise<unknown> | undefined;

  constructor(options: ProsodySqlOptions);
  /** Over an already opened dialect (tests wrap one to observe its queries). */
  constructor(db: SqlDialect, settings: ProsodySqlSettings);
  constructor(optionsOrDb: ProsodySqlOptions | SqlDialect, settings?: ProsodySqlSettings) {
    const isDialect = 'begin' in optionsOrDb;
    this.db = isDialect ? optionsOrDb : openDialect(optionsOrDb);
    this.settings = isDialect ? (settings as ProsodySqlSettings) : optionsOrDb;
    const locks = databaseAccountLocks(this.db);
    if (locks) this.lockAccount = locks;
    this.name = `prosody-sql:${this.db.name}`;
    this.importStores = new Set(this.settings.importStores ?? DEFAULT_IMPORTABLE_STORES);
    this.batchSize = this.settings.readBatchSize ?? 1000;
  }

  /** Creates Prosody's tables (as Prosody would) where they are missing. Runs once per instance. */
  ensureSchema(): Promise<unknown> {
    // Without a configured generation, 0.12's DDL: Prosody 13 upgrades it itself on its first start.
    this.schema ??= ensureSchema(this.db, this.settings.serverVersion ?? '0.12').catch((err: unknown) => {
      this.schema = undefined;
      throw new StorageError('unavailable', `cannot prepare the Prosody tables: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    });
    return this.schema;
  }

  ping(): Promise<void> {
    return pingDatabase(this.db);
  }

  listHosts(): Promise<string[]> {
    return Promise.resolve(Object.keys(this.settings.hosts).sort(compareStrings));
  }

  async *listUsers(host: string): AsyncIterable<string> {
    await this.ensureSchema();
    let after = '';
    for (;;) {
      const rows = await this.db.query(
        `SELECT DISTINCT "user" FROM "prosody" WHERE "host" = ? AND "store" = 'accounts' AND "user" > ? ORDER BY "user" LIMIT ${this.batchSize}`,
        [host, after],
      );
      for (const row of rows) {
        after = text(row.user, 'prosody.user');
        yield after;
      }
      if (rows.length < this.batchSize) return;
    }
  }

  async userExists(ref: UserRef): Promise<boolean> {
    await this.ensureSchema();
    try {
      const rows = await this.db.query(`SELECT 1 AS "present" FROM "prosody" WHERE "host" = ? AND "user" = ? AND "store" = 'accounts' LIMIT 1`, [
        ref.host,
        ref.user,
      ]);
      return rows.length > 0;
    } catch (err) {
      throw asStorageError(err);
    }
  }

  readAccount(ref: UserRef): Promise<UserStart | null> {
    return this.readAccountFrom(this.rowsOf(this.db, ref), ref);
  }

  private rowsOf(db: SqlSession, ref: UserRef): AccountRows {
    return queriedRows(db, { host: ref.host, user: ref.user }, this.batchSize);
  }

  private async readAccountFrom(rows: AccountRows, ref: UserRef): Promise<UserStart | null> {
    await this.ensureSchema();
    try {
      const data = await keyval(rows, 'accounts');
      return data ? accountFromStore(ref.user, data) : null;
    } catch (err) {
      throw asStorageError(err);
    }
  }

  readUser(ref: UserRef, options: ReadOptions): AsyncIterable<UserRecord> {
    return this.readUserFrom(this.rowsOf(this.db, ref), ref, options);
  }

  async snapshot(): Promise<StorageSnapshot | undefined> {
    if (!this.db.snapshot) return undefined;
    await this.ensureSchema();
    return snapshotReads(this.db, asStorageError, (session) => ({
      readAccount: (ref) => this.readAccountFrom(this.rowsOf(session, ref), ref),
      readUser: (ref, options) => this.readUserFrom(this.rowsOf(session, ref), ref, options),
    }));
  }

  /**
   * The rows of all of `users` read set-wise (see account-rows.ts) on one snapshot where the
   * dialect gives one (as {@link snapshot}), else on the pool; reads of other accounts query alone.
   */
  async readAccounts(host: string, users: readonly string[], options: ReadOptions): Promise<AccountsRead> {
    await this.ensureSchema();
    const session = await openSnapshot(this.db, asStorageError);
    const db: SqlSession = session ?? this.db;
    let loaded: Map<string, AccountRows>;
    try {
      loaded = await loadHostRows(db, host, users, options.include, this.batchSize);
    } catch (err) {
      await session?.end().catch(() => undefined);
      throw asStorageError(err);
    }
    const rowsOf = (ref: UserRef): AccountRows => (ref.host === host ? loaded.get(ref.user) : undefined) ?? this.rowsOf(db, ref);
    return {
      readAccount: (ref) => this.readAccountFrom(rowsOf(ref), ref),
      readUser: (ref, readOptions) => this.readUserFrom(rowsOf(ref), ref, readOptions),
      consistent: session !== undefined,
      close: () => session?.end() ?? Promise.resolve(),
    };
  }

  private async *readUserFrom(rows: AccountRows, ref: UserRef, options: ReadOptions): AsyncGenerator<UserRecord> {
    // One generator, not a wrapper around a second: each one a million messages pass through costs.
    try {
      await this.ensureSchema();
      const jid = `${ref.user}@${ref.host}`;
      const include = options.include;
      const signal = options.signal;
      const needArchiveStores = include.has('pep') || include.has('other');
      const archiveStores = needArchiveStores ? await rows.stores(true) : [];

      if (include.has('roster')) {
        const data = await keyval(rows, 'roster');
        if (data) {
          const { roster, pending } = rosterFromStore(data, jid);
          yield roster;
          yield* pending;
        }
      }
      if (include.has('vcard')) {
        const data = await keyval(rows, 'vcard');
        if (data && data.get('name') !== undefined) yield vcardFromStore(data);
      }
      if (include.has('private')) {
        const entries = (await rows.entries('private')) ?? [];
        for (const { key, value } of entries) {
          const record = key === '' ? undefined : privateFromStore(key, value);
          if (record) yield record;
        }
      }
      if (include.has('pep')) {
        const entries = (await rows.entries(PEP_STORE)) ?? [];
        for (const { key, value } of entries) if (key !== '') yield pepNodeFromStore(key, value);
        for (const store of archiveStores) {
          if (!store.startsWith(PEP_ITEMS_PREFIX)) continue;
          const node = store.slice(PEP_ITEMS_PREFIX.length);
          for await (const page of rows.archivePages(store, signal)) for (const row of page) yield pepItemFromArchive(node, row);
        }
      }
      if (include.has('archive')) {
        for await (const page of rows.archivePages(ARCHIVE_STORE, signal)) {
          for (const row of page) {
            const record = archiveRecordFromItem(row, jid);
            if (record) yield record;
          }
        }
      }
      if (include.has('offline')) {
        for await (const page of rows.archivePages(OFFLINE_STORE, signal)) {
          for (const row of page) {
            const record = offlineRecordFromItem(row);
            if (record) yield record;
          }
        }
      }
      if (include.has('blocklist')) {
        const data = await keyval(rows, 'blocklist');
        if (data) yield blocklistFromStore(data);
      }
      if (include.has('privacy')) {
        const data = await keyval(rows, 'privacy');
        if (data) yield privacyFromStore(data);
      }
      if (include.has('other')) {
        for (const store of await rows.stores(false)) {
          if (!isOpaqueStore(store, false)) continue;
          const data = await keyval(rows, store);
          if (data) yield { kind: 'opaque', element: storeToElement(store, data) };
        }
        for (const store of archiveStores) {
          if (!isOpaqueStore(store, true)) continue;
          for await (const page of rows.archivePages(store, signal)) for (const row of page) yield { kind: 'opaque', element: archiveItemToElement(store, row) };
        }
      }
    } catch (err) {
      throw asStorageError(err);
    }
  }

  async applyUser(ref: UserRef, account: UserStart, records: AsyncIterable<UserRecord>, options: ApplyOptions): Promise<ApplyReport> {
    const host = this.hostOptions(ref);
    options.signal?.throwIfAborted();
    const serverVersion = await this.serverVersion();
    const fractionalTimes = this.db.name === 'sqlite';
    return inTransaction(this.db, { dryRun: options.dryRun, mapError: asStorageError }, (tx) =>
      new ProsodySqlImport(tx, ref, host, options, this.importStores, serverVersion, fractionalTimes, this.db.name).run(account, records),
    );
  }

  /**
   * Each account under a savepoint of the one transaction (see ApplyBatch); the generation is told
   * once per batch. Of the `users` expected, those without any row are looked up at once and
   * imported in memory, their rows inserted together before the commit (see pending-rows.ts).
   */
  async beginBatch(options: { readonly dryRun: boolean; readonly users?: readonly UserRef[] }): Promise<ApplyBatch> {
    const serverVersion = await this.serverVersion();
    const fractionalTimes = this.db.name === 'sqlite';
    const expected = options.users ?? [];
    const host = expected[0]?.host;
    let group: PendingGroup | undefined;
    return openApplyBatch(
      this.db,
      { dryRun: options.dryRun, mapError: asStorageError },
      async (tx, ref, account, records, applyOptions) => {
        const pending = group?.rowsFor(ref);
        const report = await new ProsodySqlImport(tx, ref, this.hostOptions(ref), applyOptions, this.importStores, serverVersion, fractionalTimes, undefined, pending).run(
          account,
          records,
        );
        if (pending) group?.keep(ref, pending);
        return report;
      },
      {
        begun: async (tx) => {
          if (host !== undefined && expected.every((ref) => ref.host === host)) group = await PendingGroup.lookUp(tx, host, expected.map((ref) => ref.user));
        },
        statementless: (ref) => group?.has(ref) === true,
        beforeCommit: async (tx) => group?.flush(tx),
      },
    );
  }

  private hostOptions(ref: UserRef): ProsodyHostOptions {
    const host = this.settings.hosts[ref.host];
    if (!host) throw new StorageError('invalid-data', `host ${ref.host} is not configured for this backend`);
    return host;
  }

  private async serverVersion(): Promise<ProsodyVersion> {
    try {
      await this.ensureSchema();
      return this.settings.serverVersion ?? (await detectProsodyVersion(this.db)) ?? '0.12';
    } catch (err) {
      throw asStorageError(err);
    }
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
