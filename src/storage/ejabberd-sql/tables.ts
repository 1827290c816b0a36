/**
 * Row-level access to ejabberd's SQL tables (23.01 and 24.12), for both its schemas: the "new" one
 * (`new_sql_schema: true`, a `server_host` column on per-user tables) and the default one
 * (no such column: one database per vhost, or vhosts sharing one set of usernames).
 * Pubsub tables are the same in both: PEP nodes are keyed by the owner's bare JID.
 */
import type { UserRef } from '../backend.js';
import { text } from '../sql/columns.js';
import { sendWrite, valuesPlaceholders, type SqlParam, type SqlRow, type SqlSession } from '../sql/dialect.js';

export class Tables {
  constructor(readonly newSchema: boolean) {}

  /** `WHERE` condition and parameters selecting one user's rows. */
  owner(ref: UserRef): { cond: string; params: SqlParam[] } {
    return this.newSchema
      ? { cond: `"username" = ? AND "server_host" = ?`, params: [ref.user, ref.host] }
      : { cond: `"username" = ?`, params: [ref.user] };
  }

  /** Columns and values that identify the owner in an INSERT. */
  ownerColumns(ref: UserRef): { cols: string[]; params: SqlParam[] } {
    return this.newSchema ? { cols: ['username', 'server_host'], params: [ref.user, ref.host] } : { cols: ['username'], params: [ref.user] };
  }

  select(db: SqlSession, ref: UserRef, table: string, columns: readonly string[], extra = '', extraParams: readonly SqlParam[] = []): Promise<SqlRow[]> {
    const o = this.owner(ref);
    return db.query(`SELECT ${columns.map((c) => `"${c}"`).join(', ')} FROM "${table}" WHERE ${o.cond}${extra}`, [...o.params, ...extraParams]);
  }

  delete(db: SqlSession, ref: UserRef, table: string, extra = '', extraParams: readonly SqlParam[] = []): Promise<number> {
    const o = this.owner(ref);
    return db.run(`DELETE FROM "${table}" WHERE ${o.cond}${extra}`, [...o.params, ...extraParams]);
  }

  /** Rows of `columns` values (the owner's columns come first, added here) in one INSERT, sent ahead where the session can. */
  insertRows(db: SqlSession, ref: UserRef, table: string, columns: readonly string[], rows: readonly (readonly SqlParam[])[]): Promise<void> {
    const o = this.ownerColumns(ref);
    const cols = [...o.cols, ...columns];
    const params = rows.flatMap((row) => [...o.params, ...row]);
    return sendWrite(db, `INSERT INTO "${table}" (${cols.map((c) => `"${c}"`).join(', ')}) VALUES ${valuesPlaceholders(rows.length, cols.length)}`, params);
  }

  insert(db: SqlSession, ref: UserRef, table: string, values: Readonly<Record<string, SqlParam>>): Promise<number> {
    const o = this.ownerColumns(ref);
    const cols = [...o.cols, ...Object.keys(values)];
    const params = [...o.params, ...Object.values(values)];
    return db.run(`INSERT INTO "${table}" (${cols.map((c) => `"${c}"`).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`, params);
  }
}

/** A `created_at` column as ISO 8601 (SQLite: `YYYY-MM-DD HH:MM:SS` in UTC); undefined when it holds no such time. */
export function timestampToIso(value: unknown, column: string): string | undefined {
  if (value instanceof Date) return value.toISOString().replace('.000Z', 'Z');
  const m = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})/.exec(text(value, column));
  return m ? `${m[1]}T${m[2]}Z` : undefined;
}
