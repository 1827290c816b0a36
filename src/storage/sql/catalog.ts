/**
 * What the schema holds, asked of the database's catalog, in the database (schema) the session
 * uses. On a session rather than the dialect, so that a transaction can ask too (it runs one
 * statement at a time).
 */
import type { DialectName, SqlSession } from './dialect.js';

async function present(db: SqlSession, sql: string, params: readonly string[]): Promise<boolean> {
  return (await db.query(sql, params)).length > 0;
}

export function tableExists(db: SqlSession, dialect: DialectName, table: string): Promise<boolean> {
  switch (dialect) {
    case 'sqlite':
      return present(db, `SELECT 1 AS "present" FROM sqlite_master WHERE "type" = 'table' AND "name" = ?`, [table]);
    case 'postgresql':
      return present(db, `SELECT 1 AS "present" FROM "information_schema"."tables" WHERE "table_schema" = current_schema() AND "table_name" = ?`, [table]);
    case 'mysql':
      return present(db, `SELECT 1 AS "present" FROM "information_schema"."tables" WHERE "table_schema" = DATABASE() AND "table_name" = ?`, [table]);
  }
}

export function columnExists(db: SqlSession, dialect: DialectName, table: string, column: string): Promise<boolean> {
  switch (dialect) {
    case 'sqlite':
      return present(db, `SELECT 1 AS "present" FROM pragma_table_info(?) WHERE "name" = ?`, [table, column]);
    case 'postgresql':
      return present(
        db,
        `SELECT 1 AS "present" FROM "information_schema"."columns" WHERE "table_schema" = current_schema() AND "table_name" = ? AND "column_name" = ?`,
        [table, column],
      );
    case 'mysql':
      return present(
        db,
        `SELECT 1 AS "present" FROM "information_schema"."columns" WHERE "table_schema" = DATABASE() AND "table_name" = ? AND "column_name" = ?`,
        [table, column],
      );
  }
}

/** Whether an index of this name exists, on any table. */
export function indexExists(db: SqlSession, dialect: DialectName, index: string): Promise<boolean> {
  switch (dialect) {
    case 'sqlite':
      return present(db, `SELECT 1 AS "present" FROM sqlite_master WHERE "type" = 'index' AND "name" = ?`, [index]);
    case 'postgresql':
      return present(db, `SELECT 1 AS "present" FROM "pg_indexes" WHERE "schemaname" = current_schema() AND "indexname" = ?`, [index]);
    case 'mysql':
      return present(db, `SELECT 1 AS "present" FROM "information_schema"."statistics" WHERE "table_schema" = DATABASE() AND "index_name" = ? LIMIT 1`, [index]);
  }
}
