/**
 * The little xporta needs from a SQL database, per dialect, knowing no server's tables. Statements
 * are written once, with `"quoted"` identifiers and `?` placeholders; each dialect rewrites them
 * (MySQL: backticks; PostgreSQL: `$n`).
 */
import type { AccountLease, AccountLockMode } from '../account-lock.js';

export type DialectName = 'sqlite' | 'postgresql' | 'mysql';

export type SqlParam = string | number | null;
export type SqlRow = Readonly<Record<string, unknown>>;

/** Statements on one connection, or on whichever pooled connection is free. */
export interface SqlSession {
  query(sql: string, params?: readonly SqlParam[]): Promise<SqlRow[]>;
  /**
   * {@link query} with each row as the array of its columns in SELECT order, which spares an
   * object per row where a statement returns thousands (an archive page). Where missing,
   * {@link queryArrays} builds the arrays from `query`'s rows.
   */
  queryArrays?(sql: string, params?: readonly SqlParam[]): Promise<unknown[][]>;
  /** Runs a statement; resolves to the number of affected rows. */
  run(sql: string, params?: readonly SqlParam[]): Promise<number>;
  /**
   * Sends a write whose outcome nobody waits for, so that the database executes it while the
   * caller prepares the next one. It fails the next statement or the commit if it fails.
   * Resolves once few enough writes are outstanding. Where missing, callers use `run`.
   */
  write?(sql: string, params: readonly SqlParam[]): Promise<void>;
}

/** A transaction on a connection of its own; commit or rollback releases the connection. */
export interface SqlTransaction extends SqlSession {
  commit(): Promise<void>;
  rollback(): Promise<void>;
  /**
   * Refreshes the planner's statistics of a table the transaction is filling, where the database
   * needs it to plan later statements of the same transaction well (PostgreSQL).
   */
  refreshStatistics?(table: string): Promise<void>;
  /**
   * Where the database builds an index in one pass faster than it keeps it up to date row by row
   * and its DDL is transactional (SQLite): a load of many rows into one table may drop the table's
   * indexes and create them again before the commit. Undefined elsewhere.
   */
  readonly bulkLoad?: BulkLoadSupport;
  /**
   * SAVEPOINT, ROLLBACK TO SAVEPOINT, RELEASE SAVEPOINT (every dialect has them): a part of the
   * transaction undone alone. `name` is letters, digits and `_`. After rollbackToSavepoint the
   * savepoint still exists; release it to end it.
   */
  savepoint?(name: string): Promise<void>;
  rollbackToSavepoint?(name: string): Promise<void>;
  releaseSavepoint?(name: string): Promise<void>;
  /**
   * Registers a check the commit runs first: when it throws, the commit fails with its error and
   * the transaction stays open for the rollback. For invariants a caller must restore before its
   * changes may become visible (indexes dropped for a bulk load).
   */
  guardCommit?(check: () => void): void;
  /**
   * Streams rows into `table`'s `columns` through the database's bulk-load protocol (PostgreSQL's
   * COPY FROM STDIN, MySQL's LOAD DATA LOCAL INFILE), as part of the transaction. While the stream
   * is open the connection carries nothing else: any other statement of the transaction first
   * ends it (and fails with the load's error, if it failed), and a rollback aborts it. Undefined
   * where the database has no such protocol (SQLite, whose prepared INSERTs are as fast).
   */
  streamRows?(table: string, columns: readonly string[]): Promise<RowStream>;
  /**
   * Creates an empty temporary table `name`, seen by this transaction only and gone when it ends,
   * with `columns` typed as in table `like`, followed by an integer column `seq` for the order the
   * rows came in. For loads that check their rows against the live table set-wise, in one
   * statement, before inserting them. Defined wherever {@link streamRows} is.
   */
  createStagingTable?(name: string, like: string, columns: readonly string[]): Promise<void>;
}

