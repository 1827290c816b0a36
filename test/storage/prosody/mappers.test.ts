import { describe, expect, it } from 'vitest';
import { NS, element, type UserStart, type XmlElement } from '../../../src/records/model.js';
import {
  LuaTable,
  PASSWORD_RESET_WARNING,
  PROSODY_STORE_NS,
  accountFromStore,
  accountToStore,
  archiveItemFromElement,
  archiveItemFromRecord,
  archiveItemToElement,
  archiveRecordFromItem,
  blocklistFromStore,
  blocklistToStore,
  deriveScramKeys,
  deserializeValue,
  mergeKeyval,
  offlineItemFromRecord,
  offlineRecordFromItem,
  parseXmlValue,
  pendingToStore,
  pepItemFromArchive,
  pepItemToArchive,
  pepNodeFromStore,
  pepNodeToStore,
  privacyFromStore,
  privacyToStore,
  privateFromStore,
  privateToStore,
  rosterFromStore,
  rosterItemToStore,
  saslprep,
  storeFromElement,
  storeToElement,
  vcardFromStore,
  vcardToStore,
  type ArchiveItem,
  secondsToIso,
} from '../../../src/storage/prosody/index.js';
import type { SkippedItem } from '../../../src/storage/backend.js';
import * as F from '../../support/storage/prosody-rows.js';
import { comparable } from '../../support/storage/compare.js';

function table(rows: readonly F.Row[]): LuaTable {
  return mergeKeyval(rows.map((r) => ({ key: r.key, value: deserializeValue(r.type, r.value) })));
}

function item(r: F.ArchiveRowFixture): ArchiveItem {
  return { key: r.key, when: r.when, with: r.with, value: deserializeValue(r.type, r.value) };
}

const EXT = (key: string): string => `{${NS.prosodyExtended}}${key}`;
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const hexToB64 = (h: string): string => Buffer.from(h, 'hex').toString('base64');

