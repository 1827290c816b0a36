/**
 * The live suite of EjabberdSqlBackend, run against one ejabberd generation by
 * ejabberd-sql-live.test.ts (23.01) and ejabberd-sql-live-24.test.ts (24.12): real clients fill alice's account, xporta
 * reads what ejabberd stored; then xporta imports alice's records as a new account `dave` (her
 * SCRAM-SHA-1 credentials, so her password works), clears ejabberd's caches, and a real client
 * logs in as dave and gets everything back from ejabberd itself, the offline messages too (on
 * initial presence, with their original XEP-0203 delay stamps).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRecordRewriter } from '../../../src/transfer/rename.js';
import type { ApplyReport } from '../../../src/storage/backend.js';
import { EjabberdSqlBackend } from '../../../src/storage/ejabberd-sql/index.js';
import { DATA_KINDS, NS, element, type ArchiveRecord, type UserRecord, type UserStart } from '../../../src/records/model.js';
import { describeWithEjabberd, ejabberdConnection, startEjabberd, type EjabberdHandle, type EjabberdStorage } from '../ejabberd.js';
import { isCI } from '../prosody.js';
import { sqlServerAvailable } from '../../../bench/sql-databases.js';
import { EJ_ALICE_PASSWORD as PASSWORD, populateEjabberdAlice } from '../ejabberd-populate.js';
import type { EjabberdVersion } from '../server-versions.js';
import { PostgresqlDialect } from '../../../src/storage/sql/postgresql/dialect.js';
import { MysqlDialect } from '../../../src/storage/sql/mysql/dialect.js';
import { SqliteDialect } from '../../../src/storage/sql/sqlite/dialect.js';
import type { SqlDialect } from '../../../src/storage/sql/dialect.js';
import { connectClient, getBlocklist, getPepItems, getPrivate, getRoster, getVCard, queryMam, type XmlElement } from '../xmpp-client.js';

const ALL = new Set(DATA_KINDS);

export type EjabberdVariant = { readonly storage: EjabberdStorage; readonly newSchema: boolean };
const VARIANTS: readonly EjabberdVariant[] = [
  { storage: 'sqlite', newSchema: true },
  { storage: 'sqlite', newSchema: false },
  { storage: 'postgres', newSchema: true },
  { storage: 'mysql', newSchema: true },
];

const serverUp = {
  postgres: await sqlServerAvailable('postgres'),
  mysql: await sqlServerAvailable('mysql'),
};

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const i of items) out.push(i);
  return out;
}

async function* iterate<T>(items: Iterable<T>): AsyncIterable<T> {
  yield* items;
}

function recordsOf<K extends UserRecord['kind']>(records: readonly UserRecord[], kind: K): Extract<UserRecord, { kind: K }>[] {
  return records.filter((r): r is Extract<UserRecord, { kind: K }> => r.kind === kind);
}

/** A second connection to the test ejabberd's database, to look at columns xporta does not read. */
function openDatabase(ej: EjabberdHandle): SqlDialect {
  const c = ejabberdConnection(ej);
  if (c.dialect === 'sqlite') return SqliteDialect.open(c);
  return c.dialect === 'postgresql' ? new PostgresqlDialect(c) : new MysqlDialect(c);
}

/**
 * `variants`: the storage and schema combinations to run (default: SQLite in both schemas,
 * PostgreSQL and MariaDB in the new one); `sha256`: also the auth_scram_hash: sha256 suite.
 */
