/**
 * The networked databases' own bulk loads of an imported archive, as ceilings for xporta's
 * imports: PostgreSQL's `COPY … FROM STDIN` and MariaDB's `LOAD DATA LOCAL INFILE` of the same
 * rows, into a fresh `prosodyarchive` with the indexes Prosody creates (the live, indexed table
 * an import writes to), in one transaction.
 *
 * Usage: after an import into `database`, {@link dumpArchiveRows} writes its archive rows (text
 * format, both loaders read it); {@link copyCeiling} then times the database's loader on them.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import mysqlCallbacks from 'mysql2';
import mysql from 'mysql2/promise';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { ensureSchema } from '../src/storage/prosody-sql/schema.js';
import { MysqlDialect } from '../src/storage/sql/mysql/dialect.js';
import { PostgresqlDialect } from '../src/storage/sql/postgresql/dialect.js';
import { rowsAsText } from '../src/storage/sql/row-stream.js';
import { createTestDatabase, dropTestDatabase, sqlServer, type SqlServer, type SqlServerKind } from './sql-databases.js';

/** The columns an import writes, in the order of the dumped rows. */
const COLUMNS = ['host', 'user', 'store', 'when', 'with', 'key', 'type', 'value'];
const LIST = COLUMNS.map((c) => `"${c}"`).join(', ');

async function pgClient(server: SqlServer, database: string): Promise<pg.Client> {
  const client = new pg.Client({ host: server.host, port: server.port, user: server.username, password: server.password, database });
  await client.connect();
  return client;
}

async function mysqlConnection(server: SqlServer, database: string): Promise<mysql.Connection> {
  return mysql.createConnection({ host: server.host, port: server.port, user: server.username, password: server.password, database, charset: 'UTF8MB4_BIN' });
}

/** Writes the `archive` store's rows of `database`, in sort_id order, to `file`; resolves to their number. */
export async function dumpArchiveRows(kind: SqlServerKind, database: string, file: string, server = sqlServer(kind)): Promise<number> {
  const select = `SELECT ${LIST} FROM "prosodyarchive" WHERE "store" = 'archive' ORDER BY "sort_id"`;
  if (kind === 'postgres') {
    const client = await pgClient(server, database);
    try {
      const copy = client.query(copyStreams.to(`COPY (${select}) TO STDOUT`));
      await pipeline(copy, createWriteStream(file));
      return copy.rowCount;
    } finally {
      await client.end();
    }
  }
  const conn = mysqlCallbacks.createConnection({ host: server.host, port: server.port, user: server.username, password: server.password, database, charset: 'UTF8MB4_BIN' });
  const out = createWriteStream(file);
  let rows = 0;
  try {
    const stream = conn.query({ sql: select.replace(/"/g, '`'), rowsAsArray: true }).stream();
    for await (const row of stream as AsyncIterable<(string | number)[]>) {
      rows++;
      if (!out.write(rowsAsText([row]))) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
  } finally {
    await new Promise<void>((resolve) => out.end(() => resolve()));
    conn.end();
  }
  return rows;
}

export interface Ceiling {
  readonly seconds: number;
  readonly rows: number;
}

/**
 * Times the database's bulk load of `file` (as {@link dumpArchiveRows} writes it) into a fresh
 * database with Prosody's tables and indexes, in one transaction, commit included.
 */
export async function copyCeiling(kind: SqlServerKind, file: string, server = sqlServer(kind)): Promise<Ceiling> {
  const database = await createTestDatabase(kind, server);
  try {
    const params = { host: server.host, port: server.port, user: server.username, password: server.password, database };
    const dialect = kind === 'postgres' ? new PostgresqlDialect(params) : new MysqlDialect(params);
    await ensureSchema(dialect);
    await dialect.close();
    if (kind === 'postgres') {
      const client = await pgClient(server, database);
      try {
        const start = process.hrtime.bigint();
        await client.query('BEGIN');
        const copy = client.query(copyStreams.from(`COPY "prosodyarchive" (${LIST}) FROM STDIN`));
        await pipeline(createReadStream(file), copy);
        await client.query('COMMIT');
        return { seconds: Number(process.hrtime.bigint() - start) / 1e9, rows: copy.rowCount };
      } finally {
        await client.end();
      }
    }
    const conn = await mysqlConnection(server, database);
    try {
      const start = process.hrtime.bigint();
      await conn.beginTransaction();
      const [result] = await conn.query({
        sql: `LOAD DATA LOCAL INFILE 'rows' INTO TABLE prosodyarchive CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (${LIST.replace(/"/g, '`')})`,
        infileStreamFactory: () => createReadStream(file),
      });
      await conn.commit();
      return { seconds: Number(process.hrtime.bigint() - start) / 1e9, rows: (result as mysql.ResultSetHeader).affectedRows };
    } finally {
      await conn.end();
    }
  } finally {
    await dropTestDatabase(kind, database, server);
  }
}
