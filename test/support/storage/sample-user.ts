/**
 * A user with every kind of data, in the canonical form and order ProsodySqlBackend.readUser
 * produces, so that apply → read can be compared with toEqual.
 */
import { DATA_KINDS, NS, element, type ArchiveRecord, type UserRecord, type UserStart } from '../../../src/records/model.js';
import { PROSODY_STORE_NS, parseXmlValue } from '../../../src/storage/prosody/index.js';
import type { ApplyOptions } from '../../../src/storage/backend.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const hexToB64 = (h: string): string => Buffer.from(h, 'hex').toString('base64');

export const HOSTS = { localhost: { passwordHash: 'SHA-1' as const }, 'example.test': { passwordHash: 'SHA-256' as const } };

export const ALICE = { host: 'localhost', user: 'alice' };

export const ALICE_ACCOUNT: UserStart = {
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
  extraAttributes: { [`{${NS.prosodyExtended}}note`]: 'imported' },
};

export function archiveRecord(i: number, extra: Partial<ArchiveRecord> = {}): ArchiveRecord {
  const seconds = 1795367897 + i;
  const outgoing = i % 2 === 0;
  return {
    kind: 'archive',
    id: `msg-${String(i).padStart(6, '0')}`,
    timestamp: new Date(seconds * 1000).toISOString().replace('.000Z', 'Z'),
    with: 'bob@localhost',
    stanza: element(
      'message',
      NS.client,
      outgoing ? { from: 'alice@localhost/phone', to: 'bob@localhost', type: 'chat', id: `m${i}` } : { from: 'bob@localhost/pc', to: 'alice@localhost', type: 'chat', id: `m${i}` },
      [element('body', NS.client, {}, [`message ${i} — 5 < 6 && 'quotes' "too" 🎻`])],
    ),
    ...extra,
  };
}