export function defineEjabberdLiveSuite(version: EjabberdVersion, variants: readonly EjabberdVariant[] = VARIANTS, sha256 = true): void {
  const current = version === '24.12';
  describeWithEjabberd(`EjabberdSqlBackend with a real ejabberd ${version}`, () => {
    for (const variant of variants) {
      const skip = variant.storage !== 'sqlite' && !serverUp[variant.storage] && !isCI;
      describe.skipIf(skip)(`${variant.storage}, ${variant.newSchema ? 'new' : 'default'} schema`, () => {
        let ej: EjabberdHandle;
        let backend: EjabberdSqlBackend;
        let records: UserRecord[];
        let account: UserStart | null;

        /** Imports alice's records as the account `dave`, every reference to alice rewritten. */
        const applyAsDave = (mode: 'replace' | 'merge', createAccount: boolean): Promise<ApplyReport> => {
          if (!account) throw new Error('no account');
          const rewrite = createRecordRewriter('alice@localhost', 'dave@localhost');
          return backend.applyUser({ host: 'localhost', user: 'dave' }, { ...account, name: 'dave' }, iterate(records.map(rewrite)), {
            mode,
            dryRun: false,
            include: ALL,
            createAccount,
          });
        };

        beforeAll(async () => {
          ej = await startEjabberd({ version, storage: variant.storage, newSchema: variant.newSchema });
          backend = new EjabberdSqlBackend({ ...ejabberdConnection(ej), hosts: { localhost: {} }, newSchema: variant.newSchema, onCommitted: () => ej.clearCache() });
          await populateEjabberdAlice(ej);
          account = await backend.readAccount({ host: 'localhost', user: 'alice' });
          records = await collect(backend.readUser({ host: 'localhost', user: 'alice' }, { include: ALL }));
        });

        afterAll(async () => {
          await backend?.close();
          await ej?.stop();
        });

        it('lists the accounts', async () => {
          expect(await backend.listHosts()).toEqual(['localhost']);
          expect(await collect(backend.listUsers('localhost'))).toEqual(['alice', 'bob', 'carol']);
          expect(await backend.userExists({ host: 'localhost', user: 'alice' })).toBe(true);
          expect(await backend.userExists({ host: 'localhost', user: 'nobody' })).toBe(false);
        });

        it('reads SCRAM-SHA-1 credentials', () => {
          expect(account?.password).toBeUndefined();
          expect(account?.scram).toHaveLength(1);
          expect(account?.scram[0]).toMatchObject({ mechanism: 'SCRAM-SHA-1', iterationCount: 4096 });
          expect(Buffer.from(account?.scram[0]?.storedKey ?? '', 'base64')).toHaveLength(20);
        });

        it('reads the roster, groups and pending requests', () => {
          const [roster] = recordsOf(records, 'roster');
          expect(roster?.items).toEqual([{ jid: 'bob@localhost', name: 'Bob', subscription: 'none', ask: 'subscribe', groups: ['Friends', 'Work'] }]);
          expect(recordsOf(records, 'pending-subscription').map((p) => p.from)).toEqual(['carol@localhost']);
        });

        it('reads vCard, private XML, blocklist', () => {
          const [vcard] = recordsOf(records, 'vcard');
          expect(vcard?.vcard.children).toContainEqual({ name: 'FN', xmlns: 'vcard-temp', attrs: {}, children: ['Alice Example'] });
          // 24.12 mirrors the XEP-0402 bookmark alice published into XEP-0048 private storage.
          expect(recordsOf(records, 'private').map((p) => p.element.xmlns)).toEqual(current ? ['storage:bookmarks', 'urn:example:notes'] : ['urn:example:notes']);
          expect(recordsOf(records, 'blocklist')).toEqual([{ kind: 'blocklist', items: ['spammer@example.net'] }]);
          expect(recordsOf(records, 'privacy')).toEqual([]);
        });

        it('reads PEP nodes with their configuration and items', () => {
          const nodes = recordsOf(records, 'pep-node');
          // …and into the legacy PEP node XEP-0048 clients read.
          expect(nodes.map((n) => n.node)).toEqual(
            current ? ['http://jabber.org/protocol/nick', 'storage:bookmarks', 'urn:xmpp:bookmarks:1'] : ['http://jabber.org/protocol/nick', 'urn:xmpp:bookmarks:1'],
          );
          const bookmarks = nodes.find((n) => n.node === 'urn:xmpp:bookmarks:1');
          expect(bookmarks?.config).toContainEqual({ var: 'pubsub#access_model', values: ['whitelist'] });
          expect(bookmarks?.config).toContainEqual({ var: 'pubsub#persist_items', type: 'boolean', values: ['1'] });
          expect(bookmarks?.affiliations).toEqual([{ jid: 'alice@localhost', affiliation: 'owner' }]);
          const items = recordsOf(records, 'pep-item');
          const legacyItems = current ? ['storage:bookmarks current'] : [];
          expect(items.map((i) => `${i.node} ${i.id}`).sort()).toEqual(['http://jabber.org/protocol/nick current', ...legacyItems, 'urn:xmpp:bookmarks:1 room@conference.localhost'].sort());
          expect(items[0]?.published).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);
        });

        it('reads the MAM archive and the offline messages', () => {
          const archive = recordsOf(records, 'archive');
          expect(archive.map((a) => a.stanza.children.find((c) => typeof c !== 'string' && c.name === 'body'))).toHaveLength(3);
          expect(archive.every((a) => /^\d{16}$/.test(a.id) && a.with === 'bob@localhost')).toBe(true);
          const offline = recordsOf(records, 'offline');
          expect(offline.map((o) => o.stanza.children.find((c) => typeof c !== 'string' && c.name === 'body'))).toHaveLength(2);
          const offlineChildren = offline[0]?.stanza.children.filter((c) => typeof c !== 'string').map((c) => (typeof c === 'string' ? '' : c.xmlns));
          expect(offlineChildren).not.toContain('urn:xmpp:mam:tmp');
          expect(offline[0]?.timestamp).toMatch(/Z$/);
        });

        it('imports alice as dave; ejabberd serves it all after clear_cache', async () => {
          const report = await applyAsDave('replace', true);
          expect(report.created).toBe(true);
          expect(report.warnings).toEqual([]);
          expect(report.counts).toMatchObject({ credentials: 1, vcard: 1, private: current ? 2 : 1, archive: 3, offline: 2, blocklist: 1 });
          const dave = await connectClient({ service: ej.service, domain: 'localhost', username: 'dave', password: PASSWORD });
          try {
            const roster = await getRoster(dave);
            expect(roster.map((r) => [r.jid, r.name, r.subscription, r.ask, [...r.groups].sort()])).toEqual([['bob@localhost', 'Bob', 'none', 'subscribe', ['Friends', 'Work']]]);
            const vcard = await getVCard(dave);
            expect(vcard?.getChildText('FN')).toBe('Alice Example');
            const notes = await getPrivate(dave, 'notes', 'urn:example:notes');
            expect(notes?.getChildText('note')).toBe('remember');
            const nick = await getPepItems(dave, undefined, 'http://jabber.org/protocol/nick');
            expect(nick.map((i) => i.payload?.text())).toEqual(['Ali']);
            const bookmarks = await getPepItems(dave, undefined, 'urn:xmpp:bookmarks:1');
            expect(bookmarks.map((i) => i.id)).toEqual(['room@conference.localhost']);
            expect(await getBlocklist(dave)).toEqual(['spammer@example.net']);
            const mam = await queryMam(dave);
            expect(mam.map((m) => m.message.getChildText('body'))).toEqual(['hello bob', 'hello alice', 'while you were away']);
          } finally {
            await dave.close();
          }
        });

        it('merging the same records again adds nothing', async () => {
          const report = await applyAsDave('merge', false);
          expect(report.created).toBe(false);
          expect(report.counts.archive ?? 0).toBe(0);
          expect(report.skipped).toContainEqual({ kind: 'archive', reason: 'already stored', detail: '3 record(s)' });
          expect(report.skipped).toContainEqual({ kind: 'offline', reason: 'already stored', detail: '2 record(s)' });
          const again = await collect(backend.readUser({ host: 'localhost', user: 'dave' }, { include: ALL }));
          expect(again.filter((r) => r.kind === 'archive')).toHaveLength(3);
          expect(again.filter((r) => r.kind === 'pep-item')).toHaveLength(current ? 3 : 2);
          expect(again.filter((r) => r.kind === 'blocklist')).toEqual([{ kind: 'blocklist', items: ['spammer@example.net'] }]);
          expect(again.find((r) => r.kind === 'roster')).toMatchObject({ items: [{ jid: 'bob@localhost', groups: ['Friends', 'Work'] }] });
        });

        it('replacing dave’s account, which ejabberd has served, with the same records: ejabberd serves exactly them', async () => {
          const report = await applyAsDave('replace', false);
          expect(report.created).toBe(false);
          expect(report.counts.archive).toBe(3);
          const dave = await connectClient({ service: ej.service, domain: 'localhost', username: 'dave', password: PASSWORD });
          try {
            expect((await queryMam(dave)).map((m) => m.message.getChildText('body'))).toEqual(['hello bob', 'hello alice', 'while you were away']);
            expect((await getPepItems(dave, undefined, 'urn:xmpp:bookmarks:1')).map((i) => i.id)).toEqual(['room@conference.localhost']);
            expect((await getRoster(dave)).map((r) => r.jid)).toEqual(['bob@localhost']);
            expect(await getBlocklist(dave)).toEqual(['spammer@example.net']);
            expect((await getVCard(dave))?.getChildText('FN')).toBe('Alice Example');
          } finally {
            await dave.close();
          }
        });

        it('dave’s client receives the imported offline messages with their original XEP-0203 delay stamps', async () => {
          // After the replace above, dave's offline store holds alice's two messages, rewritten.
          const originals = recordsOf(records, 'offline');
          const stampOf = (message: XmlElement): string[] => message.getChildren('delay', 'urn:xmpp:delay').map((d) => String(d.attrs.stamp));
          const bodyOf = (o: (typeof originals)[number]): string => {
            const body = o.stanza.children.find((c) => typeof c !== 'string' && c.name === 'body');
            return body && typeof body !== 'string' ? body.children.join('') : '';
          };
          const dave = await connectClient({ service: ej.service, domain: 'localhost', username: 'dave', password: PASSWORD, presence: true });
          try {
            const delivered = await Promise.all(
              originals.map((o) => dave.waitFor((s) => s.is('message') && s.getChildText('body') === bodyOf(o), 10_000)),
            );
            expect(delivered.map((m) => stampOf(m))).toEqual(originals.map((o) => [o.timestamp]));
          } finally {
            await dave.close();
          }
          expect((await ej.ctl(['get_offline_count', 'dave', 'localhost'])).stdout.trim()).toBe('0');
        });

        it('gives messages of one second distinct times across batches, and a merge of them adds none', async () => {
          const ref = { host: 'localhost', user: 'henry' };
          const henry: UserStart = { kind: 'user', name: 'henry', password: 'h', scram: [], extraAttributes: {} };
          const message = (n: number): ArchiveRecord => ({
            kind: 'archive',
            id: `prosody-uuid-${n}`,
            timestamp: '2026-01-01T00:00:00Z',
            with: 'bob@localhost',
            stanza: element('message', NS.client, { from: 'bob@localhost/pc', to: 'henry@localhost', type: 'chat', id: `m${n}` }, [element('body', NS.client, {}, [`burst ${n}`])]),
          });
          // More than two batches of 500, all asking for the same microsecond.
          const burst = Array.from({ length: 1200 }, (_, n) => message(n));
          const replaced = await backend.applyUser(ref, henry, iterate(burst), { mode: 'replace', dryRun: false, include: ALL, createAccount: true });
          expect(replaced.counts.archive).toBe(1200);
          const second = Date.parse('2026-01-01T00:00:00Z') * 1000;
          const stored = recordsOf(await collect(backend.readUser(ref, { include: ALL })), 'archive');
          expect(stored.map((r) => Number(r.id))).toEqual(burst.map((_, n) => second + n));
          expect(stored.map((r) => r.stanza.children.length > 0 && JSON.stringify(r.stanza).includes(`burst ${stored.indexOf(r)}`))).not.toContain(false);

          const merged = await backend.applyUser(ref, henry, iterate([...burst, message(1200)]), { mode: 'merge', dryRun: false, include: ALL, createAccount: false });
          expect(merged.counts.archive).toBe(1);
          expect(merged.skipped).toContainEqual({ kind: 'archive', reason: 'already stored', detail: '1200 record(s)' });
          const after = recordsOf(await collect(backend.readUser(ref, { include: ALL })), 'archive');
          expect(after.map((r) => Number(r.id))).toEqual([...burst, message(1200)].map((_, n) => second + n));
        });

        it('a plain password is stored as such and logs in over SCRAM', async () => {
          const report = await backend.applyUser(
            { host: 'localhost', user: 'frank' },
            { kind: 'user', name: 'frank', password: 'frank plain', scram: [], extraAttributes: {} },
            iterate([]),
            { mode: 'replace', dryRun: false, include: ALL, createAccount: true },
          );
          expect(report.counts.credentials).toBe(1);
          const frank = await connectClient({ service: ej.service, domain: 'localhost', username: 'frank', password: 'frank plain' });
          await frank.close();
        });

        it('SCRAM-SHA-256 alone cannot be stored: random password and a warning, the rest still applies', async () => {
          const report = await backend.applyUser(
            { host: 'localhost', user: 'gina' },
            { kind: 'user', name: 'gina', scram: [{ mechanism: 'SCRAM-SHA-256', iterationCount: 4096, salt: 'c2FsdA==', storedKey: 'AA==', serverKey: 'AA==' }], extraAttributes: {} },
            iterate(records.filter((r) => r.kind === 'vcard')),
            { mode: 'replace', dryRun: false, include: ALL, createAccount: true },
          );
          expect(report.created).toBe(true);
          expect(report.warnings).toEqual(['password must be reset for gina@localhost']);
          expect(report.skipped).toContainEqual(expect.objectContaining({ kind: 'credentials', detail: 'SCRAM-SHA-256' }));
          expect(report.counts.vcard).toBe(1);
          expect(await backend.userExists({ host: 'localhost', user: 'gina' })).toBe(true);
        });

        it('a dry run changes nothing', async () => {
          const report = await backend.applyUser(
            { host: 'localhost', user: 'erin' },
            { kind: 'user', name: 'erin', password: 'x', scram: [], extraAttributes: {} },
            iterate(records),
            { mode: 'replace', dryRun: true, include: ALL, createAccount: true },
          );
          expect(report.dryRun).toBe(true);
          expect(await backend.userExists({ host: 'localhost', user: 'erin' })).toBe(false);
        });

        it.runIf(current)('writes archive.origin_id as ejabberd 24.12 does: the origin-id, else the message id, else empty', async () => {
          const ref = { host: 'localhost', user: 'ivan' };
          const msg = (n: number, attrs: Record<string, string>, children: ReturnType<typeof element>[] = []): ArchiveRecord => ({
            kind: 'archive',
            id: `uuid-${n}`,
            timestamp: `2026-02-01T00:00:0${n}Z`,
            with: 'bob@localhost',
            stanza: element('message', NS.client, { from: 'bob@localhost/pc', to: 'ivan@localhost', type: 'chat', ...attrs }, [element('body', NS.client, {}, [`m${n}`]), ...children]),
          });
          const docs = [msg(1, { id: 'msg-1' }, [element('origin-id', 'urn:xmpp:sid:0', { id: 'origin-1' })]), msg(2, { id: 'msg-2' }), msg(3, {})];
          const ivan: UserStart = { kind: 'user', name: 'ivan', password: 'ivan-pw', scram: [], extraAttributes: {} };
          const report = await backend.applyUser(ref, ivan, iterate(docs), { mode: 'replace', dryRun: false, include: ALL, createAccount: true });
          expect(report.counts.archive).toBe(3);
          const db = openDatabase(ej);
          try {
            const rows = await db.query(`SELECT "origin_id" FROM "archive" WHERE "username" = ? ORDER BY "timestamp"`, ['ivan']);
            expect(rows.map((r) => r.origin_id)).toEqual(['origin-1', 'msg-2', '']);
          } finally {
            await db.close();
          }
          const client = await connectClient({ service: ej.service, domain: 'localhost', username: 'ivan', password: 'ivan-pw' });
          try {
            expect((await queryMam(client)).map((m) => m.message.getChildText('body'))).toEqual(['m1', 'm2', 'm3']);
          } finally {
            await client.close();
          }
        });

        it.runIf(current)('XEP-0402 bookmarks alone are also written as XEP-0048 private storage, and the other way round', async () => {
          const conference = element('conference', 'urn:xmpp:bookmarks:1', { name: 'Room One', autojoin: 'true' }, [element('nick', 'urn:xmpp:bookmarks:1', {}, ['judy'])]);
          const pepOnly: UserRecord[] = [
            { kind: 'pep-node', node: 'urn:xmpp:bookmarks:1', config: [{ var: 'pubsub#access_model', values: ['whitelist'] }, { var: 'pubsub#max_items', values: ['max'] }], affiliations: [], subscriptions: [] },
            { kind: 'pep-item', node: 'urn:xmpp:bookmarks:1', id: 'one@conference.localhost', payload: conference },
          ];
          const judy: UserStart = { kind: 'user', name: 'judy', password: 'judy-pw', scram: [], extraAttributes: {} };
          const r1 = await backend.applyUser({ host: 'localhost', user: 'judy' }, judy, iterate(pepOnly), { mode: 'replace', dryRun: false, include: ALL, createAccount: true });
          expect(r1.warnings).toEqual(['bookmarks: 1 XEP-0402 bookmark(s) also written as XEP-0048 private storage, which ejabberd keeps in sync']);
          const legacy: UserRecord[] = [
            {
              kind: 'private',
              element: element('storage', 'storage:bookmarks', {}, [
                element('conference', 'storage:bookmarks', { jid: 'two@conference.localhost', name: 'Room Two', autojoin: '1' }, [element('nick', 'storage:bookmarks', {}, ['kate'])]),
              ]),
            },
          ];
          const kate: UserStart = { kind: 'user', name: 'kate', password: 'kate-pw', scram: [], extraAttributes: {} };
          const r2 = await backend.applyUser({ host: 'localhost', user: 'kate' }, kate, iterate(legacy), { mode: 'replace', dryRun: false, include: ALL, createAccount: true });
          expect(r2.warnings).toEqual(['bookmarks: 1 XEP-0048 private bookmark(s) also written as XEP-0402 PEP items, which ejabberd keeps in sync']);

          const j = await connectClient({ service: ej.service, domain: 'localhost', username: 'judy', password: 'judy-pw' });
          const k = await connectClient({ service: ej.service, domain: 'localhost', username: 'kate', password: 'kate-pw' });
          try {
            const storage = await getPrivate(j, 'storage', 'storage:bookmarks');
            const conf = storage?.getChild('conference');
            expect([conf?.attrs.jid, conf?.attrs.name, conf?.attrs.autojoin, conf?.getChildText('nick')]).toEqual(['one@conference.localhost', 'Room One', 'true', 'judy']);
            const items = await getPepItems(k, undefined, 'urn:xmpp:bookmarks:1');
            expect(items.map((i) => [i.id, i.payload?.attrs.name, i.payload?.attrs.autojoin, i.payload?.getChildText('nick')])).toEqual([['two@conference.localhost', 'Room Two', 'true', 'kate']]);
          } finally {
            await j.close();
            await k.close();
          }
        });

        it('ejabberd logged no error', () => {
          expect(ej.logErrors()).toEqual([]);
        });
      });
    }
  }, version);

  if (!sha256) return;
  describeWithEjabberd(`EjabberdSqlBackend with ejabberd ${version}, auth_scram_hash: sha256`, () => {
    let ej: EjabberdHandle;
    let backend: EjabberdSqlBackend;

    beforeAll(async () => {
      ej = await startEjabberd({ version, scramHash: 'sha256' });
      backend = new EjabberdSqlBackend({ ...ejabberdConnection(ej), hosts: { localhost: { passwordHash: 'SHA-256' } }, newSchema: true, onCommitted: () => ej.clearCache() });
      await ej.register('alice', 'localhost', PASSWORD);
    });

    afterAll(async () => {
      await backend?.close();
      await ej?.stop();
    });

    it('reads `sha256:`-prefixed StoredKeys as SCRAM-SHA-256 and writes them back so that the password works', async () => {
      const account = await backend.readAccount({ host: 'localhost', user: 'alice' });
      expect(account?.scram.map((s) => s.mechanism)).toEqual(['SCRAM-SHA-256']);
      expect(Buffer.from(account?.scram[0]?.storedKey ?? '', 'base64')).toHaveLength(32);
      if (!account) throw new Error('no account');
      const sha1Only = { ...account, name: 'bob', scram: [{ mechanism: 'SCRAM-SHA-1' as const, iterationCount: 4096, salt: 'c2FsdA==', storedKey: 'AA==', serverKey: 'AA==' }] };
      const refused = await backend.applyUser({ host: 'localhost', user: 'bob' }, sha1Only, iterate([]), { mode: 'replace', dryRun: false, include: ALL, createAccount: true });
      expect(refused.warnings).toEqual(['password must be reset for bob@localhost']);
      const report = await backend.applyUser({ host: 'localhost', user: 'dave' }, { ...account, name: 'dave' }, iterate([]), {
        mode: 'replace',
        dryRun: false,
        include: ALL,
        createAccount: true,
      });
      expect(report.counts.credentials).toBe(1);
      const dave = await connectClient({ service: ej.service, domain: 'localhost', username: 'dave', password: PASSWORD });
      await dave.close();
    });
  }, version);
}