describe('accounts', () => {
  const alice = table(F.ACCOUNT_ROWS);
  const aliceStart: UserStart = {
    kind: 'user',
    name: 'alice',
    scram: [
      {
        mechanism: 'SCRAM-SHA-1',
        iterationCount: 10000,
        salt: b64('6cf4cfa7-482c-4c64-9e96-7b6ffb6491eb'),
        storedKey: hexToB64('38109662643b9b5e5fb2eb6e4fcae115040308cb'),
        serverKey: hexToB64('76c36e4ae845ed36fe609a0ef5bbb63b39374570'),
      },
    ],
    extraAttributes: {},
  };

  it('reads hex keys as base64, the UUID salt as its UTF-8 bytes, the mechanism from the key length', () => {
    expect(accountFromStore('alice', alice)).toEqual(aliceStart);
    const sha256 = LuaTable.of({ ...Object.fromEntries(alice.hash), stored_key: 'ab'.repeat(32), server_key: 'cd'.repeat(32) });
    expect(accountFromStore('alice', sha256).scram[0]?.mechanism).toBe('SCRAM-SHA-256');
  });

  it('keeps other keys as attributes in Prosody’s extended namespace, and a plain password', () => {
    const plain = LuaTable.of({ password: 'secret', updated: 1795368035, note: 'x' });
    expect(accountFromStore('bob', plain)).toEqual({ kind: 'user', name: 'bob', password: 'secret', scram: [], extraAttributes: { [EXT('updated')]: '1795368035', [EXT('note')]: 'x' } });
  });

  it('stores a SCRAM set of the host’s mechanism exactly as it was', () => {
    const result = accountToStore(aliceStart, { passwordHash: 'SHA-1' }, { applyCredentials: true, mode: 'replace' });
    expect(comparable(result.data)).toEqual(comparable(alice));
    expect(result.warnings).toEqual([]);
    expect(result.credentialsApplied).toBe(true);
  });

  it('skips a SCRAM set of another mechanism with a warning, and locks a new account', () => {
    const result = accountToStore(aliceStart, { passwordHash: 'SHA-256' }, { applyCredentials: true, mode: 'replace' });
    expect(result.skipped).toEqual([{ kind: 'credentials', reason: 'this host uses SCRAM-SHA-256', detail: 'SCRAM-SHA-1' }]);
    expect(result.warnings).toHaveLength(1);
    expect(result.warnings[0]).toContain(PASSWORD_RESET_WARNING);
    expect(result.credentialsApplied).toBe(false);
    // Still an account Prosody sees (it has rows), with SHA-256 keys nobody knows the password of.
    expect((result.data.get('stored_key') as string).length).toBe(64);
  });

  it('keeps an existing account’s credentials when the document has none usable', () => {
    const existing = LuaTable.of({ stored_key: 'aa', server_key: 'bb', salt: 's', iteration_count: 4096 });
    const result = accountToStore(aliceStart, { passwordHash: 'SHA-256' }, { existing, applyCredentials: true, mode: 'replace' });
    expect(comparable(result.data)).toEqual(comparable(existing));
    expect(result.warnings).toEqual(['the existing credentials were kept: the document has no credentials this host can use']);
  });

  it('derives the host’s SCRAM keys from a plain password as mod_auth_internal_hashed does', () => {
    // Computed by Prosody's util.sasl.scram for "pencil ünï<NBSP>x" (SASLprep maps NBSP to a space).
    const salt = '6cf4cfa7-482c-4c64-9e96-7b6ffb6491eb';
    expect(comparable(deriveScramKeys('pencil ünï\u00a0x', 'SHA-1', salt)!)).toEqual(
      comparable(LuaTable.of({ stored_key: '07a96218de091ae73d8f177a7e990c2723d107b6', server_key: '5811608dafc149094134ada354c2c35a53e8ab5e', salt, iteration_count: 10000 })),
    );
    expect(deriveScramKeys('pencil ünï\u00a0x', 'SHA-256', salt)!.get('stored_key')).toBe('b70b264a3e469c4c7f18a0d3ff9c7d185ea7907d27c322572248a4d9c59392e7');
    const result = accountToStore({ ...aliceStart, password: 'pencil' }, { passwordHash: 'SHA-256' }, { applyCredentials: true, mode: 'replace' });
    expect(result.warnings).toEqual([]);
    expect(result.data.get('iteration_count')).toBe(10000);
    expect(result.data.get('salt')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('stores the plain password on a plain host, skipping SCRAM sets', () => {
    const result = accountToStore({ ...aliceStart, password: 'pencil' }, { passwordHash: 'plain' }, { applyCredentials: true, mode: 'replace' });
    expect(comparable(result.data)).toEqual(comparable(LuaTable.of({ password: 'pencil' })));
    expect(result.skipped).toHaveLength(1);
  });

  it('writes extended-namespace attributes back as account keys, never over credentials', () => {
    const start: UserStart = { ...aliceStart, extraAttributes: { [EXT('note')]: 'x', [EXT('salt')]: 'evil', '{urn:other}y': 'z' } };
    const data = accountToStore(start, { passwordHash: 'SHA-1' }, { applyCredentials: true, mode: 'replace' }).data;
    expect(data.get('note')).toBe('x');
    expect(data.get('salt')).toBe('6cf4cfa7-482c-4c64-9e96-7b6ffb6491eb');
    expect(data.get('y')).toBeUndefined();
  });

  it('implements SASLprep as libidn does for Prosody', () => {
    // Values printed by Prosody's util.encodings.stringprep.saslprep.
    expect(saslprep('a\u00a0b\u00adc')).toBe('a bc');
    expect(saslprep('I\u00adX')).toBe('IX');
    expect(saslprep('\u2168')).toBe('IX');
    expect(saslprep('\u0007')).toBeUndefined();
    // RFC 3454 §6: right-to-left and left-to-right letters mixed, or RTL not at both ends; Prosody refuses all three.
    expect(saslprep('\u05d0a')).toBeUndefined();
    expect(saslprep('a\u0627')).toBeUndefined();
    expect(saslprep('\u06271')).toBeUndefined();
    expect(saslprep('\u0627 1 \u0628')).toBe('\u0627 1 \u0628');
    expect(saslprep('\u05d0\u05d1\u05d2')).toBe('\u05d0\u05d1\u05d2');
    // Unassigned in Unicode 3.2, allowed as Prosody does (not strict).
    expect(saslprep('\u0221x')).toBe('\u0221x');
    expect(saslprep('\ufb01 ligature')).toBe('fi ligature');
  });
});

describe('roster', () => {
  it('reads contacts with groups, ask, approved, and sorts them', () => {
    const { roster, pending } = rosterFromStore(table(F.ALICE_ROSTER_ROWS), 'alice@localhost');
    expect(pending).toEqual([]);
    expect(roster).toEqual({
      kind: 'roster',
      items: [
        { jid: 'bob@localhost', name: 'Bob Example', subscription: 'both', groups: ['Friends'] },
        { jid: 'carol@localhost', name: 'Carol 🎻', subscription: 'to', groups: ['Work'] },
        { jid: 'romeo@montague.example', name: 'Romeo', subscription: 'none', ask: 'subscribe', groups: ['Remote'] },
      ],
    });
  });

  it('reads the version and pending requests (with their payload) from the false key', () => {
    const { roster, pending } = rosterFromStore(table(F.CAROL_ROSTER_ROWS), 'carol@localhost');
    expect(roster.version).toBe('5');
    expect(roster.items.find((i) => i.jid === 'alice@example.test')).toEqual({ jid: 'alice@example.test', subscription: 'none', approved: true, groups: [] });
    expect(pending).toEqual([{ kind: 'pending-subscription', from: 'bob@localhost', payload: [element('nick', 'http://jabber.org/protocol/nick', {}, ['Bob Example'])] }]);
  });

  it('writes each contact as rostermanager does', () => {
    const data = table([...F.ALICE_ROSTER_ROWS, ...F.CAROL_ROSTER_ROWS.filter((r) => r.key !== '')]);
    for (const r of [...F.ALICE_ROSTER_ROWS, ...F.CAROL_ROSTER_ROWS.filter((r) => r.key !== '')]) {
      const { roster } = rosterFromStore(data, 'nobody@localhost');
      const written = rosterItemToStore(roster.items.find((i) => i.jid === r.key)!);
      expect(comparable(written!)).toEqual(comparable(deserializeValue(r.type, r.value)));
    }
    expect(rosterItemToStore({ jid: 'x@y', subscription: 'remove', groups: [] })).toBeUndefined();
  });

  it('writes a pending request as the subscribe presence', () => {
    const stored = pendingToStore({ kind: 'pending-subscription', from: 'bob@localhost', payload: [element('nick', 'http://jabber.org/protocol/nick', {}, ['Bob'])] }, 'carol@localhost');
    expect(stored.get('name')).toBe('presence');
    expect(comparable(stored.get('attr')!)).toEqual(comparable(LuaTable.of({ from: 'bob@localhost', to: 'carol@localhost', type: 'subscribe' })));
  });
});

describe('vcard, private', () => {
  it('reads the vCard from its keyval rows and writes the same table', () => {
    const data = table(F.VCARD_ROWS);
    const record = vcardFromStore(data);
    expect(record.vcard.name).toBe('vCard');
    expect(record.vcard.children[0]).toEqual(element('FN', NS.vcardTemp, {}, ['Alice Example']));
    expect(comparable(vcardToStore(record))).toEqual(comparable(data));
  });

  it.each(F.PRIVATE_ROWS.map((r) => [r.key, r]))('reads and writes the private entry %s', (_key, r) => {
    const record = privateFromStore(r.key, deserializeValue(r.type, r.value))!;
    expect(`${record.element.name}:${record.element.xmlns}`).toBe(r.key);
    const written = privateToStore(record)!;
    expect(written.key).toBe(r.key);
    expect(comparable(written.value)).toEqual(comparable(deserializeValue(r.type, r.value)));
  });

  it('stores nothing for an element without children, as mod_private does', () => {
    expect(privateToStore({ kind: 'private', element: element('x', 'urn:x') })).toBeUndefined();
  });
});

describe('pep', () => {
  const nodes = Object.fromEntries(F.PEP_ROWS.map((r) => [r.key, deserializeValue(r.type, r.value)]));

  it('maps config keys to node_config form vars, in form order, with Prosody’s boolean and number rendering', () => {
    expect(pepNodeFromStore('urn:example:xporta:notes', nodes['urn:example:xporta:notes']!)).toEqual({
      kind: 'pep-node',
      node: 'urn:example:xporta:notes',
      config: [
        { var: 'pubsub#title', type: 'text-single', values: ['Notes of Alice Example'] },
        { var: 'pubsub#description', type: 'text-single', values: ['Custom node with a config form'] },
        { var: 'pubsub#type', type: 'text-single', values: ['urn:example:xporta:notes'] },
        { var: 'pubsub#max_items', type: 'text-single', values: ['10'] },
        { var: 'pubsub#persist_items', type: 'boolean', values: ['1'] },
        { var: 'pubsub#access_model', type: 'list-single', values: ['presence'] },
        { var: 'pubsub#publish_model', type: 'list-single', values: ['publishers'] },
        { var: 'pubsub#send_last_published_item', type: 'list-single', values: ['on_sub_and_presence'] },
        { var: 'pubsub#notify_retract', type: 'boolean', values: ['0'] },
      ],
      affiliations: [
        { jid: 'alice@localhost', affiliation: 'owner' },
        { jid: 'bob@localhost', affiliation: 'publisher' },
      ],
      subscriptions: [{ jid: 'bob@localhost', subscription: 'subscribed' }],
    });
  });

  it.each(['urn:example:xporta:notes', 'urn:xmpp:bookmarks:1'])('writes the node record %s back as it was', (node) => {
    const skipped: SkippedItem[] = [];
    expect(comparable(pepNodeToStore(pepNodeFromStore(node, nodes[node]!), skipped))).toEqual(comparable(nodes[node]!));
    expect(skipped).toEqual([]);
  });

  it('leaves _defaults_only out: it is not configuration', () => {
    const record = pepNodeFromStore('urn:xmpp:avatar:data', nodes['urn:xmpp:avatar:data']!);
    expect(record.config).toEqual([{ var: 'pubsub#access_model', type: 'list-single', values: ['open'] }]);
    expect(record.affiliations).toEqual([]);
  });

  it('coerces form values and refuses what Prosody’s PEP cannot hold', () => {
    const skipped: SkippedItem[] = [];
    const stored = pepNodeToStore(
      {
        kind: 'pep-node',
        node: 'n',
        config: [
          { var: 'FORM_TYPE', values: ['http://jabber.org/protocol/pubsub#node_config'] },
          { var: 'pubsub#max_items', values: ['max'] },
          { var: 'pubsub#deliver_payloads', values: ['false'] },
          { var: 'pubsub#access_model', values: ['roster'] },
          { var: 'pubsub#itemreply', values: ['owner'] },
          { var: 'x-custom', values: ['1'] },
          // Empty fields hold nothing to lose: not reported.
          { var: 'x-empty', values: [''] },
          { var: 'pubsub#notify_sub', type: 'boolean', values: [''] },
        ],
        affiliations: [{ jid: 'a@b', affiliation: 'none' }],
        subscriptions: [{ jid: 'c@d', subscription: 'pending' }],
      },
      skipped,
    );
    const config = stored.get('config') as LuaTable;
    expect(config.get('max_items')).toBe('max');
    expect(config.get('include_payload')).toBe(false);
    expect(config.get('access_model')).toBe('whitelist');
    expect(config.get('itemreply')).toBe('owner');
    expect((stored.get('affiliations') as LuaTable).isEmpty).toBe(true);
    expect(skipped.map((s) => s.reason)).toEqual([
      'access model roster is not supported by Prosody 0.12 PEP; whitelist used',
      'not a pubsub node option',
      'Prosody has no pending subscriptions',
    ]);
  });

  it('reads items with id, publisher and publish time, and writes the same archive item', () => {
    const [lobby, xmpp] = F.PEP_ITEM_ROWS;
    const record = pepItemFromArchive('urn:xmpp:bookmarks:1', item(xmpp!));
    expect(record).toEqual({
      kind: 'pep-item',
      node: 'urn:xmpp:bookmarks:1',
      id: 'xmpp@conference.example.org',
      payload: parseXmlValue(xmpp!.value),
      publisher: 'alice@localhost',
      published: '2026-11-22T17:18:17Z',
    });
    expect(pepItemToArchive(record)).toEqual(item(xmpp!));
    // Published by the server: no publisher.
    expect(pepItemFromArchive('urn:xmpp:bookmarks:1', item(lobby!)).publisher).toBeUndefined();
    expect(pepItemToArchive({ ...record, payload: null })).toBe('Prosody stores no item without a payload');
  });
});

describe('archive, offline', () => {
  it('reads MAM rows with id, time and with', () => {
    const [first, second] = F.ARCHIVE_ROWS;
    const record = archiveRecordFromItem(item(first!), 'alice@localhost')!;
    expect(record).toEqual({ kind: 'archive', id: first!.key, timestamp: '2026-11-22T17:18:17Z', with: 'bob@localhost', stanza: parseXmlValue(first!.value) });
    expect(archiveRecordFromItem(item(second!), 'alice@localhost')!.with).toBe('zoë.o_brien+tag%~@localhost');
    expect(archiveItemFromRecord(record, 'alice@localhost')).toEqual(item(first!));
  });

  it('computes with as mod_mam does when the source did not say, and drops the owner’s stanza-id', () => {
    const incoming = parseXmlValue("<message from='bob@localhost/x' to='alice@localhost'><body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='alice@localhost' id='1'/><stanza-id xmlns='urn:xmpp:sid:0' by='room@muc' id='2'/></message>");
    const stored = archiveItemFromRecord({ kind: 'archive', id: 'k', timestamp: '2026-11-22T17:18:17.789+01:00', stanza: incoming }, 'alice@localhost');
    expect(stored).toMatchObject({ key: 'k', when: 1795364297, with: 'bob@localhost' });
    expect((stored as ArchiveItem).value).toEqual(
      parseXmlValue("<message from='bob@localhost/x' to='alice@localhost'><body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='room@muc' id='2'/></message>"),
    );
    const outgoing = archiveRecordFromItem({ key: 'k', when: 1, with: '', value: parseXmlValue("<message from='alice@localhost/x' to='carol@localhost/y'/>") }, 'alice@localhost');
    expect(outgoing?.with).toBe('carol@localhost');
    expect(archiveItemFromRecord({ kind: 'archive', id: 'k', timestamp: 'yesterday', stanza: incoming }, 'alice@localhost')).toMatch(/invalid timestamp/);
  });

  it('reads offline messages whole, with the time they were stored', () => {
    const r = F.OFFLINE_ROWS[0]!;
    const record = offlineRecordFromItem(item(r))!;
    expect(record).toEqual({ kind: 'offline', timestamp: '2026-11-22T17:18:18Z', stanza: parseXmlValue(r.value) });
    expect(offlineItemFromRecord(record, 'alice@localhost')).toMatchObject({ when: r.when, with: '', value: parseXmlValue(r.value) });
    const delayed = element('message', NS.client, {}, [element('delay', NS.delay, { stamp: '2026-11-22T17:18:18Z' })]);
    expect(offlineItemFromRecord({ kind: 'offline', stanza: delayed }, 'alice@localhost')).toMatchObject({ when: r.when });
  });

  it("stores an offline message as mod_offline does: without the delay it adds on delivery, nor ejabberd's archive marks", () => {
    const fromEjabberd = parseXmlValue(
      "<message xmlns='jabber:client' to='alice@localhost' from='bob@localhost/x' type='chat'>" +
        "<archived xmlns='urn:xmpp:mam:tmp' by='alice@localhost' id='1795460737428233'/>" +
        "<stanza-id xmlns='urn:xmpp:sid:0' by='alice@localhost' id='1795460737428233'/>" +
        "<stanza-id xmlns='urn:xmpp:sid:0' by='room@muc.localhost' id='7'/>" +
        "<delay xmlns='urn:xmpp:delay' from='elsewhere' stamp='2026-11-23T19:00:00Z'/>" +
        "<delay xmlns='urn:xmpp:delay' from='localhost' stamp='2026-11-23T19:05:37.461587Z'>Offline Storage</delay><body>hello alice</body></message>",
    ) as XmlElement;
    const stored = offlineItemFromRecord({ kind: 'offline', timestamp: '2026-11-23T19:05:37.461587Z', stanza: fromEjabberd }, 'alice@localhost') as ArchiveItem;
    expect(stored.when).toBe(Date.UTC(2026, 10, 23, 19, 5, 37) / 1000);
    expect(stored.value).toEqual(
      parseXmlValue(
        "<message xmlns='jabber:client' to='alice@localhost' from='bob@localhost/x' type='chat'>" +
          "<stanza-id xmlns='urn:xmpp:sid:0' by='room@muc.localhost' id='7'/>" +
          "<delay xmlns='urn:xmpp:delay' from='elsewhere' stamp='2026-11-23T19:00:00Z'/><body>hello alice</body></message>",
      ),
    );
    // Prosody's own offline messages carry mod_mam's stanza-id alone: kept.
    const fromProsody = parseXmlValue(
      "<message xmlns='jabber:client' to='alice@localhost'><body>hi</body><stanza-id xmlns='urn:xmpp:sid:0' by='alice@localhost' id='8b3f355e'/></message>",
    ) as XmlElement;
    expect((offlineItemFromRecord({ kind: 'offline', timestamp: '2026-11-23T19:05:37Z', stanza: fromProsody }, 'alice@localhost') as ArchiveItem).value).toEqual(fromProsody);
  });
});

describe('blocklist, privacy', () => {
  it('reads blocked JIDs, sorted, without the metadata', () => {
    expect(blocklistFromStore(table(F.BLOCKLIST_ROWS))).toEqual({ kind: 'blocklist', items: ['spammer@spam.example', 'troll@example.net/phone-0'] });
  });

  it('writes new JIDs with the current time, keeping existing ones and the creation time', () => {
    const existing = table(F.BLOCKLIST_ROWS);
    const stored = blocklistToStore({ kind: 'blocklist', items: ['spammer@spam.example', 'new@example.org'] }, 1795400000, existing);
    expect(stored.get('spammer@spam.example')).toBe(1795367897);
    expect(stored.get('troll@example.net/phone-0')).toBe(1795367897);
    expect(stored.get('new@example.org')).toBe(1795400000);
    expect(comparable(stored.get(false)!)).toEqual(comparable(LuaTable.of({ created: 1795367896, modified: 1795400000 })));
    const fresh = blocklistToStore({ kind: 'blocklist', items: [] }, 5);
    expect(comparable(fresh)).toEqual(comparable(new LuaTable().set(false, LuaTable.of({ created: 5 }))));
  });

  it('reads and writes privacy lists as mod_privacy_lists stores them', () => {
    const data = table(F.PRIVACY_ROWS);
    const record = privacyFromStore(data);
    expect(record).toEqual({
      kind: 'privacy',
      defaultList: 'work',
      lists: [
        { name: 'invisible', items: [{ action: 'deny', order: 1, stanzas: ['presence-out'] }] },
        {
          name: 'work',
          items: [
            { type: 'group', value: 'Work', action: 'allow', order: 10, stanzas: [] },
            { action: 'deny', order: 20, stanzas: ['message', 'presence-in'] },
          ],
        },
      ],
    });
    expect(comparable(privacyToStore(record))).toEqual(comparable(data));
  });
});

describe('opaque stores', () => {
  it('keeps account_details as typed entries', () => {
    const data = table(F.ACCOUNT_DETAILS_ROWS);
    const el = storeToElement('account_details', data);
    expect(el.xmlns).toBe(PROSODY_STORE_NS);
    expect(el.children).toContainEqual(element('entry', PROSODY_STORE_NS, { key: 'registered', type: 'number' }, ['1795368035']));
    const back = storeFromElement(el);
    expect(back.store).toBe('account_details');
    expect(comparable(back.data)).toEqual(comparable(data));
  });

  it('keeps archive_prefs, whose default sits under the false key', () => {
    const data = table(F.ARCHIVE_PREFS_ROWS);
    const el = storeToElement('archive_prefs', data);
    expect(el.children).toContainEqual(element('entry', PROSODY_STORE_NS, { type: 'json' }, ['{"__hash":[false,true]}']));
    expect(comparable(storeFromElement(el).data)).toEqual(comparable(data));
  });

  it('keeps archive items with their stanza as an element', () => {
    const it0 = item(F.ARCHIVE_ROWS[0]!);
    const el = archiveItemToElement('muc_log', it0);
    expect(el.children[0]).toEqual(it0.value);
    expect(archiveItemFromElement(el)).toEqual({ store: 'muc_log', item: it0 });
  });
});

describe('secondsToIso', () => {
  it('formats as Date does, without a fraction for whole seconds', () => {
    const samples = [0, 59, 86_399, 86_400, 951_782_400, 1_700_000_000, 1_700_000_061, 4_102_444_799, 253_402_300_799];
    for (let i = 0; i < 2000; i++) samples.push(Math.floor(Math.random() * 253_402_300_800));
    for (const seconds of samples) {
      expect(secondsToIso(seconds), String(seconds)).toBe(new Date(seconds * 1000).toISOString().replace('.000Z', 'Z'));
    }
  });

  it('keeps a fraction when the stored time has one, and handles times outside 1970–9999', () => {
    expect(secondsToIso(1_700_000_000.25)).toBe('2023-11-14T22:13:20.250000Z');
    expect(secondsToIso(-1)).toBe('1969-12-31T23:59:59.000Z');
  });
});
