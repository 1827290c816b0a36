/**
 * The ProsodySqlBackend behaviour every dialect must show, run against a fresh, empty database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError } from '../../../src/storage/backend.js';
import { ProsodySqlBackend, type SqlDialect } from '../../../src/storage/prosody-sql/index.js';
import { NS, element, type UserRecord } from '../../../src/records/model.js';
import { ALICE, ALICE_ACCOUNT, ALICE_RECORDS, ALL_KINDS, HOSTS, applyOptions, archiveRecord, collect, iterate } from './sample-user.js';
import type { StorageBackend } from '../../../src/storage/backend.js';
import { exportHostDocument } from '../../../src/transfer/host-transfer.js';
import { writeDocument } from '../../../src/xep0227/writer.js';
import type { DataKind } from '../../../src/records/model.js';

const DATA_KINDS_BUT_ARCHIVE = [...ALL_KINDS].filter((k) => k !== 'archive');

export interface TestDatabase {
  readonly dialect: SqlDialect;
  /** Drops the database; the dialect is already closed. */
  drop(): Promise<void>;
}

/** Every row of both tables, in an order independent of the database. */
export async function snapshot(db: SqlDialect): Promise<string[]> {
  const rows = await db.query(`SELECT "host", "user", "store", "key", "type", "value" FROM "prosody"`);
  const archive = await db.query(`SELECT "sort_id", "host", "user", "store", "key", "when", "with", "type", "value" FROM "prosodyarchive"`);
  return [...rows.map((r) => `p ${JSON.stringify(r)}`), ...archive.map((r) => `a ${JSON.stringify({ ...r, sort_id: Number(r.sort_id) })}`)].sort();
}

async function rowsOf(db: SqlDialect, store: string): Promise<Record<string, { type: string; value: string }>> {
  const rows = await db.query(`SELECT "key", "type", "value" FROM "prosody" WHERE "host" = ? AND "user" = ? AND "store" = ?`, [ALICE.host, ALICE.user, store]);
  return Object.fromEntries(rows.map((r) => [r.key as string, { type: r.type as string, value: r.value as string }]));
}

function byKind<K extends UserRecord['kind']>(records: readonly UserRecord[], kind: K): Extract<UserRecord, { kind: K }>[] {
  return records.filter((r): r is Extract<UserRecord, { kind: K }> => r.kind === kind);
}

async function* failingAfter(records: Iterable<UserRecord>, error: Error): AsyncIterable<UserRecord> {
  yield* records;
  throw error;
}

