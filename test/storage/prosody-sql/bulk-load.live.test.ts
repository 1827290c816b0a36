/**
 * MAM archives of more than one batch go into PostgreSQL through COPY and into MariaDB through
 * LOAD DATA LOCAL INFILE (SqlTransaction.streamRows), de-duplicated set-wise at the end: the same
 * outcome as the per-batch lookups, and all or nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArchiveRecord, UserRecord } from '../../../src/records/model.js';
import { ProsodySqlBackend, type SqlDialect } from '../../../src/storage/prosody-sql/index.js';
import { startStreamedArchive } from '../../../src/storage/prosody-sql/streamed-archive.js';
import type { ArchiveItem } from '../../../src/storage/prosody/archive.js';
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

    it('PEP items before a streamed archive and an offline message within it go in after it, in one stream', async () => {
      await reset();
      const offline = ALICE_RECORDS.filter((r) => r.kind === 'offline');
      const others = ALICE_RECORDS.filter((r) => r.kind !== 'archive' && r.kind !== 'offline');
      const report = await backend.applyUser(ALICE, ALICE_ACCOUNT, iterate([...others, ...range(0, 600), ...offline, ...range(600, 1200)]), applyOptions());
      expect(streamed).toEqual(['prosodyarchive']);
      expect(report.counts).toMatchObject({ archive: 1200, offline: 1 });
      const stores = (await db.query(`SELECT "store" FROM "prosodyarchive" WHERE "user" = ? ORDER BY "sort_id"`, ['alice'])).map((r) => r.store);
      expect(stores.slice(0, 1200).every((store) => store === 'archive')).toBe(true);
      expect(stores.slice(1200).sort()).toEqual(['offline', 'pep_urn:example:xporta:notes', 'pep_urn:xmpp:bookmarks:1', 'pep_urn:xmpp:bookmarks:1']);
      const read = await collect(backend.readUser(ALICE, { include: new Set(['pep', 'offline', 'archive'] as const) }));
      const pepItems = read.flatMap((r) => (r.kind === 'pep-item' ? [`${r.node} ${r.id}`] : []));
      expect(pepItems.sort()).toEqual(['urn:example:xporta:notes note-1', 'urn:xmpp:bookmarks:1 lobby@conference.example.org', 'urn:xmpp:bookmarks:1 xmpp@conference.example.org']);
      expect(read.filter((r) => r.kind === 'offline')).toHaveLength(1);
      expect(await ids()).toEqual(range(0, 1200).map((r) => r.id));
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

    it('an archive into an empty store streams straight into the archive table; a merge into a stored one is checked', async () => {
      await reset();
      await backend.applyUser(ALICE, ALICE_ACCOUNT, iterate([...range(0, 1100), archiveRecord(7)]), applyOptions());
      // PostgreSQL checks through its staging table; MySQL loads into the archive either way.
      if (kind === 'postgres') expect(streamed).not.toContain('xporta_archive_staging');
      streamed.length = 0;
      await backend.applyUser(ALICE, { ...ALICE_ACCOUNT, scram: [] }, iterate(range(1000, 2100)), applyOptions({ mode: 'merge', createAccount: false, include: ARCHIVE_ONLY }));
      if (kind === 'postgres') expect(streamed).toContain('xporta_archive_staging');
      expect(await ids()).toEqual(range(0, 2100).map((r) => r.id));
    });

    it('a load past the keys it keeps in memory goes on checked by the database, in document order', async () => {
      await reset();
      const item = (i: number, when = 1795367897 + i): ArchiveItem => ({ key: `k-${String(i).padStart(5, '0')}`, when, with: 'bob@localhost', value: `body ${i}` });
      const items = (from: number, to: number): ArchiveItem[] => Array.from({ length: to - from }, (_, i) => item(from + i));
      const owner = { host: 'localhost', user: 'carol' };
      const tx = await db.begin();
      try {
        const load = await startStreamedArchive(tx, kind === 'postgres' ? 'postgresql' : 'mysql', owner, 'archive', 300);
        if (!load) throw new Error('no streamed load');
        // Repeats: one within the direct phase, one of a direct row in the checked phase, one within the checked phase.
        await load.add([...items(0, 200), item(10, 1), ...items(200, 400)]);
        await load.add([item(250, 2), ...items(400, 500), item(450, 3), ...items(500, 600)]);
        expect(await load.finish()).toEqual({ inserted: 600, duplicates: 3 });
        // A second round, after another statement of the transaction.
        await tx.query('SELECT 1 AS "one"');
        await load.add([item(5, 4), ...items(600, 700)]);
        expect(await load.finish()).toEqual({ inserted: 100, duplicates: 1 });
        await tx.commit();
      } catch (err) {
        await tx.rollback();
        throw err;
      }
      const rows = await db.query(`SELECT "key", "when" FROM "prosodyarchive" WHERE "user" = ? ORDER BY "sort_id"`, ['carol']);
      expect(rows.map((r) => r.key)).toEqual(items(0, 700).map((i) => i.key));
      expect(rows.every((r, i) => Number(r.when) === 1795367897 + i)).toBe(true);
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
