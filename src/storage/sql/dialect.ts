/**
 * The little xporta needs from a SQL database, per dialect. Statements are written once, with
 * `"quoted"` identifiers and `?` placeholders as in mod_storage_sql.lua; each dialect rewrites
 * them (MySQL: backticks, as util/sql.lua's prepquery does; PostgreSQL: `$n`).
 */
import type { AccountLease, AccountLockMode } from '../account-lock.js';
import type { Owner } from '../prosody-sql/rows.js';

export type DialectName = 'sqlite' | 'postgresql' | 'mysql';

/** The LuaDBI driver name Prosody's util/sql.lua switches on. */
export type ProsodyDriver = 'SQLite3' | 'PostgreSQL' | 'MySQL';

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
   * Where filling an archive store from empty goes faster without the table's indexes (SQLite, see
   * sqlite-bulk.ts): called before the import's first row of `store` is inserted. Undefined when
   * the store already has rows.
   */
  bulkLoadArchive?(owner: Owner, store: string): Promise<ArchiveBulkLoad | undefined>;
}

/**
 * One import filling an empty archive store, which may switch to inserting its rows unchecked,
 * without the table's indexes, and build them again at the end.
 */
export interface ArchiveBulkLoad {
  /**
   * Called after each INSERT into the store with the number of rows the import has put there.
   * Resolves to true once rows go in unchecked: the caller must stop looking keys up (the unique
   * index is gone) and leave duplicates to {@link finish}.
   */
  inserted(total: number): Promise<boolean>;
  /**
   * Ends the unchecked loading, if it began: removes each row whose key an earlier row of the store
   * has (the first stays, as a lookup would have kept it), then builds the indexes again. Resolves to
   * the number of rows removed. Must come before any other statement on the table that needs an
   * index, and before the commit; afterwards the load never switches again.
   */
  finish(): Promise<number>;
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
  readonly driver: ProsodyDriver;
  begin(): Promise<SqlTransaction>;
  /**
   * A consistent read view for one export. Resolves to undefined where the database cannot give
   * one without blocking its writers (SQLite outside WAL mode): the caller then reads as usual.
   */
  snapshot?(): Promise<SqlSnapshot | undefined>;
  tableExists(table: string): Promise<boolean>;
  /**
   * The character set util/sql.lua picks for MySQL tables (the widest `utf8%` one); `utf8` for
   * the others, where it does not appear in the schema.
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

/** `"identifier"` → `` `identifier` `` (util/sql.lua prepquery for MySQL). */
export function backtickIdentifiers(sql: string): string {
  return sql.replace(/"/g, '`');
}
