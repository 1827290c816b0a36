/**
 * ejabberd's SQL storage (23.01 and 24.12) as a {@link StorageBackend}, over the same SQLite, PostgreSQL and
 * MySQL/MariaDB dialects as the Prosody SQL backend. ejabberd caches roster, vCard, private
 * data, offline counts and credentials: a write is only seen by a running ejabberd after
 * `ejabberdctl clear_cache`, which is what `onCommitted` is for.
 */
import type { ApplyOptions, ApplyReport, ReadOptions, StorageBackend, StorageSnapshot, UserRef } from '../backend.js';
import { StorageError } from '../backend.js';
import { DATA_KINDS, type DataKind, type UserRecord, type UserStart } from '../../records/model.js';
import { XmlCharError, XmlFragmentError } from '../../xml/xml.js';
import { text } from '../sql/columns.js';
import { databaseAccountLocks, inTransaction, openDialect, pingDatabase, snapshotReads, storageErrorOf, type AccountLocks, type SqlConnection } from '../sql/connection.js';
import type { SqlDialect, SqlSession } from '../sql/dialect.js';
import { EjabberdImport } from './import.js';
import { ejabberdVersion, schemaTraits, type EjabberdVersion } from './generation.js';
import { ErlangTermError } from './erlang.js';
import { readAccount, readArchivePages, readOffline, readPep, readPrivacy, readPrivate, readRoster, readVCard } from './read.js';
import { Tables } from './tables.js';

export type EjabberdSqlConnection = SqlConnection;

/** Per-vhost settings. */
export interface EjabberdHostOptions {
  /**
   * What an import writes as credentials, as ejabberd's `auth_password_format`/`auth_scram_hash`
   * say: `SHA-1` (scram + sha, the default) or `SHA-256` (scram + sha256) take the document's
   * SCRAM set of that hash, else a plain password; `plain` takes the plain password.
   */
  readonly passwordHash?: 'SHA-1' | 'SHA-256' | 'plain';
}

export interface EjabberdSqlSettings {
  /** The vhosts (ejabberd `hosts`) this database holds. */
  readonly hosts: Readonly<Record<string, EjabberdHostOptions>>;
  /** ejabberd's `new_sql_schema`: per-user tables carry `server_host`. */
  readonly newSchema: boolean;
  /**
   * The ejabberd generation, when the schema cannot tell (it says 24.12 by `archive.origin_id` or
   * the `schema_version` table, which 24.12 adds to any schema at start). Decides the bookmark
   * sync; whether `origin_id` is written always follows the column.
   */
  readonly serverVersion?: EjabberdVersion;
  /** Rows fetched per archive/offline query when reading (default 1000). */
  readonly readBatchSize?: number;
  /**
   * Called after an import committed (not after a dry run), e.g. to run `ejabberdctl
   * clear_cache`: a running ejabberd keeps serving cached data until then.
   */
  readonly onCommitted?: (ref: UserRef) => Promise<void> | void;
}

export type EjabberdSqlOptions = EjabberdSqlConnection & EjabberdSqlSettings;

/** Everything but `other`: ejabberd has no place for elements xporta has no record type for. */
const SUPPORTED: ReadonlySet<DataKind> = new Set(DATA_KINDS.filter((k) => k !== 'other'));

/** Data that cannot be encoded for ejabberd, or stored data its formats do not allow. */
const DATA_ERRORS = [XmlCharError, XmlFragmentError, ErlangTermError];

function asStorageError(err: unknown): unknown {
  return storageErrorOf(err, DATA_ERRORS);
}

/**
 * Archive rows read at a time at most. A page's records stay alive until the last of them is
 * written: a page larger than the young generation (2 MB a semi-space, see cli.ts) survives its
 * collections and is promoted whole, and a 1M-message export then spent more in the collector
 * than in reading.
 */
const ARCHIVE_PAGE_ROWS = 250;

export class EjabberdSqlBackend implements StorageBackend {
  readonly name: string;
  readonly supportedKinds: ReadonlySet<DataKind> = SUPPORTED;
  private readonly db: SqlDialect;
  /** The database's own account locks (PostgreSQL, MariaDB); absent on SQLite. */
  readonly lockAccount?: AccountLocks;
  private readonly settings: EjabberdSqlSettings;
  private readonly t: Tables;
  private readonly batchSize: number;

  constructor(options: EjabberdSqlOptions);
  /** Over an already opened dialect. */
  constructor(db: SqlDialect, settings: EjabberdSqlSettings);
  constructor(optionsOrDb: EjabberdSqlOptions | SqlDialect, settings?: EjabberdSqlSettings) {
    const isDialect = 'begin' in optionsOrDb;
    this.db = isDialect ? optionsOrDb : openDialect(optionsOrDb);
    this.settings = isDialect ? (settings as EjabberdSqlSettings) : optionsOrDb;
    const locks = databaseAccountLocks(this.db);
    if (locks) this.lockAccount = locks;
    this.name = `ejabberd-sql:${this.db.name}`;
    this.t = new Tables(this.settings.newSchema);
    this.batchSize = this.settings.readBatchSize ?? 1000;
  }

