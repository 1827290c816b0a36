/**
 * The ceilings the bench's steps are measured against: the same rows moved by the database's (or
 * the file system's) own fastest path, with no XEP-0227 parsing or writing around them. Each one
 * reads the archive rows xporta imported into the Prosody SQLite store (or, for ejabberd, into
 * ejabberd's), so it moves exactly the rows the step it bounds moved. They run in the bench's own
 * process: wall time only, no process start, no peak RSS of their own.
 */
import { closeSync, createReadStream, mkdirSync, openSync, readdirSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import Database from 'better-sqlite3';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { createIndexSql, createTableSql, prosodyTables, type ProsodyDriver } from '../src/storage/prosody-sql/schema.js';
import { backtickIdentifiers } from '../src/storage/sql/dialect.js';
import { createTestDatabase, dropTestDatabase, type SqlServer } from './sql-databases.js';
import { BENCH_HOST, BENCH_USER } from './synthetic.js';

export interface CeilingRun {
  readonly seconds: number;
  /** Archive rows the ceiling moved: it bounds a step only when they are the step's. */
  readonly rows: number;
}

const ARCHIVE_COLUMNS = ['host', 'user', 'store', 'key', 'when', 'with', 'type', 'value'] as const;
type ArchiveRow = [host: string, user: string, store: string, key: string, when: number, withJid: string, type: string, value: string];

/** The account's MAM rows in the order xporta wrote them, as arrays of columns. */
function* archiveRows(sqlite: string): Generator<ArchiveRow> {
  const db = new Database(sqlite, { readonly: true });
  try {
    const select = db
      .prepare(`SELECT ${ARCHIVE_COLUMNS.map((c) => `"${c}"`).join(', ')} FROM "prosodyarchive" WHERE "host" = ? AND "user" = ? AND "store" = 'archive' ORDER BY "sort_id"`)
      .raw();
    yield* select.iterate(BENCH_HOST, BENCH_USER) as Iterable<ArchiveRow>;
  } finally {
    db.close();
  }
}

function seconds(started: number): number {
  return (performance.now() - started) / 1000;
}

const ATTR_UNSAFE = /[<&'"]/;

function attr(value: string): string {
  return ATTR_UNSAFE.test(value) ? value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;') : value;
}

/** Writes strings to a file in 1 MB writes, as a streamed export reaches its socket or file. */
class ChunkedFile {
  private readonly fd: number;
  private parts: string[] = [];
  private length = 0;
  constructor(path: string) {
    this.fd = openSync(path, 'w');
  }
  write(text: string): void {
    this.parts.push(text);
    this.length += text.length;
    if (this.length >= 1 << 20) this.flush();
  }
  private flush(): void {
    writeSync(this.fd, this.parts.join(''));
    this.parts = [];
    this.length = 0;
  }
  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

/** Wraps each stored stanza in the least XML an export needs: the MAM result, forward and delay. */
function wrapped(id: string, stamp: string, stanza: string): string {
  return `<result xmlns='urn:xmpp:mam:2' id='${attr(id)}'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='${stamp}'/>${stanza}</forwarded></result>\n`;
}

/** Bounds the SQLite export: a bare scan of the account's archive rows, each wrapped in minimal XML, to a file. */
export function sqliteScanCeiling(sqlite: string, outFile: string): CeilingRun {
  const started = performance.now();
  const out = new ChunkedFile(outFile);
  let rows = 0;
  out.write(`<server-data xmlns='urn:xmpp:pie:0'><host jid='${BENCH_HOST}'><user name='${BENCH_USER}'><archive xmlns='urn:xmpp:mam:2'>\n`);
  for (const [, , , key, when, , , value] of archiveRows(sqlite)) {
    out.write(wrapped(key, new Date(when * 1000).toISOString(), value));
    rows++;
  }
  out.write('</archive></user></host></server-data>\n');
  out.close();
  return { seconds: seconds(started), rows };
}

/** Bounds the ejabberd export: a bare scan of ejabberd's `archive` rows for the account, wrapped the same way. */
export function ejabberdScanCeiling(sqlite: string, outFile: string): CeilingRun {
  const started = performance.now();
  const db = new Database(sqlite, { readonly: true });
  const out = new ChunkedFile(outFile);
  let rows = 0;
  try {
    const select = db.prepare(`SELECT "timestamp", "xml" FROM "archive" WHERE "server_host" = ? AND "username" = ? ORDER BY "timestamp", "id"`).raw().safeIntegers(true);
    out.write(`<server-data xmlns='urn:xmpp:pie:0'><host jid='${BENCH_HOST}'><user name='${BENCH_USER}'><archive xmlns='urn:xmpp:mam:2'>\n`);
    for (const [timestamp, xml] of select.iterate(BENCH_HOST, BENCH_USER) as Iterable<[bigint, string]>) {
      out.write(wrapped(String(timestamp), new Date(Number(timestamp / 1000n)).toISOString(), xml));
      rows++;
    }
    out.write('</archive></user></host></server-data>\n');
  } finally {
    out.close();
    db.close();
  }
  return { seconds: seconds(started), rows };
}

function archiveTable(driver: ProsodyDriver): ReturnType<typeof prosodyTables>[number] {
  const table = prosodyTables(driver).find((t) => t.name === 'prosodyarchive');
  if (!table) throw new Error('no prosodyarchive table in the schema');
  return table;
}

/**
 * Bounds the SQLite import: one prepared INSERT per row, in one transaction, into an empty
 * `prosodyarchive` that has Prosody's four indexes, with the page cache xporta's writer uses.
 */
export function sqliteInsertCeiling(source: string, target: string): CeilingRun {
  const db = new Database(target);
  try {
    db.pragma('cache_size = -8192');
    const table = archiveTable('SQLite3');
    db.exec(createTableSql(table, 'SQLite3', 'utf8'));
    for (const index of table.indexes) db.exec(createIndexSql(index, table.name, 'SQLite3'));
    const insert = db.prepare(`INSERT INTO "prosodyarchive" (${ARCHIVE_COLUMNS.map((c) => `"${c}"`).join(', ')}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    const started = performance.now();
    let rows = 0;
    db.exec('BEGIN');
    for (const row of archiveRows(source)) {
      insert.run(row);
      rows++;
    }
    db.exec('COMMIT');
    return { seconds: seconds(started), rows };
  } finally {
    db.close();
  }
}

/** PostgreSQL's COPY text format and MariaDB's LOAD DATA default: tab-separated, backslash escapes. */
function tsvField(value: string | number): string {
  if (typeof value === 'number') return String(value);
  return /[\\\t\n\r\0]/.test(value) ? value.replace(/[\\\t\n\r\0]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r', '\0': '\\0' })[c] ?? c) : value;
}

/** The archive rows as tab-separated UTF-8 lines, about 256 KB per chunk; counts them into `counter`. */
function* tsvChunks(sqlite: string, counter: { rows: number }): Generator<Buffer> {
  let parts: string[] = [];
  let length = 0;
  for (const row of archiveRows(sqlite)) {
    const line = `${row.map(tsvField).join('\t')}\n`;
    parts.push(line);
    length += line.length;
    counter.rows++;
    if (length >= 1 << 18) {
      yield Buffer.from(parts.join(''));
      parts = [];
      length = 0;
    }
  }
  if (parts.length) yield Buffer.from(parts.join(''));
}

/**
 * Bounds the PostgreSQL import: `COPY … FROM STDIN` of the rows into Prosody's `prosodyarchive`
 * with its indexes in place, in one transaction, in a database of its own.
 */
export async function postgresCopyCeiling(source: string, server: SqlServer): Promise<CeilingRun> {
  const database = await createTestDatabase('postgres', server);
  const client = new pg.Client({ host: server.host, port: server.port, user: server.username, password: server.password, database });
  try {
    await client.connect();
    const table = archiveTable('PostgreSQL');
    await client.query(createTableSql(table, 'PostgreSQL', 'utf8'));
    for (const index of table.indexes) await client.query(createIndexSql(index, table.name, 'PostgreSQL'));
    await client.query('CHECKPOINT');
    const counter = { rows: 0 };
    const started = performance.now();
    await client.query('BEGIN');
    await pipeline(Readable.from(tsvChunks(source, counter)), client.query(copyFrom(`COPY "prosodyarchive" (${ARCHIVE_COLUMNS.map((c) => `"${c}"`).join(', ')}) FROM STDIN`)));
    await client.query('COMMIT');
    return { seconds: seconds(started), rows: counter.rows };
  } finally {
    await client.end().catch(() => undefined);
    await dropTestDatabase('postgres', database, server);
  }
}

/**
 * Bounds the MariaDB import: `LOAD DATA LOCAL INFILE` of the rows (streamed by mysql2's
 * infileStreamFactory, no file on disk) into Prosody's `prosodyarchive` with the indexes Prosody
 * manages to create on MySQL, in one transaction, in a database of its own.
 */
export async function mysqlLoadDataCeiling(source: string, server: SqlServer): Promise<CeilingRun> {
  const database = await createTestDatabase('mysql', server);
  const conn = await mysql.createConnection({ host: server.host, port: server.port, user: server.username, password: server.password, database, charset: 'UTF8MB4_BIN' });
  try {
    const table = archiveTable('MySQL');
    await conn.query(backtickIdentifiers(createTableSql(table, 'MySQL', 'utf8mb4')));
    for (const index of table.indexes) {
      // As util/sql.lua: the 20-character prefix makes the indexes over INTEGER columns fail.
      await conn.query(backtickIdentifiers(createIndexSql(index, table.name, 'MySQL'))).catch(() => undefined);
    }
    const counter = { rows: 0 };
    const started = performance.now();
    await conn.query('START TRANSACTION');
    await conn.query({
      sql: `LOAD DATA LOCAL INFILE 'archive.tsv' INTO TABLE \`prosodyarchive\` CHARACTER SET utf8mb4 (${ARCHIVE_COLUMNS.map((c) => `\`${c}\``).join(', ')})`,
      infileStreamFactory: () => Readable.from(tsvChunks(source, counter)),
    });
    await conn.query('COMMIT');
    return { seconds: seconds(started), rows: counter.rows };
  } finally {
    await conn.end().catch(() => undefined);
    await dropTestDatabase('mysql', database, server);
  }
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name));
}

/**
 * Bounds the Prosody internal-files import: the files that import left, copied byte for byte
 * into a fresh tree, each made durable with fsync before the next, as the import's journal does.
 */
export async function plainFilesCeiling(sourceDir: string, targetDir: string): Promise<CeilingRun & { bytes: number }> {
  const files = filesUnder(sourceDir);
  const started = performance.now();
  let bytes = 0;
  for (const file of files) {
    const target = join(targetDir, relative(sourceDir, file));
    mkdirSync(join(target, '..'), { recursive: true });
    const handle = await open(target, 'w');
    try {
      for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
        await handle.write(chunk as Buffer);
        bytes += (chunk as Buffer).length;
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
  return { seconds: seconds(started), rows: files.length, bytes };
}
