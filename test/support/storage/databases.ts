/**
 * Throw-away PostgreSQL and MariaDB databases (named `xporta_test_*`, dropped afterwards) on the
 * servers test/support/sql-databases.ts points at. Without a server the suites are skipped,
 * except under CI, where they run and fail.
 */
import { MysqlDialect } from '../../../src/storage/sql/mysql/dialect.js';
import { PostgresqlDialect } from '../../../src/storage/sql/postgresql/dialect.js';
import { isCI } from '../prosody.js';
import { createTestDatabase, dropTestDatabase, sqlServer, sqlServerAvailable, type SqlServerKind } from '../../../bench/sql-databases.js';
import type { TestDatabase } from './sql-suite.js';

/** For `describe.skipIf`: skip only when the server is missing outside CI. */
export async function skipWithout(kind: SqlServerKind): Promise<boolean> {
  return !isCI && !(await sqlServerAvailable(kind));
}

function connectionOf(kind: SqlServerKind, database: string): { host: string; port: number; user: string; password: string; database: string } {
  const server = sqlServer(kind);
  return { host: server.host, port: server.port, user: server.username, password: server.password, database };
}

async function openTestDatabase(kind: SqlServerKind): Promise<TestDatabase> {
  const name = await createTestDatabase(kind);
  const params = connectionOf(kind, name);
  return {
    dialect: kind === 'postgres' ? new PostgresqlDialect(params) : new MysqlDialect(params),
    drop: () => dropTestDatabase(kind, name),
  };
}

export const openPostgres = (): Promise<TestDatabase> => openTestDatabase('postgres');
export const openMariadb = (): Promise<TestDatabase> => openTestDatabase('mysql');