/** Rows on their way into one table (see {@link SqlTransaction.streamRows}). */
export interface RowStream {
  /** Sends rows, each its values in the stream's column order; resolves once the database can take more. */
  write(rows: readonly (readonly SqlParam[])[]): Promise<void>;
  /** Ends the stream; resolves to the number of rows the database loaded, or rejects with the load's failure. */
  end(): Promise<number>;
  /** Whether {@link end} was called, by the caller or by the transaction before another statement. */
  readonly ended: boolean;
}

/** What a transaction offers to loads that drop a table's indexes (see {@link SqlTransaction.bulkLoad}). */
export interface BulkLoadSupport {
  /** The dialect whose DDL the load must use. */
  readonly dialect: DialectName;
  /** Rows a load should have inserted before dropping the indexes pays for building them again. */
  readonly threshold: number;
}

/** A write nothing reads the result of (an INSERT): sent ahead where the session can. */
export async function sendWrite(db: SqlSession, sql: string, params: readonly SqlParam[]): Promise<void> {
  if (db.write) await db.write(sql, params);
  else await db.run(sql, params);
}

/** `(?,?,…),(?,?,…)…`: the VALUES of a multi-row INSERT of `count` rows of `width` columns. */
export function valuesPlaceholders(count: number, width: number): string {
  const row = `(${new Array<string>(width).fill('?').join(',')})`;
  return new Array<string>(count).fill(row).join(',');
}

/** Rows as arrays of their columns in SELECT order, from whichever method the session has. */
export async function queryArrays(db: SqlSession, sql: string, params: readonly SqlParam[] = []): Promise<unknown[][]> {
  if (db.queryArrays) return db.queryArrays(sql, params);
  return (await db.query(sql, params)).map((row) => Object.values(row));
}

/** Reads on a connection of their own that all see the database as it was at one moment. */
export interface SqlSnapshot extends SqlSession {
  /** Ends the read transaction and gives the connection back; safe to call more than once. */
  end(): Promise<void>;
}

export interface SqlDialect extends SqlSession {
  readonly name: DialectName;
  begin(): Promise<SqlTransaction>;
  /**
   * A transaction for many short statements (small accounts' imports), where {@link begin}'s
   * connection costs a round trip per statement: SQLite runs these on the caller's thread, each
   * statement a few microseconds. Without bulk loads. Where missing, callers use `begin`.
   */
  beginShort?(): Promise<SqlTransaction>;
  /**
   * A consistent read view for one export. Resolves to undefined where the database cannot give
   * one without blocking its writers (SQLite outside WAL mode): the caller then reads as usual.
   */
  snapshot?(): Promise<SqlSnapshot | undefined>;
  tableExists(table: string): Promise<boolean>;
  /**
   * The character set for new tables: on MySQL the widest `utf8%` one the server has (utf8mb4);
   * `utf8` for the others, where it does not appear in DDL.
   */
  charset(): Promise<string>;
  /**
   * An account lock the database holds for this process's lock session, seen by every process
   * on the same database and released by the server when the session ends (a crash included).
   * Absent where the database has none (SQLite: see fileAccountLocker).
   */
  tryLock?(jid: string, mode: AccountLockMode): Promise<AccountLease | undefined>;
  close(): Promise<void>;
}

/**
 * The lease on a lock a database session holds (PostgreSQL's advisory locks, MariaDB's named
 * locks): `unlock` runs on the first release only. A failed unlock means the session is gone,
 * and its locks with it.
 */
export function sessionLockLease(unlock: () => Promise<unknown>): AccountLease {
  let released = false;
  return {
    release: async () => {
      if (released) return;
      released = true;
      await unlock().catch(() => undefined);
    },
  };
}

/** `?` → `$1, $2, …`, skipping string literals. */
export function numberedPlaceholders(sql: string): string {
  let n = 0;
  let inString = false;
  let out = '';
  for (const c of sql) {
    if (c === "'") inString = !inString;
    out += c === '?' && !inString ? `$${++n}` : c;
  }
  return out;
}

/** `"identifier"` → `` `identifier` `` (MySQL without ANSI_QUOTES). */
export function backtickIdentifiers(sql: string): string {
  return sql.replace(/"/g, '`');
}
