/**
 * MAM archives of more than one batch go into PostgreSQL through COPY and into MariaDB through
 * LOAD DATA LOCAL INFILE (SqlTransaction.streamRows), de-duplicated set-wise at the end: the same
 * outcome as the per-batch lookups, and all or nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArchiveRecord, UserRecord } from '../../../src/records/model.js';
import { ProsodySqlBackend, type SqlDialect } from '../../../src/storage/prosody-sql/index.js';
import { openMariadb, openPostgres, skipWithout } from '../../support/storage/databases.js';
import { snapshot, type TestDatabase } from '../../support/storage/sql-suite.js';
import { ALICE, ALICE_ACCOUNT, ALICE_RECORDS, HOSTS, applyOptions, archiveRecord, collect, iterate } from '../../support/storage/sample-user.js';

const range = (from: number, to: number): ArchiveRecord[] => Array.from({ length: to - from }, (_, i) => archiveRecord(from + i));

const ARCHIVE_ONLY = new Set(['archive'] as const);

for (const [name, kind, open] of [
  ['PostgreSQL', 'postgres', openPostgres],
  ['MariaDB', 'mysql', openMariadb],
] as const) {
  describe.skipIf(await skipWithout(kind))(`streamed archive loads on ${name}`, () => {
    let database: TestDatabase;
    let db: SqlDialect;
    let backend: ProsodySqlBackend;
    /** Bulk loads the imports opened, by table. */
    const streamed: string[] = [];

    beforeAll(async () => {
      database = await open();
      db = database.dialect;
      const begin = db.begin.bind(db);
      db.begin = async () => {
        const tx = await begin();
        const streamRows = tx.streamRows?.bind(tx);
        if (streamRows) {
          tx.streamRows = (table, columns) => {
            streamed.push(table);
            return streamRows(table, columns);
          };
        }
        return tx;
      };
      backend = new ProsodySqlBackend(db, { hosts: HOSTS });
      await backend.ensureSchema();
    });

    afterAll(async () => {
      await backend?.close();
      await database?.drop();
    });

    async function reset(): Promise<void> {
      await db.run(`DELETE FROM "prosody"`);
      await db.run(`DELETE FROM "prosodyarchive"`);
      streamed.length = 0;
    }

    const ids = async (): Promise<string[]> =>
      (await collect(backend.readUser(ALICE, { include: ARCHIVE_ONLY }))).map((r) => (r as ArchiveRecord).id ?? '');

    it('skips ids the store has and ids the document repeats, keeping the first and the document order', async () => {
      await reset();
      const first = archiveRecord(5);
      const repeated = archiveRecord(5, { timestamp: '2027-01-01T00:00:00Z' });
      const created = await backend.applyUser(ALICE, ALICE_ACCOUNT, iterate([...range(0, 700), repeated, ...range(700, 1200)]), applyOptions());
      expect(streamed.length).toBeGreaterThan(0);
      expect(created.counts.archive).toBe(1200);
      expect(created.skipped).toContainEqual({ kind: 'archive', reason: 'already stored', detail: '1 record(s)' });

      streamed.length = 0;
      // 200 already stored, one repeated within the document.
      const records: UserRecord[] = [...range(1000, 1600), archiveRecord(1500), ...range(1600, 2200)];
      const merged = await backend.applyUser(ALICE, { ...ALICE_ACCOUNT, scram: [] }, iterate(records), applyOptions({ mode: 'merge', createAccount: false, include: ARCHIVE_ONLY }));
      expect(streamed.length).toBeGreaterThan(0);
      expect(merged.counts.archive).toBe(1000);
      expect(merged.skipped).toContainEqual({ kind: 'archive', reason: 'already stored', detail: '201 record(s)' });

      expect(await ids()).toEqual(range(0, 2200).map((r) => r.id));
      const stored = await db.query(`SELECT "when" FROM "prosodyarchive" WHERE "key" = ?`, ['msg-000005']);
      expect(stored.map((r) => Number(r.when))).toEqual([Date.parse(first.timestamp ?? '') / 1000]);
    });

    it('a merge that finds every id stored adds nothing', async () => {
      await reset();
      await backend.applyUser(ALICE, ALICE_ACCOUNT, iterate(range(0, 1100)), applyOptions());
      const before = await snapshot(db);
      const again = await backend.applyUser(ALICE, { ...ALICE_ACCOUNT, scram: [] }, iterate(range(0, 1100)), applyOptions({ mode: 'merge', createAccount: false, include: ARCHIVE_ONLY }));
      expect(again.counts.archive ?? 0).toBe(0);
      expect(again.skipped).toContainEqual({ kind: 'archive', reason: 'already stored', detail: '1100 record(s)' });
      expect(await snapshot(db)).toEqual(before);
    });

    it('a value the database refuses in the middle of the load rolls everything back', async () => {
      await reset();
      await backend.applyUser(ALICE, ALICE_ACCOUNT, iterate(ALICE_RECORDS), applyOptions());
      const before = await snapshot(db);
      streamed.length = 0;
      // 2100 is past what Prosody's INTEGER "when" holds (2^31 - 1 seconds).
      const outOfRange = archiveRecord(900, { timestamp: '2100-01-01T00:00:00Z' });
      const records = [...ALICE_RECORDS.slice(0, 8), ...range(0, 900), outOfRange, ...range(901, 1600)];
      const failed = backend.applyUser(ALICE, { ...ALICE_ACCOUNT, password: 'new password' }, iterate(records), applyOptions());
      // MariaDB reports the value through a warning (LOCAL turns errors into warnings): the document's fault.
      if (kind === 'mysql') await expect(failed).rejects.toMatchObject({ code: 'invalid-data' });
      else await expect(failed).rejects.toThrow(/out of range/);
      expect(streamed.length).toBeGreaterThan(0);
      expect(await snapshot(db)).toEqual(before);
      // The connection went back to the pool clean: the next import works.
      const next = await backend.applyUser(ALICE, ALICE_ACCOUNT, iterate(range(0, 1100)), applyOptions({ include: ARCHIVE_ONLY }));
      expect(next.counts.archive).toBe(1100);
    });

    it('a dry run streams and counts, and stores nothing', async () => {
      await reset();
      await backend.applyUser(ALICE, ALICE_ACCOUNT, iterate(ALICE_RECORDS), applyOptions());
      const before = await snapshot(db);
      const report = await backend.applyUser(ALICE, ALICE_ACCOUNT, iterate([...range(0, 1000), archiveRecord(3)]), applyOptions({ dryRun: true }));
      expect(report.counts.archive).toBe(1000);
      expect(await snapshot(db)).toEqual(before);
    });
  });
}
