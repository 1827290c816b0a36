/**
 * ProsodyFilesBackend against a real Prosody 0.12 with `storage = "internal"`:
 * (a) real clients fill alice's account (test/support/populate.ts), Prosody stops, and xporta
 *     reads from the files exactly what the server stored and served;
 * (b) with Prosody still stopped, xporta imports alice's export as a new account `dave` (SCRAM
 *     credentials only, alice's, so alice's password works), Prosody starts again on the same
 *     data, and a real client logs in as dave and gets everything back from Prosody.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRecordRewriter } from '../../src/jid.js';
import { deriveScramKeys } from '../../src/storage/prosody/index.js';
import { ProsodyFilesBackend } from '../../src/storage/prosody-files/index.js';
import { DATA_KINDS, type UserRecord, type UserStart, type XmlElement } from '../../src/xep0227/model.js';
import { NO_CONVERSION_PROSODY_OPTIONS, NS_PREFS, populateAccount, toModelElement, type PopulateSummary } from '../support/populate.js';
import { describeWithProsody, startProsody, type ProsodyHandle } from '../support/prosody.js';
import { getBlocklist, getPepItems, getPrivate, getRoster, getVCard, loginAs, queryMam, xml, type XmppClient } from '../support/xmpp-client.js';
import { collect, iterate } from './support/sample-user.js';

const ALL = new Set(DATA_KINDS);

type Variant = { readonly passwordHash: 'SHA-1' | 'SHA-256'; readonly conversion: boolean };

// With conversion (the rig's defaults) the vCard and XEP-0049 bookmarks end up in PEP; without, in their own stores.
const VARIANTS: readonly Variant[] = [
  { passwordHash: 'SHA-1', conversion: true },
  { passwordHash: 'SHA-256', conversion: false },
];

function recordsOf<K extends UserRecord['kind']>(records: readonly UserRecord[], kind: K): Extract<UserRecord, { kind: K }>[] {
  return records.filter((r): r is Extract<UserRecord, { kind: K }> => r.kind === kind);
}

const byId = <T extends { id: string }>(a: T, b: T): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

async function filesOf(dir: string, user: string): Promise<string[]> {
  const out: string[] = [];
  for (const store of await readdir(join(dir, 'localhost'))) {
    for (const file of await readdir(join(dir, 'localhost', store))) if (file.startsWith(`${user}.`) || file.includes('~')) out.push(`${store}/${file}`);
  }
  return out.sort();
}

describeWithProsody('ProsodyFilesBackend with a real Prosody (storage = "internal")', () => {
  for (const variant of VARIANTS) {
    describe(`${variant.passwordHash}${variant.conversion ? ', vCard/bookmarks converted to PEP' : ''}`, () => {
      let root: string;
      let prosody: ProsodyHandle | undefined;
      let summary: PopulateSummary;
      let backend: ProsodyFilesBackend;
      let account: UserStart;
      let records: UserRecord[];
      const clients: XmppClient[] = [];
      const prosodyOptions = {
        storage: 'internal' as const,
        passwordHash: variant.passwordHash,
        ...(variant.conversion ? {} : NO_CONVERSION_PROSODY_OPTIONS),
      };

      beforeAll(async () => {
        // Our own directory, so that stop() keeps the data for xporta and for the second start.
        root = await mkdtemp(join(tmpdir(), 'xporta-files-live-'));
        prosody = await startProsody({ ...prosodyOptions, dir: root });
        summary = await populateAccount(prosody, { messages: 24 });
        await prosody.stop();
        prosody = undefined;
        backend = new ProsodyFilesBackend({ path: join(root, 'data'), hosts: { localhost: { passwordHash: variant.passwordHash } } });
        account = (await backend.readAccount({ host: 'localhost', user: 'alice' }))!;
        records = await collect(backend.readUser({ host: 'localhost', user: 'alice' }, { include: ALL }));
      }, 180_000);

      afterAll(async () => {
        await Promise.all(clients.map((c) => c.close()));
        await backend?.close();
        await prosody?.stop();
        if (root && process.env.XPORTA_KEEP_TEST_DATA !== '1') await rm(root, { recursive: true, force: true });
      });

      it('lists the accounts prosodyctl created', async () => {
        expect(await backend.listHosts()).toContain('localhost');
        expect(await collect(backend.listUsers('localhost'))).toEqual(summary.accounts.map((a) => a.user).sort());
      });

      it('reads the credentials Prosody derived from alice’s password', () => {
        expect(account.name).toBe('alice');
        expect(account.password).toBeUndefined();
        expect(account.scram).toHaveLength(1);
        const [scram] = account.scram;
        expect(scram?.mechanism).toBe(`SCRAM-${variant.passwordHash}`);
        expect(scram?.iterationCount).toBe(10000);
        const salt = Buffer.from(scram!.salt, 'base64').toString('utf8');
        expect(salt).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
        const keys = deriveScramKeys(summary.alice.password, variant.passwordHash, salt, 10000)!;
        expect(Buffer.from(scram!.storedKey, 'base64').toString('hex')).toBe(keys.get('stored_key'));
        expect(Buffer.from(scram!.serverKey, 'base64').toString('hex')).toBe(keys.get('server_key'));
      });

      it('reads the roster, its version and the pending subscription', () => {
        const [roster, ...more] = recordsOf(records, 'roster');
        expect(more).toEqual([]);
        expect(roster?.version).toBe(summary.roster.version);
        expect(roster?.items).toEqual(summary.roster.items);
        expect(recordsOf(records, 'pending-subscription').map(({ from, payload }) => ({ from, payload }))).toEqual(summary.pendingSubscriptions);
      });

      it('reads the vCard and private XML where the server kept them', () => {
        const vcards = recordsOf(records, 'vcard');
        if (summary.vcard.storedAs === 'vcard') expect(vcards.map((v) => v.vcard)).toEqual([summary.vcard.element]);
        else expect(vcards).toEqual([]);
        expect(recordsOf(records, 'private').map((p) => p.element)).toEqual(summary.private);
      });

      it('reads every PEP node with its configuration, affiliations, subscribers and items', () => {
        const nodes = recordsOf(records, 'pep-node');
        expect(nodes.map((n) => n.node)).toEqual(summary.pep.map((n) => n.node));
        const items = recordsOf(records, 'pep-item');
        for (const expected of summary.pep) {
          const node = nodes.find((n) => n.node === expected.node)!;
          const config = Object.fromEntries(node.config.map((f) => [f.var, f.values.join(' ')]));
          expect(config, expected.node).toMatchObject(expected.config);
          expect(Object.fromEntries(node.affiliations.map((a) => [a.jid, a.affiliation])), expected.node).toEqual(expected.affiliations);
          expect(node.subscriptions.map((s) => s.jid)).toEqual(expected.subscribers);
          const nodeItems = items.filter((i) => i.node === expected.node).sort(byId);
          expect(nodeItems.map(({ id, payload }) => ({ id, payload })), expected.node).toEqual(expected.items);
          for (const item of nodeItems) expect(item.published).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
        }
      });

      it('reads the archive as MAM served it: same ids (util.id.medium), times, peers and messages', () => {
        const archive = recordsOf(records, 'archive');
        expect(archive.map(({ id, timestamp, with: peer, stanza }) => ({ id, timestamp, with: peer, stanza }))).toEqual(
          summary.archive.messages.map(({ id, timestamp, with: peer, stanza }) => ({ id, timestamp, with: peer, stanza })),
        );
        for (const record of archive) expect(record.id).toMatch(/^[A-Za-z0-9_-]{24}$/);
      });

      it('reads offline messages and the blocklist', () => {
        const offline = recordsOf(records, 'offline');
        expect(offline.map((o) => ({ messageId: o.stanza.attrs.id, from: o.stanza.attrs.from?.split('/')[0], to: o.stanza.attrs.to, body: bodyOf(o.stanza) }))).toEqual(
          summary.offline,
        );
        expect(recordsOf(records, 'blocklist').map((b) => b.items)).toEqual([summary.blocklist]);
      });

      it('imports alice’s export as a new account while Prosody is stopped; a real client then finds it complete', async () => {
        const rewrite = createRecordRewriter('alice@localhost', 'dave@localhost');
        const daveRecords = records.map(rewrite).map(sortedNode);
        const dave = { host: 'localhost', user: 'dave' };
        const report = await backend.applyUser(dave, { kind: 'user', name: 'dave', scram: account.scram, extraAttributes: {} }, iterate(daveRecords), {
          mode: 'replace',
          dryRun: false,
          include: ALL,
          createAccount: true,
        });
        expect(report).toMatchObject({ created: true, warnings: [], skipped: [] });
        expect(await collect(backend.readUser(dave, { include: ALL }))).toEqual(daveRecords);
        const files = await filesOf(join(root, 'data'), 'dave');
        expect(files).toContain('accounts/dave.dat');
        expect(files).toContain('archive/dave.list');
        expect(files.filter((f) => f.includes('~'))).toEqual([]);

        prosody = await startProsody({ ...prosodyOptions, dir: root });
        // alice's SCRAM keys, so alice's password.
        const client = await loginAs(prosody, 'dave', summary.alice.password, { resource: 'check' });
        clients.push(client);
        const roster = (await getRoster(client)).map((i) => ({ ...i, groups: [...i.groups].sort() })).sort((a, b) => (a.jid < b.jid ? -1 : 1));
        expect(roster).toEqual(summary.roster.items);

        const vcard = await getVCard(client);
        if (summary.vcard.storedAs === 'vcard') expect(vcard && toModelElement(vcard)).toEqual(summary.vcard.element);
        else expect(vcard?.getChildText('FN')).toBe('Alice Example');
        const prefs = summary.private.find((p) => p.xmlns === NS_PREFS)!;
        const gotPrefs = await getPrivate(client, 'prefs', NS_PREFS);
        expect(gotPrefs && toModelElement(gotPrefs, 'jabber:iq:private')).toEqual(prefs);

        for (const node of summary.pep.filter((n) => n.items.length > 0)) {
          const got = (await getPepItems(client, undefined, node.node)).map((i) => ({ id: i.id, payload: i.payload && toModelElement(i.payload) })).sort(byId);
          expect(got, node.node).toEqual(node.items);
        }
        expect((await getBlocklist(client)).sort()).toEqual(summary.blocklist);

        // Going online delivers the offline messages (before any MAM query) and repeats the unanswered subscription request.
        const offlineBodies = summary.offline.map((o) => o.body);
        const delivered = offlineBodies.map((body) => client.waitFor((s) => s.name === 'message' && s.getChildText('body') === body, 10_000));
        const request = client.waitFor((s) => s.name === 'presence' && s.attrs.type === 'subscribe', 10_000);
        await client.send(xml('presence'));
        for (const message of await Promise.all(delivered)) expect(message.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp).toMatch(/Z$/);
        const presence = await request;
        expect(presence.attrs.from).toBe(summary.pendingSubscriptions[0]?.from);
        expect(presence.getChildText('nick', 'http://jabber.org/protocol/nick')).toBe('Carol');

        const mam = await queryMam(client);
        expect(mam.map((m) => ({ id: m.id, timestamp: m.stamp, body: m.message.getChildText('body') }))).toEqual(
          summary.archive.messages.map((m) => ({ id: m.id, timestamp: m.timestamp, body: m.body })),
        );
      });
    });
  }
});

/** A renamed JID may sort elsewhere: the order readUser gives is by JID. */
function sortedNode(record: UserRecord): UserRecord {
  if (record.kind !== 'pep-node') return record;
  const byJid = <T extends { jid: string }>(a: T, b: T): number => (a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0);
  return { ...record, affiliations: [...record.affiliations].sort(byJid), subscriptions: [...record.subscriptions].sort(byJid) };
}

function bodyOf(stanza: XmlElement): string | undefined {
  const body = stanza.children.find((c): c is XmlElement => typeof c !== 'string' && c.name === 'body');
  return body?.children.filter((c): c is string => typeof c === 'string').join('');
}
