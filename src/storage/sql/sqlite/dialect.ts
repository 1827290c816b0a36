/**
 * SQLite through better-sqlite3. Reads share one connection; transactions run on a connection of
 * their own on a worker thread (writer.ts), so a long import never mixes with reads and holds the
 * write lock only on its own handle. No PRAGMA the database's other users would see is changed:
 * the journal mode stays whatever the database has (unless {@link SqliteOptions.walMode}); only
 * the writer connection's own page cache is set (see writer.ts).
 */
import Database from 'better-sqlite3';
import type { SqlDialect, SqlParam, SqlRow, SqlSession, SqlSnapshot, SqlTransaction } from '../dialect.js';
import { SqliteWriter } from './writer.js';

export interface SqliteOptions {
  /** Path of the database file, shared with the server that owns it. */
  readonly database: string;
  /** How long to wait for another writer (the server) to release its lock, in ms. */
  readonly busyTimeoutMs?: number;
  /**
   * @internal Rows a load inserts into one table before it may drop the table's indexes
   * ({@link SqlTransaction.bulkLoad}; default {@link DEFAULT_BULK_LOAD_THRESHOLD}); tests lower it
   * to reach that path.
   */
  readonly bulkLoadThreshold?: number;
  /** Switch the database to WAL when opening it (the mode is stored in the file and stays). */
  readonly walMode?: boolean;
}

const DEFAULT_BUSY_TIMEOUT_MS = 5000;

/**
 * Rows a load inserts before dropping a table's indexes may pay: below it, keeping a few indexes
 * up to date costs little while the writer keeps up with the caller anyway, and building them
 * again is time the caller waits for at the end.
 */
export const DEFAULT_BULK_LOAD_THRESHOLD = 50_000;

/**
 * How long a statement on a shared (event-loop) connection waits inside SQLite for a lock. Beyond
 * it the wait goes on between attempts, off the thread: better-sqlite3 waits synchronously, and a
 * lock held for seconds would otherwise stop the whole process (HTTP, the XMPP component), even
 * the work that would end the wait. Prosody, for one, keeps the lock of a COMMIT that failed
 * with "database is locked" until its next SQL transaction, which xporta may be the one to cause
 * (README, "Faults, concurrency and consistency").
 */
const SYNC_BUSY_WAIT_MS = 20;
/** Pauses between attempts while a lock is held longer; the last repeats. */
const BUSY_RETRY_PAUSES_MS = [5, 10, 25, 50, 100];

function isBusy(err: unknown): boolean {
  return err instanceof Database.SqliteError && (err.code === 'SQLITE_BUSY' || err.code === 'SQLITE_BUSY_RECOVERY');
}

class SqliteSession implements SqlSession {
  private readonly statements = new Map<string, Database.Statement<SqlParam[], SqlRow>>();
  /** Separate from {@link statements}: `raw()` changes what a statement returns for every caller. */
  private readonly arrayStatements = new Map<string, Database.Statement<SqlParam[], unknown[]>>();

  /** `busyTimeoutMs`: how long a statement may wait for a lock in all, across attempts. */
  constructor(
    protected readonly db: Database.Database,
    private readonly busyTimeoutMs: number,
  ) {}