  async ping(): Promise<void> {
    await pingDatabase(this.db);
    if (!(await this.db.tableExists('users'))) throw new StorageError('unavailable', 'no ejabberd tables in this database (table users is missing)');
  }

  listHosts(): Promise<string[]> {
    return Promise.resolve(Object.keys(this.settings.hosts).sort());
  }

  async *listUsers(host: string): AsyncIterable<string> {
    if (!(host in this.settings.hosts)) return;
    let after = '';
    for (;;) {
      const hostCond = this.t.newSchema ? ` AND "server_host" = ?` : '';
      const rows = await this.db.query(
        `SELECT "username" FROM "users" WHERE "username" > ?${hostCond} ORDER BY "username" LIMIT ${this.batchSize}`,
        this.t.newSchema ? [after, host] : [after],
      );
      for (const row of rows) {
        after = text(row.username, 'users.username');
        yield after;
      }
      if (rows.length < this.batchSize) return;
    }
  }

  async userExists(ref: UserRef): Promise<boolean> {
    try {
      return (await this.t.select(this.db, ref, 'users', ['username'])).length > 0;
    } catch (err) {
      throw asStorageError(err);
    }
  }

  readAccount(ref: UserRef): Promise<UserStart | null> {
    return this.readAccountFrom(this.db, ref);
  }

  private async readAccountFrom(db: SqlSession, ref: UserRef): Promise<UserStart | null> {
    try {
      return await readAccount(db, this.t, ref);
    } catch (err) {
      throw asStorageError(err);
    }
  }

  readUser(ref: UserRef, options: ReadOptions): AsyncIterable<UserRecord> {
    return this.readUserFrom(this.db, ref, options);
  }

  /** One read transaction (the dialect's snapshot) for an export's reads; undefined where the dialect has none. */
  async snapshot(): Promise<StorageSnapshot | undefined> {
    return snapshotReads(this.db, asStorageError, (session) => ({
      readAccount: (ref) => this.readAccountFrom(session, ref),
      readUser: (ref, options) => this.readUserFrom(session, ref, options),
    }));
  }

  private async *readUserFrom(db: SqlSession, ref: UserRef, options: ReadOptions): AsyncGenerator<UserRecord> {
    // One generator, not a wrapper around a second: each one a million messages pass through costs.
    try {
      const { t } = this;
      const include = options.include;
      const jid = `${ref.user}@${ref.host}`;
      if (include.has('roster')) {
        const { roster, pending } = await readRoster(db, t, ref);
        if (roster) yield roster;
        yield* pending;
      }
      if (include.has('vcard')) {
        const vcard = await readVCard(db, t, ref);
        if (vcard) yield { kind: 'vcard', vcard };
      }
      if (include.has('private')) for (const el of await readPrivate(db, t, ref)) yield { kind: 'private', element: el };
      if (include.has('pep')) yield* readPep(db, jid);
      if (include.has('archive')) {
        for await (const page of readArchivePages(db, t, ref, Math.min(this.batchSize, ARCHIVE_PAGE_ROWS), options.signal)) for (const record of page) yield record;
      }
      if (include.has('offline')) yield* readOffline(db, t, ref, this.batchSize);
      if (include.has('blocklist') || include.has('privacy')) {
        const { blocklist, privacy } = await readPrivacy(db, t, ref);
        if (blocklist && include.has('blocklist')) yield blocklist;
        if (privacy && include.has('privacy')) yield privacy;
      }
    } catch (err) {
      throw asStorageError(err);
    }
  }

  async applyUser(ref: UserRef, account: UserStart, records: AsyncIterable<UserRecord>, options: ApplyOptions): Promise<ApplyReport> {
    if (!(ref.host in this.settings.hosts)) throw new StorageError('invalid-data', `host ${ref.host} is not configured for this backend`);
    options.signal?.throwIfAborted();
    const passwordHash = this.settings.hosts[ref.host]?.passwordHash ?? 'SHA-1';
    const report = await inTransaction(this.db, { dryRun: options.dryRun, mapError: asStorageError }, async (tx) => {
      const traits = await schemaTraits(tx, this.db.name);
      const schema = { originId: traits.originId, syncBookmarks: ejabberdVersion(traits, this.settings.serverVersion) === '24.12' };
      return new EjabberdImport(tx, this.t, ref, options, passwordHash, schema).run(account, records);
    });
    if (!options.dryRun && this.settings.onCommitted) await this.settings.onCommitted(ref);
    return report;
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
