/**
 * SQLite's bulk load of a big MAM archive (src/storage/prosody-sql/sqlite-bulk.ts), reached with a
 * small threshold: the result (rows, report, schema) is what the per-batch lookups give, and
 * anything that does not commit leaves the indexes as they were.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import type { ApplyOptions, ApplyReport } from '../../../src/storage/backend.js';
import { ProsodySqlBackend, ensureSchema } from '../../../src/storage/prosody-sql/index.js';
import { SqliteDialect } from '../../../src/storage/sql/sqlite/dialect.js';
import { startArchiveBulkLoad } from '../../../src/storage/prosody-sql/sqlite-bulk.js';
import { NS, element, type UserRecord } from '../../../src/records/model.js';
import { droppedIndexes, recordingDialect, schemaOf } from '../../support/storage/sqlite-bulk.js';
import { ALICE, ALICE_ACCOUNT, ALICE_RECORDS, ALL_KINDS, HOSTS, applyOptions, archiveRecord, collect, iterate } from '../../support/storage/sample-user.js';

const dir = mkdtempSync(join(tmpdir(), 'xporta-sqlite-bulk-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** INSERT_BATCH is 500: the second batch reaches it, the third and fourth go in unchecked. */
const THRESHOLD = 600;
const BOB = { host: 'localhost', user: 'bob' };

interface Opened {
  readonly file: string;
  readonly backend: ProsodySqlBackend;
  /** The statements run (not queried) in the transactions begun since. */
  readonly statements: string[];
}

function open(bulkLoadThreshold?: number, file = join(dir, `prosody-${++n}.sqlite`)): Opened {
  const { dialect, statements } = recordingDialect({ database: file, ...(bulkLoadThreshold !== undefined ? { bulkLoadThreshold } : {}) });
  return { file, backend: new ProsodySqlBackend(dialect, { hosts: HOSTS }), statements };
}


/**
 * The archive table's rows in sort_id order, without it (the removed duplicates leave gaps) nor the
 * random keys offline messages get.
 */
function archiveRows(file: string): unknown[] {
  const db = new Database(file, { readonly: true });
  try {
    return db
      .prepare(`SELECT "host", "user", "store", CASE "store" WHEN 'offline' THEN '' ELSE "key" END AS "key", "when", "with", "type", "value" FROM "prosodyarchive" ORDER BY "sort_id"`)
      .all();
  } finally {
    db.close();
  }
}

/**
 * 2000 messages in four batches of 500, with ids repeated: within the first batch, in the second
 * of the first (both found by the lookups), in the third of the first (a row from before the
 * switch), within the third and in the fourth of the third (rows that went in unchecked). Each
 * repeat has other content, so that which one stays shows.
 */
function messagesWithRepeats(): UserRecord[] {
  const repeats = new Map([
    [10, 5],
    [700, 20],
    [1100, 30],
    [1200, 1150],
    [1600, 1160],
  ]);
  return Array.from({ length: 2000 }, (_, i) => {
    const repeated = repeats.get(i);
    return repeated === undefined ? archiveRecord(i) : archiveRecord(i, { id: archiveRecord(repeated).id });
  });
}

async function importInto(opened: Opened, records: readonly UserRecord[], options: Partial<ApplyOptions> = {}, user = ALICE): Promise<ApplyReport> {
  return opened.backend.applyUser(user, { ...ALICE_ACCOUNT, name: user.user }, iterate(records), applyOptions(options));
}

function messages(count: number, first = 0): UserRecord[] {
  return Array.from({ length: count }, (_, i) => archiveRecord(first + i));
}

