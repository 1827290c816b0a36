/**
 * `storage.type: "ejabberd-sql"` through openStorage, over SQLite files made from ejabberd's own
 * schema scripts (lite.sql, lite.new.sql) without a running server: the export/import path the
 * service and the CLI take.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/config.js';
import { openStorage } from '../../../src/storage/open.js';
import { DATA_KINDS, element, type UserRecord } from '../../../src/records/model.js';
import { EJABBERD_SQL_DIR, describeWithEjabberd } from '../../support/ejabberd.js';

const ALL = new Set(DATA_KINDS);

async function* iterate<T>(items: Iterable<T>): AsyncIterable<T> {
  yield* items;
}

const RECORDS: UserRecord[] = [
  { kind: 'roster', items: [{ jid: 'bob@example.org', name: 'Bob', subscription: 'both', groups: ['Friends'] }] },
  { kind: 'pending-subscription', from: 'carol@example.org', payload: [element('status', 'jabber:client', {}, ['hi'])] },
  { kind: 'vcard', vcard: element('vCard', 'vcard-temp', {}, [element('FN', 'vcard-temp', {}, ['Alice'])]) },
  { kind: 'private', element: element('storage', 'storage:rosternotes', {}, [element('note', 'storage:rosternotes', { jid: 'bob@example.org' }, ['old friend'])]) },
  {
    kind: 'pep-node',
    node: 'urn:xmpp:bookmarks:1',
    config: [
      { var: 'pubsub#max_items', values: ['max'] },
      { var: 'pubsub#access_model', values: ['whitelist'] },
    ],
    affiliations: [],
    subscriptions: [],
  },
  { kind: 'pep-item', node: 'urn:xmpp:bookmarks:1', id: 'room@muc.example.org', payload: element('conference', 'urn:xmpp:bookmarks:1', { autojoin: 'true' }), published: '2024-05-01T10:00:00.123456Z' },
  {
    kind: 'archive',
    id: 'not-a-timestamp',
    timestamp: '2024-05-01T10:00:00Z',
    stanza: element('message', 'jabber:client', { from: 'bob@example.org/phone', to: 'alice@example.org', type: 'chat' }, [element('body', 'jabber:client', {}, ['hello'])]),
  },
  { kind: 'offline', timestamp: '2024-05-02T08:00:00Z', stanza: element('message', 'jabber:client', { from: 'bob@example.org', to: 'alice@example.org' }, [element('body', 'jabber:client', {}, ['later'])]) },
  { kind: 'privacy', defaultList: 'work', lists: [{ name: 'work', items: [{ type: 'group', value: 'Friends', action: 'allow', order: 1, stanzas: ['message'] }] }] },
  { kind: 'blocklist', items: ['spam@example.net'] },
];

describeWithEjabberd('openStorage with storage.type ejabberd-sql (SQLite, no server)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xporta-ejopen-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const schema of ['new', 'default'] as const) {
    it(`${schema} schema: imports a user and reads back the same records`, async () => {
      const database = join(dir, `${schema}.sqlite`);
      const db = new Database(database);
      db.exec(readFileSync(join(EJABBERD_SQL_DIR, schema === 'new' ? 'lite.new.sql' : 'lite.sql'), 'utf8'));
      db.close();
      const configPath = join(dir, `${schema}.json`);
      writeFileSync(configPath, JSON.stringify({ dataDir: dir, storage: { type: 'ejabberd-sql', driver: 'sqlite', schema, database }, hosts: { 'example.org': {} } }));
      const storage = await openStorage(loadConfig({ configPath, env: {}, cwd: dir }));
      try {
        expect(storage.name).toBe('ejabberd-sql:sqlite');
        await storage.ping();
        const ref = { host: 'example.org', user: 'alice' };
        const report = await storage.applyUser(ref, { kind: 'user', name: 'alice', password: 'pw', scram: [], extraAttributes: {} }, iterate(RECORDS), {
          mode: 'replace',
          dryRun: false,
          include: ALL,
          createAccount: true,
        });
        expect(report).toMatchObject({ created: true, skipped: [], warnings: [], unsupported: [] });
        expect(await storage.readAccount(ref)).toMatchObject({ password: 'pw', scram: [] });
        const back: UserRecord[] = [];
        for await (const r of storage.readUser(ref, { include: ALL })) back.push(r);
        const kinds = (k: UserRecord['kind']): UserRecord[] => back.filter((r) => r.kind === k);
        expect(kinds('roster')[0]).toMatchObject({ items: [{ jid: 'bob@example.org', name: 'Bob', subscription: 'both', groups: ['Friends'] }] });
        expect(kinds('pending-subscription')).toEqual([RECORDS[1]]);
        expect(kinds('vcard')).toEqual([RECORDS[2]]);
        expect(kinds('private')).toEqual([RECORDS[3]]);
        const node = kinds('pep-node')[0];
        expect(node).toMatchObject({ node: 'urn:xmpp:bookmarks:1', affiliations: [{ jid: 'alice@example.org', affiliation: 'owner' }] });
        expect(node?.kind === 'pep-node' ? node.config : []).toEqual(
          expect.arrayContaining([
            { var: 'pubsub#max_items', values: ['max'] },
            { var: 'pubsub#access_model', values: ['whitelist'] },
          ]),
        );
        expect(kinds('pep-item')).toEqual([{ ...RECORDS[5], publisher: 'alice@example.org' }]);
        const archive = kinds('archive')[0];
        // A non-ejabberd id becomes the archive time in µs, ejabberd's MAM id.
        expect(archive).toMatchObject({ id: '1714557600000000', timestamp: '2024-05-01T10:00:00.000Z', with: 'bob@example.org' });
        const offline = kinds('offline')[0];
        expect(offline).toMatchObject({ timestamp: '2024-05-02T08:00:00Z' });
        // The default list is "work", so the blocks go there, as mod_blocking puts them, and
        // show in both views.
        expect(kinds('privacy')).toEqual([
          {
            kind: 'privacy',
            defaultList: 'work',
            lists: [
              {
                name: 'work',
                items: [
                  { type: 'jid', value: 'spam@example.net', action: 'deny', order: 0, stanzas: [] },
                  { type: 'group', value: 'Friends', action: 'allow', order: 1, stanzas: ['message'] },
                ],
              },
            ],
          },
        ]);
        expect(kinds('blocklist')).toEqual([RECORDS[9]]);

        // Merging the same records again: the message whose id was replaced is still recognised.
        const again = await storage.applyUser(ref, { kind: 'user', name: 'alice', password: 'pw', scram: [], extraAttributes: {} }, iterate(RECORDS), {
          mode: 'merge',
          dryRun: false,
          include: ALL,
          createAccount: false,
        });
        expect(again.counts.archive ?? 0).toBe(0);
        expect(again.counts.offline ?? 0).toBe(0);
        let archived = 0;
        for await (const r of storage.readUser(ref, { include: new Set(['archive']) })) if (r.kind === 'archive') archived++;
        expect(archived).toBe(1);
      } finally {
        await storage.close();
      }
    });
  }

  it('a stored value of the wrong type fails the import as invalid data naming its column, and changes nothing', async () => {
    const database = join(dir, 'bad-value.sqlite');
    const db = new Database(database);
    db.exec(readFileSync(join(EJABBERD_SQL_DIR, 'lite.new.sql'), 'utf8'));
    db.close();
    const configPath = join(dir, 'bad-value.json');
    writeFileSync(configPath, JSON.stringify({ dataDir: dir, storage: { type: 'ejabberd-sql', driver: 'sqlite', schema: 'new', database }, hosts: { 'example.org': {} } }));
    const storage = await openStorage(loadConfig({ configPath, env: {}, cwd: dir }));
    const ref = { host: 'example.org', user: 'alice' };
    const account = { kind: 'user' as const, name: 'alice', password: 'pw', scram: [], extraAttributes: {} };
    try {
      await storage.applyUser(ref, account, iterate([RECORDS[9]!]), { mode: 'replace', dryRun: false, include: ALL, createAccount: true });
      // A value no server writes into the boolean column of the block.
      const raw = new Database(database);
      raw.prepare(`UPDATE privacy_list_data SET match_all = 'x'`).run();
      raw.close();
      const blocks = { kind: 'blocklist' as const, items: ['other@example.net'] };
      await expect(storage.applyUser(ref, account, iterate([blocks]), { mode: 'merge', dryRun: false, include: ALL, createAccount: false })).rejects.toMatchObject({
        code: 'invalid-data',
        message: expect.stringMatching(/column privacy_list_data\.match_all holds string "x", not a boolean/) as unknown,
      });
      const check = new Database(database, { readonly: true });
      expect(check.prepare(`SELECT value FROM privacy_list_data`).all()).toEqual([{ value: 'spam@example.net' }]);
      check.close();
    } finally {
      await storage.close();
    }
  });
});