  /**
   * Runs `statement` (synchronous, all rows at once), again while another connection holds a lock
   * it needs, pausing between attempts, for up to {@link busyTimeoutMs}; then the last error.
   * A failed attempt holds no lock: an autocommit statement that gets SQLITE_BUSY has done nothing.
   */
  private async withLockWait<T>(statement: () => T): Promise<T> {
    let deadline: number | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        return statement();
      } catch (err) {
        if (!isBusy(err)) throw err instanceof Error ? err : new Error(String(err));
        deadline ??= Date.now() + this.busyTimeoutMs - SYNC_BUSY_WAIT_MS;
        if (Date.now() >= deadline) throw err;
        const pause = BUSY_RETRY_PAUSES_MS[Math.min(attempt, BUSY_RETRY_PAUSES_MS.length - 1)] ?? 0;
        await new Promise((resolve) => setTimeout(resolve, pause));
      }
    }
  }

  private prepare(sql: string): Database.Statement<SqlParam[], SqlRow> {
    let stmt = this.statements.get(sql);
    if (!stmt) {
      stmt = this.db.prepare<SqlParam[], SqlRow>(sql);
      this.statements.set(sql, stmt);
    }
    return stmt;
  }

  queryArrays(sql: string, params: readonly SqlParam[] = []): Promise<unknown[][]> {
    return this.withLockWait(() => {
      let stmt = this.arrayStatements.get(sql);
      if (!stmt) {
        stmt = this.db.prepare<SqlParam[], unknown[]>(sql).raw(true);
        this.arrayStatements.set(sql, stmt);
      }
      return stmt.all(...params);
    });
  }

  query(sql: string, params: readonly SqlParam[] = []): Promise<SqlRow[]> {
    return this.withLockWait(() => {
      const stmt = this.prepare(sql);
      if (!stmt.reader) {
        stmt.run(...params);
        return [];
      }
      // Rows are collected before anything else runs, so the connection is never left mid-statement.
      return stmt.all(...params);
    });
  }

  run(sql: string, params: readonly SqlParam[] = []): Promise<number> {
    return this.withLockWait(() => this.prepare(sql).run(...params).changes);
  }
}

/** Read connections kept open between snapshots, with their prepared statements. */
const IDLE_SNAPSHOT_CONNECTIONS = 2;

/** A connection and its statements, reused from one snapshot or short transaction to the next. */
interface Kept {
  readonly conn: Database.Database;
  readonly session: SqliteSession;
}

/**
 * A transaction of short statements on the caller's thread ({@link SqlDialect.beginShort}), on a
 * write connection kept for the next one. It takes its turn with the writer's transactions.
 */
class SqliteShortTransaction implements SqlTransaction {
  private ended = false;

  constructor(
    private readonly kept: Kept,
    private readonly release: () => void,
  ) {}

  query(sql: string, params?: readonly SqlParam[]): Promise<SqlRow[]> {
    return this.kept.session.query(sql, params);
  }

  queryArrays(sql: string, params?: readonly SqlParam[]): Promise<unknown[][]> {
    return this.kept.session.queryArrays(sql, params);
  }

  run(sql: string, params?: readonly SqlParam[]): Promise<number> {
    return this.kept.session.run(sql, params);
  }

  async savepoint(name: string): Promise<void> {
    await this.run(`SAVEPOINT ${name}`);
  }

  async rollbackToSavepoint(name: string): Promise<void> {
    await this.run(`ROLLBACK TO SAVEPOINT ${name}`);
  }

  async releaseSavepoint(name: string): Promise<void> {
    await this.run(`RELEASE SAVEPOINT ${name}`);
  }

  async commit(): Promise<void> {
    if (this.ended) return;
    // A COMMIT that met another connection's lock may be tried again (the session waits, off the thread).
    await this.run('COMMIT');
    this.end();
  }

  rollback(): Promise<void> {
    if (this.ended) return Promise.resolve();
    try {
      if (this.kept.conn.inTransaction) this.kept.conn.exec('ROLLBACK');
    } finally {
      this.end();
    }
    return Promise.resolve();
  }

  private end(): void {
    this.ended = true;
    this.release();
  }
}

export class SqliteDialect extends SqliteSession implements SqlDialect {
  readonly name = 'sqlite';
  readonly driver = 'SQLite3';

  private readonly writer: SqliteWriter;
  private readonly idleSnapshots: Kept[] = [];
  private shortWriter: Kept | undefined;

  private constructor(
    db: Database.Database,
    private readonly options: SqliteOptions,
  ) {
    super(db, options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS);
    this.writer = new SqliteWriter({
      database: options.database,
      busyTimeoutMs: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS,
      bulkLoadThreshold: options.bulkLoadThreshold ?? DEFAULT_BULK_LOAD_THRESHOLD,
    });
  }

  static open(options: SqliteOptions): SqliteDialect {
    if (options.database === ':memory:' || options.database === '') {
      // Transactions use a connection of their own, which would see a different database.
      throw new Error('an in-memory SQLite database cannot be shared with its server');
    }
    return new SqliteDialect(SqliteDialect.connect(options), options);
  }

