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

/**
 * Whether `table` has a unique index on exactly `columns`, in that order, over whole values (no
 * prefix, expression or predicate): what an INSERT … ON CONFLICT DO NOTHING needs to skip rows
 * whose key is there.
 */
export function uniqueIndexOn(db: SqlSession, dialect: DialectName, table: string, columns: readonly string[]): Promise<boolean> {
  const list = columns.join(',');
  switch (dialect) {
    case 'sqlite':
      return present(
        db,
        `SELECT 1 AS "present" FROM pragma_index_list(?) AS "il" WHERE "il"."unique" = 1 AND "il"."partial" = 0 AND (SELECT group_concat("name", ',') FROM (SELECT "name" FROM pragma_index_info("il"."name") ORDER BY "seqno")) = ?`,
        [table, list],
      );
    case 'postgresql':
      return present(
        db,
        `SELECT 1 AS "present" FROM "pg_index" AS "i" JOIN "pg_class" AS "t" ON "t"."oid" = "i"."indrelid"
         WHERE "t"."oid" = to_regclass(?) AND "i"."indisunique" AND "i"."indisvalid" AND "i"."indpred" IS NULL AND "i"."indexprs" IS NULL
           AND (SELECT string_agg("a"."attname", ',' ORDER BY "k"."n") FROM unnest("i"."indkey"::int2[]) WITH ORDINALITY AS "k"("attnum", "n")
                JOIN "pg_attribute" AS "a" ON "a"."attrelid" = "t"."oid" AND "a"."attnum" = "k"."attnum") = ?`,
        [`"${table}"`, list],
      );
    case 'mysql':
      return present(
        db,
        `SELECT 1 AS "present" FROM "information_schema"."statistics" WHERE "table_schema" = DATABASE() AND "table_name" = ? AND "non_unique" = 0
         GROUP BY "index_name" HAVING max("sub_part") IS NULL AND group_concat("column_name" ORDER BY "seq_in_index" SEPARATOR ',') = ?`,
        [table, list],
      );
  }
}