export const ALICE_RECORDS: readonly UserRecord[] = [
  {
    kind: 'roster',
    version: '5',
    items: [
      { jid: 'bob@localhost', name: 'Bob Example', subscription: 'both', groups: ['Friends', 'Work'] },
      { jid: 'carol@localhost', name: 'Carol 🎻', subscription: 'to', groups: [] },
      { jid: 'dave@example.test', subscription: 'none', approved: true, groups: [] },
      { jid: 'romeo@montague.example', name: 'Romeo', subscription: 'none', ask: 'subscribe', groups: ['Remote'] },
    ],
  },
  { kind: 'pending-subscription', from: 'eve@example.org', payload: [element('nick', 'http://jabber.org/protocol/nick', {}, ['Eve'])] },
  { kind: 'pending-subscription', from: 'zed@example.org', payload: [] },
  {
    kind: 'vcard',
    vcard: element('vCard', NS.vcardTemp, {}, [
      element('FN', NS.vcardTemp, {}, ['Alice Example']),
      element('N', NS.vcardTemp, {}, [element('FAMILY', NS.vcardTemp, {}, ['Example']), element('GIVEN', NS.vcardTemp, {}, ['Alice'])]),
      element('NOTE', NS.vcardTemp, {}, ['line 1\nline 2 <&> \u0009 \u00e9']),
    ]),
  },
  {
    kind: 'private',
    element: element('prefs', 'urn:example:xporta:prefs', { version: '2' }, [element('theme', 'urn:example:xporta:prefs', {}, ['dark'])]),
  },
  { kind: 'private', element: element('roster', 'roster:delimiter', {}, ['::']) },
  {
    kind: 'private',
    element: element('storage', 'storage:bookmarks', {}, [
      element('conference', 'storage:bookmarks', { jid: 'lobby@conference.example.org', name: 'Lobby', autojoin: 'true' }, [
        element('nick', 'storage:bookmarks', {}, ['alice']),
      ]),
    ]),
  },
  {
    kind: 'pep-node',
    node: 'urn:example:xporta:notes',
    config: [
      { var: 'pubsub#title', type: 'text-single', values: ['Notes of Alice Example'] },
      { var: 'pubsub#max_items', type: 'text-single', values: ['10'] },
      { var: 'pubsub#persist_items', type: 'boolean', values: ['1'] },
      { var: 'pubsub#access_model', type: 'list-single', values: ['presence'] },
      { var: 'pubsub#notify_retract', type: 'boolean', values: ['0'] },
    ],
    affiliations: [
      { jid: 'alice@localhost', affiliation: 'owner' },
      { jid: 'bob@localhost', affiliation: 'publisher' },
    ],
    subscriptions: [{ jid: 'bob@localhost', subscription: 'subscribed' }],
  },
  {
    kind: 'pep-node',
    node: 'urn:xmpp:bookmarks:1',
    config: [
      { var: 'pubsub#max_items', type: 'text-single', values: ['max'] },
      { var: 'pubsub#persist_items', type: 'boolean', values: ['1'] },
      { var: 'pubsub#access_model', type: 'list-single', values: ['whitelist'] },
      { var: 'pubsub#send_last_published_item', type: 'list-single', values: ['never'] },
    ],
    affiliations: [{ jid: 'alice@localhost', affiliation: 'owner' }],
    subscriptions: [],
  },
  {
    kind: 'pep-item',
    node: 'urn:example:xporta:notes',
    id: 'note-1',
    payload: element('note', 'urn:example:xporta:notes', {}, ['first']),
    publisher: 'alice@localhost',
    published: '2026-11-22T17:18:17Z',
  },
  {
    kind: 'pep-item',
    node: 'urn:xmpp:bookmarks:1',
    id: 'lobby@conference.example.org',
    payload: parseXmlValue("<conference xmlns='urn:xmpp:bookmarks:1' autojoin='true' name='Lobby (legacy)'><nick>alice</nick></conference>"),
    published: '2026-11-22T17:18:17Z',
  },
  {
    kind: 'pep-item',
    node: 'urn:xmpp:bookmarks:1',
    id: 'xmpp@conference.example.org',
    payload: parseXmlValue(
      "<conference xmlns='urn:xmpp:bookmarks:1' autojoin='true' name='XMPP Standards 💬'><nick>alice</nick><extensions><state xmlns='urn:example:client-state' pinned='true'/></extensions></conference>",
    ),
    publisher: 'alice@localhost',
    published: '2026-11-22T17:18:18Z',
  },
  archiveRecord(1),
  archiveRecord(2),
  archiveRecord(3, { with: 'zoë.o_brien+tag%~@localhost', stanza: element('message', NS.client, { from: 'zoë.o_brien+tag%~@localhost/x', to: 'alice@localhost', 'xml:lang': 'de' }, [element('body', NS.client, {}, ['Grüße'])]) }),
  {
    kind: 'offline',
    timestamp: '2026-11-22T17:18:18Z',
    stanza: element('message', NS.client, { from: 'bob@localhost/pc', to: 'alice@localhost', type: 'chat', id: 'offline-1', 'xml:lang': 'en' }, [
      element('body', NS.client, {}, ['Ελληνικά κείμενα']),
      element('active', 'http://jabber.org/protocol/chatstates'),
    ]),
  },
  { kind: 'blocklist', items: ['spammer@spam.example', 'troll@example.net/phone-0'] },
  {
    kind: 'privacy',
    defaultList: 'work',
    lists: [
      { name: 'invisible', items: [{ action: 'deny', order: 1, stanzas: ['presence-out'] }] },
      {
        name: 'work',
        items: [
          { type: 'group', value: 'Work', action: 'allow', order: 10, stanzas: [] },
          { type: 'jid', value: 'boss@example.org', action: 'deny', order: 20, stanzas: ['message', 'presence-in'] },
        ],
      },
    ],
  },
  {
    kind: 'opaque',
    element: element('store', PROSODY_STORE_NS, { name: 'account_details' }, [
      element('entry', PROSODY_STORE_NS, { key: 'email', type: 'string' }, ['alice@mail.example']),
      element('entry', PROSODY_STORE_NS, { key: 'registered', type: 'number' }, ['1795368035']),
    ]),
  },
  {
    kind: 'opaque',
    element: element('store', PROSODY_STORE_NS, { name: 'archive_prefs' }, [
      element('entry', PROSODY_STORE_NS, { key: 'bob@localhost', type: 'boolean' }, ['true']),
      element('entry', PROSODY_STORE_NS, { type: 'json' }, ['{"__hash":[false,"roster"]}']),
    ]),
  },
];

export const ALL_KINDS = new Set(DATA_KINDS);

export function applyOptions(overrides: Partial<ApplyOptions> = {}): ApplyOptions {
  return { mode: 'replace', dryRun: false, include: ALL_KINDS, createAccount: true, ...overrides };
}

export async function* iterate<T>(items: Iterable<T>): AsyncIterable<T> {
  for (const item of items) yield item;
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}