  private static connect(options: SqliteOptions): Database.Database {
    const busyTimeoutMs = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    const db = new Database(options.database, { timeout: busyTimeoutMs });
    // Once, at start, and it needs the database alone: this one may wait the whole timeout here.
    if (options.walMode) db.pragma('journal_mode = WAL');
    db.pragma(`busy_timeout = ${Math.min(busyTimeoutMs, SYNC_BUSY_WAIT_MS)}`);
    return db;
  }

  /** On the writer's worker, so that SQLite executes writes while the caller prepares the next (see writer.ts). */
  begin(): Promise<SqlTransaction> {
    return this.writer.begin();
  }

  /**
   * On a write connection of its own on this thread, kept for the next one (see
   * {@link SqlDialect.beginShort}); it waits for the writer's transaction in progress first.
   */
  async beginShort(): Promise<SqlTransaction> {
    const release = await this.writer.turn();
    try {
      const busyTimeoutMs = this.options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
      if (!this.shortWriter) {
        const conn = new Database(this.options.database, { timeout: busyTimeoutMs });
        conn.pragma(`busy_timeout = ${Math.min(busyTimeoutMs, SYNC_BUSY_WAIT_MS)}`);
        this.shortWriter = { conn, session: new SqliteSession(conn, busyTimeoutMs) };
      }
      // The write lock now (waiting off the thread while the server holds it), as the writer's transactions take it.
      await this.shortWriter.session.run('BEGIN IMMEDIATE');
      return new SqliteShortTransaction(this.shortWriter, release);
    } catch (err) {
      release();
      throw err;
    }
  }

  /**
   * In WAL mode, a read transaction on a connection of its own: it sees one version of the
   * database and blocks no writer. In rollback-journal mode the same transaction would hold a
   * SHARED lock for the whole export and make every writer, the server's included, fail with
   * "database is locked": there it is undefined, and the caller reads without a snapshot.
   * Connections (and their prepared statements) are kept between snapshots: a host export takes
   * one per account.
   */
  async snapshot(): Promise<SqlSnapshot | undefined> {
    const mode = this.db.pragma('journal_mode', { simple: true });
    if (typeof mode !== 'string' || mode.toLowerCase() !== 'wal') return undefined;
    const busyTimeoutMs = this.options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    let kept = this.idleSnapshots.pop();
    if (!kept) {
      const conn = new Database(this.options.database, { readonly: true, timeout: busyTimeoutMs });
      kept = { conn, session: new SqliteSession(conn, busyTimeoutMs) };
    }
    const { conn, session } = kept;
    try {
      conn.exec('BEGIN');
      // A deferred transaction takes its snapshot at the first read, so read now.
      await session.query('SELECT 1 FROM sqlite_master LIMIT 1');
    } catch (err) {
      conn.close();
      throw err;
    }
    let ended = false;
    return {
      query: (sql, params) => session.query(sql, params),
      queryArrays: (sql, params) => session.queryArrays(sql, params),
      run: (sql, params) => session.run(sql, params),
      end: () => {
        if (!ended) {
          ended = true;
          try {
            conn.exec('COMMIT');
            if (this.idleSnapshots.length < IDLE_SNAPSHOT_CONNECTIONS && conn.open) this.idleSnapshots.push(kept);
            else conn.close();
          } catch (err) {
            conn.close();
            throw err;
          }
        }
        return Promise.resolve();
      },
    };
  }

  async tableExists(table: string): Promise<boolean> {
    const rows = await this.query(`SELECT 1 AS "present" FROM sqlite_master WHERE type = 'table' AND name = ?`, [table]);
    return rows.length > 0;
  }

  charset(): Promise<string> {
    return Promise.resolve('utf8');
  }

  async close(): Promise<void> {
    for (const { conn } of this.idleSnapshots.splice(0)) conn.close();
    this.shortWriter?.conn.close();
    this.shortWriter = undefined;
    this.db.close();
    await this.writer.close();
  }
}
