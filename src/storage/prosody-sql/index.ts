/** Prosody's SQL storage (mod_storage_sql) as a storage backend. */
export { ProsodySqlBackend, type ProsodySqlConnection, type ProsodySqlOptions, type ProsodySqlSettings } from './backend.js';
export type { DialectName, SqlDialect, SqlParam, SqlRow, SqlSession, SqlTransaction } from '../sql/dialect.js';
export { createIndexSql, createTableSql, ensureSchema, prosodyTables } from './schema.js';
export type { SqliteOptions } from '../sql/sqlite/dialect.js';
export type { PostgresqlOptions } from '../sql/postgresql/dialect.js';
export type { MysqlOptions } from '../sql/mysql/dialect.js';
