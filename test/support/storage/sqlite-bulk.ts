/** What the SQLite bulk-load tests (unit and live) observe of a store: statements run, and its schema. */
import Database from 'better-sqlite3';
import { SqliteDialect, type SqliteOptions } from '../../../src/storage/sql/sqlite/dialect.js';

/** A dialect whose transactions record each statement they run (not those they query). */
export function recordingDialect(options: SqliteOptions): { readonly dialect: SqliteDialect; readonly statements: string[] } {
  const dialect = SqliteDialect.open(options);
  const statements: string[] = [];
  const begin = dialect.begin.bind(dialect);
  dialect.begin = async () => {
    const tx = await begin();
    const run = tx.run.bind(tx);
    tx.run = (sql, params) => {
      statements.push(sql);
      return run(sql, params);
    };
    return tx;
  };
  return { dialect, statements };
}

export const droppedIndexes = (statements: readonly string[]): string[] => statements.filter((s) => s.startsWith('DROP INDEX'));

/** Everything in sqlite_master, as Prosody would find it. */
export function schemaOf(file: string): unknown[] {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare(`SELECT "type", "name", "tbl_name", "sql" FROM sqlite_master ORDER BY "name"`).all();
  } finally {
    db.close();
  }
}
