import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ProsodySqlBackend, type SqlDialect, type SqlParam, type SqlRow, type SqlTransaction } from '../../../src/storage/prosody-sql/index.js';
import { SqliteDialect } from '../../../src/storage/sql/sqlite/dialect.js';
import { SQLITE_SCHEMA } from '../../support/storage/prosody-rows.js';
import { NS, element } from '../../../src/records/model.js';
import { ALICE, ALICE_ACCOUNT, HOSTS, applyOptions, archiveRecord, collect } from '../../support/storage/sample-user.js';
import { prosodySqlSuite } from '../../support/storage/sql-suite.js';

const dir = mkdtempSync(join(tmpdir(), 'xporta-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function freshFile(): string {
  return join(dir, `prosody-${++n}.sqlite`);
}

prosodySqlSuite('SQLite', async () => {
  const file = freshFile();
  return { dialect: SqliteDialect.open({ database: file }), drop: async () => rmSync(file, { force: true }) };
});

/** Counts the rows every query returns, to see how much of an archive a read has fetched. */
class CountingDialect implements SqlDialect {
  rowsFetched = 0;
  queries = 0;
  readonly name;

  constructor(private readonly inner: SqlDialect) {
    this.name = inner.name;
  }

  async query(sql: string, params?: readonly SqlParam[]): Promise<SqlRow[]> {
    const rows = await this.inner.query(sql, params);
    this.queries++;
    this.rowsFetched += rows.length;
    return rows;
  }

  run(sql: string, params?: readonly SqlParam[]): Promise<number> {
    return this.inner.run(sql, params);
  }

  begin(): Promise<SqlTransaction> {
    return this.inner.begin();
  }

  tableExists(table: string): Promise<boolean> {
    return this.inner.tableExists(table);
  }

  charset(): Promise<string> {
    return this.inner.charset();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

describe('ProsodySqlBackend on SQLite, specifically', () => {
  it('creates exactly the schema Prosody 0.12 creates', async () => {
    const file = freshFile();
    const backend = new ProsodySqlBackend({ dialect: 'sqlite', database: file, hosts: HOSTS });
    await backend.ensureSchema();
    await backend.close();
    const db = new Database(file, { readonly: true });
    const schema = db
      .prepare<[], { sql: string }>(`SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid`)
      .all()
      .map((r) => `${r.sql};`)
      .join('\n');
    db.close();
    // sqlite_master keeps CREATE TABLE without IF NOT EXISTS; the sqlite3 shell's .schema adds it back.
    expect(schema).toBe(SQLITE_SCHEMA.replaceAll('CREATE TABLE IF NOT EXISTS', 'CREATE TABLE'));
  });

  it('reads a 10,000-message archive one page at a time', async () => {
    const file = freshFile();
    const counting = new CountingDialect(SqliteDialect.open({ database: file }));
    const backend = new ProsodySqlBackend(counting, { hosts: HOSTS });
    async function* messages(): AsyncIterable<ReturnType<typeof archiveRecord>> {
      for (let i = 0; i < 10_000; i++) yield archiveRecord(i);
    }
    const report = await backend.applyUser(ALICE, ALICE_ACCOUNT, messages(), applyOptions());
    expect(report.counts.archive).toBe(10_000);

    counting.rowsFetched = 0;
    counting.queries = 0;
    const iterator = backend.readUser(ALICE, { include: new Set(['archive']) })[Symbol.asyncIterator]();
    const first = await iterator.next();
    expect(first.value).toMatchObject({ kind: 'archive', id: 'msg-000000' });
    // Only the first page (plus the schema check) was fetched to produce the first record.
    expect(counting.rowsFetched).toBeLessThanOrEqual(1000);

    let count = 1;
    let last = first.value as { id: string };
    for (;;) {
      const next = await iterator.next();
      if (next.done) break;
      last = next.value as { id: string };
      count++;
    }
    expect(count).toBe(10_000);
    expect(last.id).toBe('msg-009999');
    expect(counting.queries).toBeGreaterThanOrEqual(10);
    expect(counting.rowsFetched).toBe(10_000);
    await backend.close();
  }, 120_000);

  it('does not hold the database between pages: a writer can commit while a read is paused', async () => {
    const file = freshFile();
    const backend = new ProsodySqlBackend({ dialect: 'sqlite', database: file, hosts: HOSTS, readBatchSize: 10 });
    await backend.applyUser(ALICE, ALICE_ACCOUNT, (async function* () {
      for (let i = 0; i < 25; i++) yield archiveRecord(i);
    })(), applyOptions());
    const iterator = backend.readUser(ALICE, { include: new Set(['archive']) })[Symbol.asyncIterator]();
    await iterator.next();
    const other = new ProsodySqlBackend({ dialect: 'sqlite', database: file, hosts: HOSTS, busyTimeoutMs: 0 });
    await other.applyUser(ALICE, ALICE_ACCOUNT, (async function* () {
      yield archiveRecord(99);
    })(), applyOptions({ mode: 'merge' }));
    await other.close();
    let count = 1;
    while (!(await iterator.next()).done) count++;
    expect(count).toBe(26);
    await backend.close();
  });

  it('waits for another connection’s lock without stopping the event loop, up to busyTimeoutMs', async () => {
    const file = freshFile();
    const backend = new ProsodySqlBackend({ dialect: 'sqlite', database: file, hosts: HOSTS, busyTimeoutMs: 3000 });
    await backend.applyUser(ALICE, ALICE_ACCOUNT, (async function* () {
      yield archiveRecord(1);
    })(), applyOptions());
    // As Prosody does after a COMMIT that failed: a write transaction left open holds the lock
    // that keeps every reader out, until that connection's next transaction.
    const holder = new Database(file, { timeout: 0 });
    holder.exec('BEGIN EXCLUSIVE');
    // Only a running event loop can end the wait: a synchronous busy wait would time out first.
    const started = Date.now();
    setTimeout(() => holder.exec('COMMIT'), 300);
    expect(await backend.userExists(ALICE)).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(Date.now() - started).toBeLessThan(2500);

    holder.exec('BEGIN EXCLUSIVE');
    const short = new ProsodySqlBackend({ dialect: 'sqlite', database: file, hosts: HOSTS, busyTimeoutMs: 200 });
    await expect(short.userExists(ALICE)).rejects.toMatchObject({ name: 'StorageError', code: 'unavailable' });
    holder.exec('COMMIT');
    holder.close();
    await short.close();
    await backend.close();
  });

  it('reports data Prosody’s formats cannot hold, or stored rows they do not allow, as invalid-data', async () => {
    const file = freshFile();
    const backend = new ProsodySqlBackend({ dialect: 'sqlite', database: file, hosts: HOSTS });
    await backend.applyUser(ALICE, ALICE_ACCOUNT, (async function* () {
      yield archiveRecord(1);
    })(), applyOptions());
    const bad = archiveRecord(2, { stanza: element('message', NS.client, {}, [element('body', NS.client, {}, ['\u0001'])]) });
    await expect(backend.applyUser(ALICE, ALICE_ACCOUNT, (async function* () {
      yield bad;
    })(), applyOptions())).rejects.toMatchObject({ name: 'StorageError', code: 'invalid-data' });

    const db = new Database(file);
    db.prepare(`UPDATE "prosodyarchive" SET "value" = '<message><unclosed></message>'`).run();
    db.close();
    const read = backend.readUser(ALICE, { include: new Set(['archive']) });
    await expect(collect(read)).rejects.toMatchObject({ name: 'StorageError', code: 'invalid-data' });
    await backend.close();
  });

  it('refuses an in-memory database, which Prosody could not share', () => {
    expect(() => new ProsodySqlBackend({ dialect: 'sqlite', database: ':memory:', hosts: HOSTS })).toThrow(/in-memory/);
  });
});