export function prosodySqlSuite(name: string, open: () => Promise<TestDatabase>): void {
  describe(`ProsodySqlBackend on ${name}`, () => {
    let database: TestDatabase;
    let db: SqlDialect;
    let backend: ProsodySqlBackend;

    beforeAll(async () => {
      database = await open();
      db = database.dialect;
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
    }

    async function importAlice(): Promise<void> {
      await reset();
      await backend.applyUser(ALICE, ALICE_ACCOUNT, iterate(ALICE_RECORDS), applyOptions());
    }

    it('imports every kind into a new account and reads the same records back', async () => {
      await reset();
      const report = await backend.applyUser(ALICE, ALICE_ACCOUNT, iterate(ALICE_RECORDS), applyOptions());
      expect(report).toEqual({
        user: 'alice@localhost',
        mode: 'replace',
        dryRun: false,
        created: true,
        counts: { credentials: 1, roster: 3, vcard: 1, private: 3, pep: 5, archive: 3, offline: 1, blocklist: 1, privacy: 1, other: 2 },
        skipped: [],
        unsupported: [],
        warnings: [],
      });
      expect(await backend.readAccount(ALICE)).toEqual(ALICE_ACCOUNT);
      expect(await collect(backend.readUser(ALICE, { include: ALL_KINDS }))).toEqual(ALICE_RECORDS);
      expect(await backend.userExists(ALICE)).toBe(true);
      expect(await backend.userExists({ host: 'localhost', user: 'nobody' })).toBe(false);
      expect(await collect(backend.listUsers('localhost'))).toEqual(['alice']);
      expect(await backend.listHosts()).toEqual(['example.test', 'localhost']);
    });

    it('writes rows the way Prosody does', async () => {
      await importAlice();
      expect(await rowsOf(db, 'accounts')).toEqual({
        iteration_count: { type: 'number', value: '10000' },
        salt: { type: 'string', value: '6cf4cfa7-482c-4c64-9e96-7b6ffb6491eb' },
        server_key: { type: 'string', value: '76c36e4ae845ed36fe609a0ef5bbb63b39374570' },
        stored_key: { type: 'string', value: '38109662643b9b5e5fb2eb6e4fcae115040308cb' },
        note: { type: 'string', value: 'imported' },
      });
      const roster = await rowsOf(db, 'roster');
      expect(roster['bob@localhost']).toEqual({ type: 'json', value: '{"name":"Bob Example","groups":{"Friends":true,"Work":true},"subscription":"both"}' });
      expect(roster['']?.value).toBe(
        '{"__hash":[false,{"version":5,"pending":{"eve@example.org":{"attr":{"from":"eve@example.org","to":"alice@localhost","type":"subscribe"},"name":"presence","__array":[{"attr":{"xmlns":"http://jabber.org/protocol/nick"},"name":"nick","__array":["Eve"]}]},"zed@example.org":{"attr":{"from":"zed@example.org","to":"alice@localhost","type":"subscribe"},"name":"presence"}}}]}',
      );
      const vcard = await rowsOf(db, 'vcard');
      expect(Object.keys(vcard).sort()).toEqual(['', 'attr', 'name']);
      expect(vcard.name).toEqual({ type: 'string', value: 'vCard' });
      expect(vcard['']?.value.startsWith('[{"attr":{"xmlns":"vcard-temp"},"name":"FN","__array":["Alice Example"]}')).toBe(true);
      const archive = await db.query(`SELECT "key", "when", "with", "type", "value" FROM "prosodyarchive" WHERE "store" = 'archive' ORDER BY "sort_id"`);
      expect(archive[0]).toEqual({
        key: 'msg-000001',
        when: 1795367898,
        with: 'bob@localhost',
        type: 'xml',
        value: "<message from='bob@localhost/pc' to='alice@localhost' type='chat' id='m1'><body>message 1 — 5 &lt; 6 &amp;&amp; &apos;quotes&apos; &quot;too&quot; 🎻</body></message>",
      });
      const pepItems = await db.query(`SELECT "key", "with" FROM "prosodyarchive" WHERE "store" = 'pep_urn:xmpp:bookmarks:1' ORDER BY "sort_id"`);
      expect(pepItems).toEqual([
        { key: 'lobby@conference.example.org', with: '' },
        { key: 'xmpp@conference.example.org', with: 'alice@localhost' },
      ]);
      const offline = await db.query(`SELECT "with", "when" FROM "prosodyarchive" WHERE "store" = 'offline'`);
      expect(offline).toEqual([{ with: '', when: 1795367898 }]);
    });

    it('replace clears only the selected kinds', async () => {
      await importAlice();
      const report = await backend.applyUser(ALICE, ALICE_ACCOUNT, iterate([archiveRecord(10), ...byKind(ALICE_RECORDS, 'roster')]), applyOptions({ include: new Set(['archive']) }));
      expect(report.counts).toEqual({ archive: 1 });
      expect(report.skipped).toEqual([{ kind: 'roster', reason: 'kind not included', detail: '1 record(s)' }]);
      const after = await collect(backend.readUser(ALICE, { include: ALL_KINDS }));
      expect(byKind(after, 'archive').map((r) => r.id)).toEqual(['msg-000010']);
      expect(after.filter((r) => r.kind !== 'archive')).toEqual(ALICE_RECORDS.filter((r) => r.kind !== 'archive'));
    });

    it('merge unions, the document winning on conflicts, archive deduplicated by id', async () => {
      await importAlice();
      const records: UserRecord[] = [
        { kind: 'roster', version: '2', items: [{ jid: 'bob@localhost', name: 'Robert', subscription: 'both', groups: [] }, { jid: 'new@localhost', subscription: 'none', groups: ['New'] }] },
        archiveRecord(2),
        archiveRecord(4),
        archiveRecord(4),
        { kind: 'pep-item', node: 'urn:xmpp:bookmarks:1', id: 'lobby@conference.example.org', payload: element('conference', 'urn:xmpp:bookmarks:1', { name: 'New lobby' }), published: '2026-11-23T00:00:00Z' },
        { kind: 'private', element: element('roster', 'roster:delimiter', {}, ['/']) },
        { kind: 'blocklist', items: ['new-spammer@spam.example'] },
      ];
      const report = await backend.applyUser(ALICE, { ...ALICE_ACCOUNT, scram: [] }, iterate(records), applyOptions({ mode: 'merge', createAccount: false }));
      expect(report.created).toBe(false);
      expect(report.counts).toMatchObject({ roster: 1, archive: 1, pep: 1, private: 1, blocklist: 1 });
      expect(report.skipped).toContainEqual({ kind: 'archive', reason: 'already stored', detail: '2 record(s)' });
      // No usable credentials in the document: the account keeps its own, which still work.
      expect(report.warnings).toEqual([expect.stringContaining('the existing credentials were kept')]);
      expect(report.warnings.join()).not.toContain('password must be reset');
      expect(await backend.readAccount(ALICE)).toEqual(ALICE_ACCOUNT);

      const after = await collect(backend.readUser(ALICE, { include: ALL_KINDS }));
      const roster = byKind(after, 'roster')[0]!;
      expect(roster.items.map((i) => `${i.jid}:${i.name ?? ''}`)).toEqual(['bob@localhost:Robert', 'carol@localhost:Carol 🎻', 'dave@example.test:', 'new@localhost:', 'romeo@montague.example:Romeo']);
      // The version moves past both, so no client keeps a stale cached roster.
      expect(roster.version).toBe('6');
      expect(byKind(after, 'pending-subscription')).toHaveLength(2);
      expect(byKind(after, 'archive').map((r) => r.id)).toEqual(['msg-000001', 'msg-000002', 'msg-000003', 'msg-000004']);
      const bookmarks = byKind(after, 'pep-item').filter((i) => i.node === 'urn:xmpp:bookmarks:1');
      // Re-published items become the newest, as Prosody's archive append does.
      expect(bookmarks.map((i) => i.id)).toEqual(['xmpp@conference.example.org', 'lobby@conference.example.org']);
      expect(bookmarks[1]?.payload?.attrs.name).toBe('New lobby');
      expect(byKind(after, 'private').find((p) => p.element.xmlns === 'roster:delimiter')?.element.children).toEqual(['/']);
      expect(byKind(after, 'blocklist')[0]?.items).toEqual(['new-spammer@spam.example', 'spammer@spam.example', 'troll@example.net/phone-0']);
    });

    it('creates the node record Prosody needs for items whose node the document did not describe', async () => {
      await importAlice();
      await backend.applyUser(
        ALICE,
        ALICE_ACCOUNT,
        iterate([{ kind: 'pep-item', node: 'http://jabber.org/protocol/nick', id: 'current', payload: element('nick', 'http://jabber.org/protocol/nick', {}, ['Ali']) }]),
        applyOptions({ mode: 'merge' }),
      );
      const nodes = byKind(await collect(backend.readUser(ALICE, { include: new Set(['pep']) })), 'pep-node');
      expect(nodes.find((n) => n.node === 'http://jabber.org/protocol/nick')).toEqual({
        kind: 'pep-node',
        node: 'http://jabber.org/protocol/nick',
        config: [],
        affiliations: [{ jid: 'alice@localhost', affiliation: 'owner' }],
        subscriptions: [],
      });
    });

    it('dry run reports what it would do and changes nothing', async () => {
      await importAlice();
      const before = await snapshot(db);
      const report = await backend.applyUser(ALICE, ALICE_ACCOUNT, iterate([archiveRecord(20), ...byKind(ALICE_RECORDS, 'roster')]), applyOptions({ dryRun: true }));
      expect(report.dryRun).toBe(true);
      expect(report.counts).toMatchObject({ archive: 1, roster: 1 });
      expect(await snapshot(db)).toEqual(before);
    });

    it('refuses an unknown user unless asked to create the account', async () => {
      await importAlice();
      const before = await snapshot(db);
      const bob = { host: 'localhost', user: 'bob' };
      await expect(backend.applyUser(bob, { ...ALICE_ACCOUNT, name: 'bob' }, iterate(ALICE_RECORDS), applyOptions({ createAccount: false }))).rejects.toMatchObject({
        name: 'StorageError',
        code: 'user-not-found',
      });
      expect(await snapshot(db)).toEqual(before);
    });

    it('leaves the store exactly as it was when the records fail halfway', async () => {
      await importAlice();
      const before = await snapshot(db);
      // Enough archive records that some batches were already written when the failure comes.
      const many = Array.from({ length: 1200 }, (_, i) => archiveRecord(100 + i));
      const failure = new Error('reader failed');
      await expect(
        backend.applyUser(ALICE, { ...ALICE_ACCOUNT, password: 'new password' }, failingAfter([...ALICE_RECORDS.slice(0, 8), ...many], failure), applyOptions()),
      ).rejects.toBe(failure);
      expect(await snapshot(db)).toEqual(before);
      // The aborted transaction left no lock behind.
      await backend.applyUser(ALICE, ALICE_ACCOUNT, iterate([archiveRecord(5)]), applyOptions({ mode: 'merge' }));
    });

    it('fails the commit with the error of a write sent ahead, and keeps none of the transaction', async () => {
      await reset();
      const tx = await db.begin();
      const insert = `INSERT INTO "prosody" ("host", "user", "store", "key", "type", "value") VALUES (?, ?, ?, ?, ?, ?)`;
      // Dialects without write-behind fail at once; the others at the next statement or the commit.
      const send = async (sql: string, params: (string | number)[]): Promise<void> => {
        if (tx.write) await tx.write(sql, params);
        else await tx.run(sql, params);
      };
      let failure: unknown;
      try {
        await send(insert, ['localhost', 'alice', 'vcard', 'k1', 'string', 'kept?']);
        await send(`INSERT INTO "no_such_table" ("x") VALUES (?)`, [1]);
        await send(insert, ['localhost', 'alice', 'vcard', 'k2', 'string', 'kept?']);
        await tx.commit();
      } catch (err) {
        failure = err;
        await tx.rollback();
      }
      expect(String(failure)).toMatch(/no_such_table/);
      expect(await snapshot(db)).toEqual([]);
    });

    it('rolls back when aborted', async () => {
      await importAlice();
      const before = await snapshot(db);
      const controller = new AbortController();
      async function* abortingAfter(): AsyncIterable<UserRecord> {
        for (let i = 0; i < 700; i++) yield archiveRecord(200 + i);
        controller.abort(new Error('client went away'));
        yield archiveRecord(1000);
      }
      await expect(backend.applyUser(ALICE, ALICE_ACCOUNT, abortingAfter(), applyOptions({ signal: controller.signal }))).rejects.toThrow('client went away');
      expect(await snapshot(db)).toEqual(before);
    });

    it('derives SCRAM-SHA-256 keys from a plain password on a SHA-256 host, skipping the SHA-1 set', async () => {
      await reset();
      const zoe = { host: 'example.test', user: 'zoë.o_brien+tag%~' };
      const report = await backend.applyUser(zoe, { ...ALICE_ACCOUNT, name: zoe.user, password: 'pencil' }, iterate([]), applyOptions());
      expect(report.warnings).toEqual([]);
      expect(report.skipped).toEqual([{ kind: 'credentials', reason: 'this host uses SCRAM-SHA-256', detail: 'SCRAM-SHA-1' }]);
      const account = await backend.readAccount(zoe);
      expect(account?.scram.map((s) => [s.mechanism, s.iterationCount])).toEqual([['SCRAM-SHA-256', 10000]]);
      expect(account?.password).toBeUndefined();
      expect(await collect(backend.listUsers('example.test'))).toEqual([zoe.user]);
    });

    it('refuses a host it is not configured for', async () => {
      await expect(backend.applyUser({ host: 'other.example', user: 'x' }, ALICE_ACCOUNT, iterate([]), applyOptions())).rejects.toBeInstanceOf(StorageError);
    });

    it('skips opaque records it must not write', async () => {
      await importAlice();
      const report = await backend.applyUser(
        ALICE,
        ALICE_ACCOUNT,
        iterate<UserRecord>([
          { kind: 'opaque', element: element('store', 'urn:xporta:prosody-store:0', { name: 'roles' }, [element('entry', 'urn:xporta:prosody-store:0', { key: 'prosody:admin', type: 'boolean' }, ['true'])]) },
          { kind: 'opaque', element: element('store', 'urn:xporta:prosody-store:0', { name: 'accounts' }, []) },
          { kind: 'opaque', element: element('x', 'urn:ejabberd:something') },
        ]),
        applyOptions({ mode: 'merge', include: new Set(['other']) }),
      );
      expect(report.skipped).toEqual([
        { kind: 'other', reason: 'store is not importable', detail: 'roles' },
        { kind: 'other', reason: 'store is not importable', detail: 'accounts' },
        { kind: 'other', reason: 'no Prosody store holds this element', detail: '{urn:ejabberd:something}x' },
      ]);
      expect(await rowsOf(db, 'roles')).toEqual({});
    });

    it('exports a host read in runs of accounts byte for byte as account by account', async () => {
      await reset();
      // Accounts with every kind, with some kinds only, with a big archive (read page by page),
      // with no data but credentials, and rows of an account that has none (not exported).
      const names = ['amy', 'bob', 'cat', 'dan', 'eve', 'fay', 'guy'];
      for (const [i, name] of names.entries()) {
        const records = i === 3 ? [] : i % 2 === 0 ? ALICE_RECORDS : ALICE_RECORDS.filter((r) => r.kind !== 'archive' && r.kind !== 'roster');
        await backend.applyUser({ host: 'localhost', user: name }, { ...ALICE_ACCOUNT, name }, iterate(records), applyOptions());
      }
      const big = Array.from({ length: 2_100 }, (_, i) => archiveRecord(i + 10));
      await backend.applyUser({ host: 'localhost', user: 'big' }, { ...ALICE_ACCOUNT, name: 'big' }, iterate(big), applyOptions({ mode: 'merge' }));
      await backend.applyUser({ host: 'localhost', user: 'cat' }, { ...ALICE_ACCOUNT, name: 'cat' }, iterate(big.slice(0, 5)), applyOptions({ mode: 'merge' }));
      await db.run(`INSERT INTO "prosody" ("host", "user", "store", "key", "type", "value") VALUES ('localhost', 'cas', 'roster', 'x@y', 'json', '{}')`);
      await db.run(`INSERT INTO "prosodyarchive" ("host", "user", "store", "when", "with", "key", "type", "value") VALUES ('localhost', 'cas', 'archive', 1, '', 'k', 'xml', '<message/>')`);
      // The same backend without readAccounts: account by account, each on its own snapshot.
      const alone: StorageBackend = {
        name: backend.name,
        supportedKinds: backend.supportedKinds,
        ping: () => backend.ping(),
        listHosts: () => backend.listHosts(),
        listUsers: (host) => backend.listUsers(host),
        userExists: (ref) => backend.userExists(ref),
        readAccount: (ref) => backend.readAccount(ref),
        readUser: (ref, options) => backend.readUser(ref, options),
        snapshot: () => backend.snapshot(),
        applyUser: (ref, account, records, options) => backend.applyUser(ref, account, records, options),
        close: () => Promise.resolve(),
      };
      const text = async (storage: StorageBackend, kinds: ReadonlySet<DataKind>): Promise<string> => {
        const chunks: Buffer[] = [];
        for await (const chunk of writeDocument(exportHostDocument(storage, 'localhost', kinds, { runAccounts: 3 }))) chunks.push(chunk);
        return Buffer.concat(chunks).toString('utf8');
      };
      const selections: ReadonlySet<DataKind>[] = [ALL_KINDS, new Set(DATA_KINDS_BUT_ARCHIVE), new Set(['pep', 'offline']), new Set(['credentials', 'roster'])];
      for (const kinds of selections) {
        const expected = await text(alone, kinds);
        expect(expected).toContain("<user name='big'");
        expect(expected).not.toContain("name='cas'");
        expect(await text(backend, kinds)).toBe(expected);
      }
    });

    it('streams an archive with messages of every shape', async () => {
      await reset();
      const odd = element('message', NS.client, { to: 'alice@localhost', from: 'room@muc.example/nick', type: 'groupchat' }, [
        element('body', NS.client, {}, ['\u00a0tab\there\r\nnew line ]]> \u{1F600}']),
        element('x', 'urn:x', { '{urn:y}attr': 'v' }),
      ]);
      const records = [archiveRecord(1, { stanza: odd, with: 'room@muc.example' })];
      await backend.applyUser(ALICE, ALICE_ACCOUNT, iterate(records), applyOptions());
      expect(await collect(backend.readUser(ALICE, { include: new Set(['archive']) }))).toEqual(records);
    });
  });
}
