/**
 * The little xporta needs from a SQL database, per dialect. Statements are written once, with
 * `"quoted"` identifiers and `?` placeholders as in mod_storage_sql.lua; each dialect rewrites
 * them (MySQL: backticks, as util/sql.lua's prepquery does; PostgreSQL: `$n`).
 */

export type DialectName = 'sqlite' | 'postgresql' | 'mysql';

/** The LuaDBI driver name Prosody's util/sql.lua switches on. */
export type ProsodyDriver = 'SQLite3' | 'PostgreSQL' | 'MySQL';

export type SqlParam = string | number | null;
export type SqlRow = Readonly<Record<string, unknown>>;

/** Statements on one connection, or on whichever pooled connection is free. */
export interface SqlSession {
  query(sql: string, params?: readonly SqlParam[]): Promise<SqlRow[]>;
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
}

export interface SqlDialect extends SqlSession {
  readonly name: DialectName;
  readonly driver: ProsodyDriver;
  begin(): Promise<SqlTransaction>;
  tableExists(table: string): Promise<boolean>;
  /**
   * The character set util/sql.lua picks for MySQL tables (the widest `utf8%` one); `utf8` for
   * the others, where it does not appear in the schema.
   */
  charset(): Promise<string>;
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
