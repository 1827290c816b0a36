/**
 * Throw-away PostgreSQL / MariaDB databases for test Prosody instances. Every name carries
 * TEST_DB_PREFIX and dropTestDatabase refuses anything else, so a bug here cannot drop a
 * database some other engineer or service owns.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import mysql from 'mysql2/promise';

export type SqlServerKind = 'postgres' | 'mysql';

export interface SqlServer {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly password: string;
}

export const TEST_DB_PREFIX = 'xporta_test_';

function envPort(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`${name}=${raw} is not a port`);
  return port;
}

/**
 * Where the test database servers are. Defaults match the dev machines and CI (trust auth for
 * postgres, passwordless root for MariaDB); XPORTA_TEST_{PG,MYSQL}_{HOST,PORT,USER,PASSWORD}
 * override them.
 */
export function sqlServer(kind: SqlServerKind): SqlServer {
  if (kind === 'postgres') {
    return {
      host: process.env.XPORTA_TEST_PG_HOST ?? '127.0.0.1',
      port: envPort('XPORTA_TEST_PG_PORT', 5432),
      username: process.env.XPORTA_TEST_PG_USER ?? 'postgres',
      password: process.env.XPORTA_TEST_PG_PASSWORD ?? '',
    };
  }
  return {
    host: process.env.XPORTA_TEST_MYSQL_HOST ?? '127.0.0.1',
    port: envPort('XPORTA_TEST_MYSQL_PORT', 3306),
    username: process.env.XPORTA_TEST_MYSQL_USER ?? 'root',
    password: process.env.XPORTA_TEST_MYSQL_PASSWORD ?? '',
  };
}

function assertTestName(name: string): void {
  // Also keeps the unquotable-by-parameter identifier safe to interpolate.
  if (!/^xporta_test_[a-z0-9_]+$/.test(name)) throw new Error(`refusing to touch database ${JSON.stringify(name)}`);
}

export function newTestDatabaseName(): string {
  return `${TEST_DB_PREFIX}${randomBytes(6).toString('hex')}`;
}

async function withPg<T>(server: SqlServer, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    host: server.host,
    port: server.port,
    user: server.username,
    password: server.password,
    database: 'postgres',
    connectionTimeoutMillis: 3000,
  });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function withMysql<T>(server: SqlServer, fn: (conn: mysql.Connection) => Promise<T>): Promise<T> {
  const conn = await mysql.createConnection({
    host: server.host,
    port: server.port,
    user: server.username,
    password: server.password,
    connectTimeout: 3000,
  });
  try {
    return await fn(conn);
  } finally {
    await conn.end();
  }
}

/** Whether the server accepts our credentials; used to skip (outside CI) rather than hang. */
export async function sqlServerAvailable(kind: SqlServerKind, server = sqlServer(kind)): Promise<boolean> {
  try {
    if (kind === 'postgres') await withPg(server, (c) => c.query('SELECT 1'));
    else await withMysql(server, (c) => c.query('SELECT 1'));
    return true;
  } catch {
    return false;
  }
}

export async function createTestDatabase(kind: SqlServerKind, server = sqlServer(kind)): Promise<string> {
  const name = newTestDatabaseName();
  assertTestName(name);
  if (kind === 'postgres') {
    // template0 + C collation: the cluster default might not be UTF-8, and Prosody stores UTF-8 JIDs.
    await withPg(server, (c) =>
      c.query(`CREATE DATABASE ${name} ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`),
    );
  } else {
    await withMysql(server, (c) => c.query(`CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`));
  }
  return name;
}

/**
 * PostgreSQL: writes out every dirty page now, so that a timed step that follows starts at the
 * beginning of a checkpoint cycle (how much WAL a bulk load writes, full-page images included,
 * depends on where in that cycle it runs). The bench's import and its COPY ceiling both call it.
 */
export async function checkpointPostgres(server = sqlServer('postgres')): Promise<void> {
  await withPg(server, (c) => c.query('CHECKPOINT'));
}

export async function dropTestDatabase(kind: SqlServerKind, name: string, server = sqlServer(kind)): Promise<void> {
  assertTestName(name);
  if (kind === 'postgres') {
    // FORCE ends connections a killed Prosody may have left behind (PostgreSQL ≥ 13).
    await withPg(server, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  } else {
    await withMysql(server, (c) => c.query(`DROP DATABASE IF EXISTS ${name}`));
  }
}
