/**
 * Which ejabberd generation wrote a database, told from its schema: 24.12 added the
 * `archive.origin_id` column (NOT NULL without a default on PostgreSQL and MySQL) and the
 * `schema_version` table, and upgrades an older schema to them itself at start.
 */
import type { SqlSession, DialectName } from '../sql/dialect.js';

export type EjabberdVersion = '23.01' | '24.12';

export interface EjabberdSchemaTraits {
  /** `archive.origin_id` exists: every archive row must say it. */
  readonly originId: boolean;
  /** The `schema_version` table exists. */
  readonly schemaVersion: boolean;
}

/** Whether `table.column` exists, in the database (schema) the session uses. */
async function columnExists(db: SqlSession, dialect: DialectName, table: string, column: string): Promise<boolean> {
  let rows;
  if (dialect === 'sqlite') {
    rows = await db.query(`SELECT 1 AS "present" FROM pragma_table_info(?) WHERE "name" = ?`, [table, column]);
  } else if (dialect === 'postgresql') {
    rows = await db.query(
      `SELECT 1 AS "present" FROM "information_schema"."columns" WHERE "table_schema" = current_schema() AND "table_name" = ? AND "column_name" = ?`,
      [table, column],
    );
  } else {
    rows = await db.query(
      `SELECT 1 AS "present" FROM "information_schema"."columns" WHERE "table_schema" = DATABASE() AND "table_name" = ? AND "column_name" = ?`,
      [table, column],
    );
  }
  return rows.length > 0;
}

async function tableExists(db: SqlSession, dialect: DialectName, table: string): Promise<boolean> {
  let rows;
  if (dialect === 'sqlite') rows = await db.query(`SELECT 1 AS "present" FROM sqlite_master WHERE "type" = 'table' AND "name" = ?`, [table]);
  else if (dialect === 'postgresql') rows = await db.query(`SELECT 1 AS "present" FROM "information_schema"."tables" WHERE "table_schema" = current_schema() AND "table_name" = ?`, [table]);
  else rows = await db.query(`SELECT 1 AS "present" FROM "information_schema"."tables" WHERE "table_schema" = DATABASE() AND "table_name" = ?`, [table]);
  return rows.length > 0;
}

export async function schemaTraits(db: SqlSession, dialect: DialectName): Promise<EjabberdSchemaTraits> {
  // One after the other: a transaction's session runs one statement at a time.
  const originId = await columnExists(db, dialect, 'archive', 'origin_id');
  const schemaVersion = await tableExists(db, dialect, 'schema_version');
  return { originId, schemaVersion };
}

/** The generation: the configured one, else 24.12 when the schema has its traits, else 23.01. */
export function ejabberdVersion(traits: EjabberdSchemaTraits, configured?: EjabberdVersion): EjabberdVersion {
  if (configured !== undefined) return configured;
  return traits.originId || traits.schemaVersion ? '24.12' : '23.01';
}