describe('SQLite bulk load of a big archive', () => {
  it('gives the rows, report and indexes that the lookups give, duplicates removed as the lookups skip them', async () => {
    const checked = open();
    const bulk = open(THRESHOLD);
    const records = messagesWithRepeats();
    const expected = await importInto(checked, records);
    const report = await importInto(bulk, records);

    expect(droppedIndexes(checked.statements)).toEqual([]);
    expect(droppedIndexes(bulk.statements)).toHaveLength(4);
    expect(report).toEqual(expected);
    expect(report.counts.archive).toBe(1995);
    expect(report.skipped).toEqual([{ kind: 'archive', reason: 'already stored', detail: '5 record(s)' }]);
    expect(archiveRows(bulk.file)).toEqual(archiveRows(checked.file));
    // The first of each id stayed.
    const stayed = (await collect(bulk.backend.readUser(ALICE, { include: new Set(['archive']) }))) as { id: string; timestamp: string }[];
    expect(stayed.find((r) => r.id === archiveRecord(1150).id)?.timestamp).toBe(archiveRecord(1150).timestamp);
    expect(stayed.find((r) => r.id === archiveRecord(5).id)?.timestamp).toBe(archiveRecord(5).timestamp);
    // The same DDL text as Prosody's own schema: nothing tells the rebuilt indexes apart.
    expect(schemaOf(bulk.file)).toEqual(schemaOf(checked.file));
    await checked.backend.close();
    await bulk.backend.close();
  });

  it('brings the indexes back before another store’s lookups, and goes on with lookups after', async () => {
    // Offline and PEP items in the middle of the MAM archive: their flush ends the unchecked load.
    const records: UserRecord[] = [...messagesWithRepeats().slice(0, 1500), ...ALICE_RECORDS, archiveRecord(1700, { id: archiveRecord(1400).id }), ...(messages(300, 1800))];
    const checked = open();
    const bulk = open(THRESHOLD);
    const expected = await importInto(checked, records);
    const report = await importInto(bulk, records);
    expect(droppedIndexes(bulk.statements)).toHaveLength(4);
    expect(report).toEqual(expected);
    expect(archiveRows(bulk.file)).toEqual(archiveRows(checked.file));
    expect(await collect(bulk.backend.readUser(ALICE, { include: ALL_KINDS }))).toEqual(await collect(checked.backend.readUser(ALICE, { include: ALL_KINDS })));
    expect(schemaOf(bulk.file)).toEqual(schemaOf(checked.file));
    await checked.backend.close();
    await bulk.backend.close();
  });

  it('merges into an empty archive the same way, but into one with messages only with lookups', async () => {
    const bulk = open(THRESHOLD);
    await importInto(bulk, [], { include: new Set(['archive']) });
    await importInto(bulk, messages(1000), { mode: 'merge' });
    expect(droppedIndexes(bulk.statements)).toHaveLength(4);

    bulk.statements.length = 0;
    const report = await importInto(bulk, messagesWithRepeats(), { mode: 'merge' });
    expect(droppedIndexes(bulk.statements)).toEqual([]);
    // Ids 0–999 were stored (the first 1000 records and the repeat of 30); 1150 and 1160 come twice.
    expect(report.counts.archive).toBe(997);
    expect(report.skipped).toEqual([{ kind: 'archive', reason: 'already stored', detail: '1003 record(s)' }]);
    await bulk.backend.close();
  });

  it('leaves the indexes while the table holds more rows than the import, counting them when deleted rows left sort_id high', async () => {
    const bulk = open(THRESHOLD);
    await importInto(bulk, messages(3000), {}, BOB);
    expect(droppedIndexes(bulk.statements)).toHaveLength(4);

    bulk.statements.length = 0;
    await importInto(bulk, messages(2000));
    expect(droppedIndexes(bulk.statements)).toEqual([]);

    // bob's 3000 gone and alice's 2000 replaced: max(sort_id) says 5000 others, a count says none.
    await importInto(bulk, [], { include: new Set(['archive']) }, BOB);
    bulk.statements.length = 0;
    await importInto(bulk, messages(2000));
    expect(droppedIndexes(bulk.statements)).toHaveLength(4);
    await bulk.backend.close();
  });

  it('leaves indexes other than Prosody’s alone', async () => {
    const bulk = open(THRESHOLD);
    await bulk.backend.ensureSchema();
    const db = new Database(bulk.file);
    db.exec(`DROP INDEX "prosodyarchive_when"; CREATE INDEX "prosodyarchive_when" ON "prosodyarchive" ("when")`);
    db.close();
    const before = schemaOf(bulk.file);
    await importInto(bulk, messages(2000));
    expect(droppedIndexes(bulk.statements)).toEqual([]);
    expect(schemaOf(bulk.file)).toEqual(before);
    await bulk.backend.close();
  });

  it('rolls the indexes back with everything else when the import fails after dropping them, or is a dry run', async () => {
    const bulk = open(THRESHOLD);
    await importInto(bulk, messages(10));
    const schema = schemaOf(bulk.file);
    const rows = archiveRows(bulk.file);

    const bad = archiveRecord(5000, { stanza: element('message', NS.client, {}, [element('body', NS.client, {}, ['\u0001'])]) });
    await expect(importInto(bulk, [...messagesWithRepeats(), bad])).rejects.toMatchObject({ name: 'StorageError', code: 'invalid-data' });
    expect(droppedIndexes(bulk.statements)).toHaveLength(4);
    expect(schemaOf(bulk.file)).toEqual(schema);
    expect(archiveRows(bulk.file)).toEqual(rows);

    bulk.statements.length = 0;
    const report = await importInto(bulk, messagesWithRepeats(), { dryRun: true });
    expect(droppedIndexes(bulk.statements)).toHaveLength(4);
    expect(report).toMatchObject({ dryRun: true, counts: { archive: 1995 } });
    expect(schemaOf(bulk.file)).toEqual(schema);
    expect(archiveRows(bulk.file)).toEqual(rows);

    // A later import finds the indexes it needs.
    await importInto(bulk, messages(5), { mode: 'merge' });
    expect(archiveRows(bulk.file)).toEqual(rows);
    await bulk.backend.close();
  });

  it('refuses to commit while the indexes are dropped', async () => {
    const file = join(dir, `prosody-${++n}.sqlite`);
    const dialect = SqliteDialect.open({ database: file, bulkLoadThreshold: 1 });
    await ensureSchema(dialect);
    const schema = schemaOf(file);
    const tx = await dialect.begin();
    const load = await startArchiveBulkLoad(tx, ALICE, 'archive');
    await tx.run(`INSERT INTO "prosodyarchive" ("host", "user", "store", "when", "with", "key", "type", "value") VALUES ('localhost', 'alice', 'archive', 1, '', 'k', 'string', 'v')`);
    expect(await load?.inserted(1)).toBe(true);
    await expect(tx.commit()).rejects.toThrow(/indexes were not rebuilt/);
    await tx.rollback();
    expect(schemaOf(file)).toEqual(schema);
    await dialect.close();
  });
});
