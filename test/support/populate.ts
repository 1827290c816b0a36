/**
 * Fills a running rig Prosody with a realistic account, `alice`, using real clients only, so
 * that every store holds what Prosody itself writes rather than rows we guessed at. Other
 * accounts (`bob`, `carol`) exist because alice needs contacts, a correspondent and a pending
 * subscriber.
 *
 * The returned summary says what the *server* ended up storing for alice, not merely what was
 * sent: where a module rewrites data on the way in (mod_vcard_legacy turns vCard-temp into PEP,
 * mod_bookmarks turns XEP-0049 bookmarks into XEP-0402 items) the summary follows the server,
 * and roster, blocklist, PEP items and the archive are read back and checked before returning.
 */
import { createHash } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import type { PubsubAffiliation, XmlElement, XmlNode } from '../../src/records/model.js';
import { createUser, type ProsodyHandle } from './prosody.js';
import {
  NS,
  approveSubscription,
  block,
  getBlocklist,
  getPepItems,
  getRoster,
  loginAs,
  publishPep,
  queryMam,
  sendMessage,
  setPrivate,
  setRosterItem,
  setVCard,
  subscribe,
  xml,
  type XmlElement as LtxElement,
  type XmppClient,
} from './xmpp-client.js';

// ---------------------------------------------------------------------------------------------
// Public types

export interface PopulateOptions {
  /** VirtualHost of all accounts. Default: the rig's first host. */
  readonly host?: string;
  /** Chat messages alice and bob exchange, alternating, alice first. Default 200. */
  readonly messages?: number;
  /** Register the accounts with prosodyctl first. Default true; false if they already exist with these passwords. */
  readonly createAccounts?: boolean;
  readonly passwords?: Readonly<Partial<Record<PopulatedUser, string>>>;
}

export type PopulatedUser = 'alice' | 'bob' | 'carol';

export interface PopulatedAccount {
  readonly user: PopulatedUser;
  readonly jid: string;
  readonly password: string;
}

/** Which of the server's conversion modules were active, as alice's account disco#info said. */
export interface PopulateProfile {
  /** mod_vcard_legacy: the vCard-temp was stored as PEP `urn:xmpp:vcard4` (+ avatar), not in `vcard`. */
  readonly vcardInPep: boolean;
  /** mod_bookmarks: XEP-0049 bookmarks were turned into `urn:xmpp:bookmarks:1` items, not kept in `private`. */
  readonly privateBookmarksInPep: boolean;
}

export interface PopulatedRosterItem {
  readonly jid: string;
  readonly name?: string;
  readonly subscription: 'none' | 'to' | 'from' | 'both';
  readonly ask?: 'subscribe';
  readonly groups: readonly string[];
}

export interface PopulatedPepItem {
  readonly id: string;
  readonly payload: XmlElement;
}

export interface PopulatedPepNode {
  readonly node: string;
  /** Who made the node: populate itself or a module reacting to something it did. */
  readonly createdBy: 'populate' | 'mod_bookmarks' | 'mod_vcard_legacy';
  /**
   * Node configuration fields (node_config form vars) and the values the server stores for
   * them, booleans as XEP-0004 `1`/`0`. Only what populate or the creating module chose: the
   * stored config has more.
   */
  readonly config: Readonly<Record<string, string>>;
  readonly affiliations: Readonly<Record<string, PubsubAffiliation>>;
  /** Bare JIDs with an explicit subscription. */
  readonly subscribers: readonly string[];
  /** As the server returned them to the owner; no order is implied. */
  readonly items: readonly PopulatedPepItem[];
}

export interface PopulatedArchiveMessage {
  /** The archive id (MAM result id, Prosody's `key`). */
  readonly id: string;
  /** The archive time as MAM reported it (XEP-0082, whole seconds, `Z`). */
  readonly timestamp: string;
  /** Bare JID of the other party. */
  readonly with: string;
  readonly direction: 'in' | 'out';
  /** The `id` attribute the sender gave the message. */
  readonly messageId: string;
  readonly body: string;
  /** The archived message as MAM returned it (`jabber:client`). */
  readonly stanza: XmlElement;
  /** False for the offline messages, which mod_mam archives as well. */
  readonly exchanged: boolean;
}

export interface PopulatedOfflineMessage {
  readonly messageId: string;
  readonly from: string;
  readonly to: string;
  readonly body: string;
}

export interface PopulateSummary {
  readonly host: string;
  readonly accounts: readonly PopulatedAccount[];
  readonly alice: PopulatedAccount;
  readonly profile: PopulateProfile;
  readonly roster: {
    /** RFC 6121 roster version the server reported, if it did. */
    readonly version?: string;
    /** Sorted by JID. */
    readonly items: readonly PopulatedRosterItem[];
  };
  /** Inbound requests alice never answered; `payload` is what the request carried. */
  readonly pendingSubscriptions: readonly { readonly from: string; readonly payload: readonly XmlElement[] }[];
  readonly vcard: {
    /** The `<vCard xmlns='vcard-temp'>` that was set. */
    readonly element: XmlElement;
    /** `vcard` store, or converted into PEP nodes (see `profile.vcardInPep`). */
    readonly storedAs: 'vcard' | 'pep';
  };
  /** The one PNG used for the vCard PHOTO and the XEP-0084 avatar, so both agree on its id. */
  readonly photo: {
    readonly type: 'image/png';
    readonly width: number;
    readonly height: number;
    readonly bytes: number;
    readonly base64: string;
    /** Lower-case hex SHA-1 of the bytes: the XEP-0084 item id. */
    readonly sha1: string;
  };
  /** Elements in alice's `private` store, keyed by (name, namespace). */
  readonly private: readonly XmlElement[];
  /** The XEP-0049 `<storage xmlns='storage:bookmarks'>` that was set (kept or converted, see profile). */
  readonly legacyBookmarks: XmlElement;
  /** Every PEP node alice owns, sorted by node name. */
  readonly pep: readonly PopulatedPepNode[];
  readonly blocklist: readonly string[];
  readonly archive: {
    /** Messages exchanged with bob (`options.messages`). */
    readonly exchanged: number;
    /** Alice's whole archive in archive order: the exchange, then the offline messages. */
    readonly messages: readonly PopulatedArchiveMessage[];
  };
  /** Messages left in alice's offline store, in the order they were sent. */
  readonly offline: readonly PopulatedOfflineMessage[];
  readonly timings: { readonly totalMs: number; readonly messagesMs: number };
}

// ---------------------------------------------------------------------------------------------
// Profiles

/**
 * startProsody() options for a server whose vCard-temp and XEP-0049 bookmarks stay in the
 * `vcard` and `private` stores: mod_vcard instead of mod_vcard_legacy, no mod_bookmarks. The
 * rig's defaults convert both into PEP, which hides those stores from an exporter.
 * `modules_disabled` replaces the rig's own setting, hence `s2s` again.
 */
export const NO_CONVERSION_PROSODY_OPTIONS: { readonly extraModules: readonly string[]; readonly extraGlobalConfig: string } = {
  extraModules: ['vcard'],
  extraGlobalConfig: 'modules_disabled = { "s2s", "vcard_legacy", "bookmarks" }',
};

// ---------------------------------------------------------------------------------------------
// Fixed content

export const NS_NOTES = 'urn:example:xporta:notes';
export const NS_PREFS = 'urn:example:xporta:prefs';
const NS_BOOKMARKS2 = 'urn:xmpp:bookmarks:1';
const NS_LEGACY_PEP_BOOKMARKS = 'storage:bookmarks';
const NS_AVATAR_DATA = 'urn:xmpp:avatar:data';
const NS_AVATAR_METADATA = 'urn:xmpp:avatar:metadata';
const NS_VCARD4 = 'urn:xmpp:vcard4';
const NS_NICK = 'http://jabber.org/protocol/nick';
const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
const REMOTE_CONTACT = 'romeo@montague.example';
const RESOURCE = 'populate';

/** Bodies cycle through these; they cover non-ASCII, astral characters and XML specials. */
const BODIES: readonly string[] = [
  'See you tomorrow at the archive.',
  'Ελληνικά κείμενα και ελληνικά γράμματα',
  '5 < 6 && 7 > 3',
  'Zoë’s café — 日本語 🎻',
  'quotes " and \' and a <tag/> & an &amp; entity',
  'ok',
];

const OFFLINE_BODIES: readonly string[] = ['Are you there? Ça va ?', 'Ping when back 👋 <urgent> & more'];

// ---------------------------------------------------------------------------------------------
// Helpers

/** A small valid RGBA PNG, generated so its bytes are the same on every run. */
function makePng(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc32 = (buf: Buffer): number => {
    let c = 0xffffffff;
    for (const b of buf) c = (crcTable[(c ^ b) & 0xff] as number) ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const out = Buffer.alloc(body.length + 8);
    out.writeUInt32BE(data.length, 0);
    body.copy(out, 4);
    out.writeUInt32BE(crc32(body), body.length + 4);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 6, 0, 0, 0], 8);
  const rows: number[] = [];
  for (let y = 0; y < height; y++) {
    rows.push(0);
    for (let x = 0; x < width; x++) rows.push((x * 255) / Math.max(1, width - 1), (y * 255) / Math.max(1, height - 1), 160, 255);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.from(rows.map((v) => Math.round(v))), { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/**
 * An @xmpp/xml element as the model's XmlElement, so summaries compare directly with reader
 * output: namespaces resolved by inheritance, `xmlns`/`xmlns:*` declarations dropped, prefixed
 * attributes in Clark notation (except `xml:`), adjacent text runs merged.
 */
export function toModelElement(el: LtxElement, parentNs = 'jabber:client', prefixes: ReadonlyMap<string, string> = new Map()): XmlElement {
  const scope = new Map(prefixes);
  for (const [key, value] of Object.entries(el.attrs)) {
    if (key.startsWith('xmlns:') && value !== undefined) scope.set(key.slice(6), value);
  }
  if (el.name.includes(':')) throw new Error(`toModelElement: prefixed element names are not supported (${el.name})`);
  const xmlns = el.attrs.xmlns ?? parentNs;
  const attrs: Record<string, string> = {};
  for (const [key, value] of Object.entries(el.attrs)) {
    if (value === undefined || key === 'xmlns' || key.startsWith('xmlns:')) continue;
    const colon = key.indexOf(':');
    if (colon === -1 || key.startsWith('xml:')) {
      attrs[key] = value;
      continue;
    }
    const uri = scope.get(key.slice(0, colon));
    if (uri === undefined) throw new Error(`toModelElement: undeclared prefix in attribute ${key}`);
    attrs[`{${uri}}${key.slice(colon + 1)}`] = value;
  }
  const children: XmlNode[] = [];
  for (const child of el.children) {
    if (typeof child === 'string') {
      const last = children[children.length - 1];
      if (typeof last === 'string') children[children.length - 1] = last + child;
      else children.push(child);
    } else {
      children.push(toModelElement(child, xmlns, scope));
    }
  }
  return { name: el.name, xmlns, attrs, children };
}

const sortBy = <T>(items: readonly T[], key: (item: T) => string): T[] =>
  [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));

function dataForm(formType: string, fields: Readonly<Record<string, string>>): LtxElement {
  return xml(
    'x',
    { xmlns: NS.dataForms, type: 'submit' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, formType)),
    Object.entries(fields).map(([v, value]) => xml('field', { var: v }, xml('value', {}, value))),
  );
}

async function accountFeatures(client: XmppClient): Promise<Set<string>> {
  const result = await client.iq(xml('iq', { type: 'get', to: client.bareJid }, xml('query', { xmlns: NS_DISCO_INFO })));
  const query = result.getChild('query', NS_DISCO_INFO);
  return new Set((query?.getChildren('feature') ?? []).map((f) => f.attrs.var ?? ''));
}

async function pepNodeNames(client: XmppClient): Promise<string[]> {
  const result = await client.iq(xml('iq', { type: 'get', to: client.bareJid }, xml('query', { xmlns: NS_DISCO_ITEMS })));
  const query = result.getChild('query', NS_DISCO_ITEMS);
  return (query?.getChildren('item') ?? []).map((i) => i.attrs.node ?? '').filter((n) => n !== '');
}

async function rosterVersion(client: XmppClient): Promise<string | undefined> {
  const result = await client.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster, ver: '' })));
  return result.getChild('query', NS.roster)?.attrs.ver;
}

function mismatch(what: string, expected: unknown, actual: unknown): Error {
  return new Error(`populate: ${what} is not what was created\nexpected: ${JSON.stringify(expected)}\nactual:   ${JSON.stringify(actual)}`);
}

function checkEqual(what: string, expected: unknown, actual: unknown): void {
  if (JSON.stringify(expected) !== JSON.stringify(actual)) throw mismatch(what, expected, actual);
}

// ---------------------------------------------------------------------------------------------

/**
 * Creates alice's data on `prosody` (which must be running) and returns what was stored.
 * Leaves every client disconnected and alice offline, with two messages waiting for her.
 */
export async function populateAccount(prosody: ProsodyHandle, options: PopulateOptions = {}): Promise<PopulateSummary> {
  const started = performance.now();
  const host = options.host ?? prosody.hosts[0] ?? 'localhost';
  const messageCount = options.messages ?? 200;
  if (!Number.isInteger(messageCount) || messageCount < 0) throw new Error(`populate: messages must be a non-negative integer, not ${messageCount}`);
  const account = (user: PopulatedUser): PopulatedAccount => ({
    user,
    jid: `${user}@${host}`,
    password: options.passwords?.[user] ?? `${user}-pw`,
  });
  const accounts = [account('alice'), account('bob'), account('carol')] as const;
  const [aliceAccount, bobAccount, carolAccount] = accounts;
  if (options.createAccounts ?? true) {
    for (const a of accounts) await createUser(prosody, a.user, host, a.password);
  }

  const clients: XmppClient[] = [];
  const login = async (a: PopulatedAccount, presence: boolean): Promise<XmppClient> => {
    const client = await loginAs(prosody, a.user, a.password, { host, resource: RESOURCE, presence });
    clients.push(client);
    return client;
  };

  try {
    let alice = await login(aliceAccount, false);
    const bob = await login(bobAccount, true);
    const carol = await login(carolAccount, true);

    const features = await accountFeatures(alice);
    const profile: PopulateProfile = {
      vcardInPep: features.has('urn:xmpp:pep-vcard-conversion:0'),
      privateBookmarksInPep: features.has(`${NS_BOOKMARKS2}#compat`),
    };

    // --- Roster and subscriptions -------------------------------------------------------------
    const intended: PopulatedRosterItem[] = [
      { jid: bobAccount.jid, name: 'Bob Example', subscription: 'both', groups: ['Friends'] },
      { jid: carolAccount.jid, name: 'Carol 🎻', subscription: 'to', groups: ['Work'] },
      { jid: REMOTE_CONTACT, name: 'Romeo', subscription: 'none', ask: 'subscribe', groups: ['Remote'] },
    ];
    for (const item of intended) await setRosterItem(alice, item.jid, item.name, item.groups);
    await subscribe(alice, bobAccount.jid);
    await approveSubscription(bob, aliceAccount.jid);
    await subscribe(bob, aliceAccount.jid);
    await approveSubscription(alice, bobAccount.jid);
    await subscribe(alice, carolAccount.jid);
    await approveSubscription(carol, aliceAccount.jid);
    // s2s is off, so this bounces; the roster keeps ask=subscribe as for any unanswered request.
    await subscribe(alice, REMOTE_CONTACT);
    // Carol asks back and alice never answers: an inbound pending subscription with a nick.
    const pendingPayload = xml('nick', { xmlns: NS_NICK }, 'Carol');
    await carol.send(xml('presence', { to: aliceAccount.jid, type: 'subscribe' }, pendingPayload));
    await carol.sync();

    // --- vCard-temp with a photo, and the same image as XEP-0084 avatar -----------------------
    const png = makePng(4, 4);
    const photo = {
      type: 'image/png' as const,
      width: 4,
      height: 4,
      bytes: png.length,
      base64: png.toString('base64'),
      sha1: createHash('sha1').update(png).digest('hex'),
    };
    const vcard = xml(
      'vCard',
      { xmlns: NS.vcard },
      xml('FN', {}, 'Alice Example'),
      xml('N', {}, xml('FAMILY', {}, 'Example'), xml('GIVEN', {}, 'Alice')),
      xml('NICKNAME', {}, 'alice'),
      xml('EMAIL', {}, xml('HOME'), xml('INTERNET'), xml('USERID', {}, 'alice@example.org')),
      xml('DESC', {}, 'Zoë’s friend — <loves> XML & unicode 🎻'),
      xml('PHOTO', {}, xml('TYPE', {}, photo.type), xml('BINVAL', {}, photo.base64)),
    );
    await setVCard(alice, vcard);

    // --- Private XML --------------------------------------------------------------------------
    const prefs = xml('prefs', { xmlns: NS_PREFS, version: '2' }, xml('theme', {}, 'dark'), xml('lang', {}, 'fr-CA'));
    await setPrivate(alice, prefs);
    const legacyBookmarks = xml(
      'storage',
      { xmlns: 'storage:bookmarks' },
      xml(
        'conference',
        { jid: 'lobby@conference.example.org', name: 'Lobby (legacy)', autojoin: 'true' },
        xml('nick', {}, 'alice'),
      ),
    );
    // Its own request: mod_bookmarks answers a query holding storage:bookmarks itself and
    // would drop any sibling element.
    await setPrivate(alice, legacyBookmarks);

    // --- XEP-0402 bookmarks ------------------------------------------------------------------
    const bookmarkOptions = { persist_items: 'true', max_items: 'max', access_model: 'whitelist' };
    const bookmarks: PopulatedPepItem[] = [
      {
        id: 'xmpp@conference.example.org',
        payload: toModelElement(
          xml(
            'conference',
            { xmlns: NS_BOOKMARKS2, name: 'XMPP Standards 💬', autojoin: 'true' },
            xml('nick', {}, 'alice'),
            xml('extensions', {}, xml('state', { xmlns: 'urn:example:client-state', pinned: 'true' })),
          ),
        ),
      },
      {
        id: 'dev@conference.example.org',
        payload: toModelElement(
          xml('conference', { xmlns: NS_BOOKMARKS2, name: 'Dev & Ops <internal>', autojoin: 'false' }, xml('nick', {}, 'alice-dev'), xml('password', {}, 's3cr3t')),
        ),
      },
    ];
    for (const b of bookmarks) {
      await publishPep(alice, NS_BOOKMARKS2, b.id, fromModelElement(b.payload), bookmarkOptions);
    }

    // --- XEP-0084 avatar ----------------------------------------------------------------------
    await publishPep(alice, NS_AVATAR_DATA, photo.sha1, xml('data', { xmlns: NS_AVATAR_DATA }, photo.base64));
    await publishPep(
      alice,
      NS_AVATAR_METADATA,
      photo.sha1,
      xml(
        'metadata',
        { xmlns: NS_AVATAR_METADATA },
        xml('info', { id: photo.sha1, bytes: String(photo.bytes), type: photo.type, width: String(photo.width), height: String(photo.height) }),
      ),
    );

    // --- A configured custom node, with a second publisher and a subscriber -------------------
    const notesConfig: Record<string, string> = {
      'pubsub#title': 'Notes of Alice Example',
      'pubsub#description': 'Custom node with a config form',
      'pubsub#access_model': 'presence',
      'pubsub#publish_model': 'publishers',
      'pubsub#max_items': '10',
      'pubsub#persist_items': '1',
      'pubsub#notify_retract': '0',
    };
    await alice.iq(
      xml(
        'iq',
        { type: 'set' },
        xml(
          'pubsub',
          { xmlns: NS.pubsub },
          xml('create', { node: NS_NOTES }),
          xml('configure', {}, dataForm(`${NS.pubsub}#node_config`, notesConfig)),
        ),
      ),
    );
    await alice.iq(
      xml(
        'iq',
        { type: 'set' },
        xml('pubsub', { xmlns: NS.pubsubOwner }, xml('affiliations', { node: NS_NOTES }, xml('affiliation', { jid: bobAccount.jid, affiliation: 'publisher' }))),
      ),
    );
    const notes: PopulatedPepItem[] = [
      { id: 'note-1', payload: toModelElement(xml('note', { xmlns: NS_NOTES, 'xml:lang': 'en' }, 'Buy milk & eggs')) },
      { id: 'note-2', payload: toModelElement(xml('note', { xmlns: NS_NOTES, 'xml:lang': 'fr' }, 'Acheter du pain — « vite »')) },
    ];
    for (const n of notes) await publishPep(alice, NS_NOTES, n.id, fromModelElement(n.payload));
    await bob.iq(
      xml('iq', { type: 'set', to: aliceAccount.jid }, xml('pubsub', { xmlns: NS.pubsub }, xml('subscribe', { node: NS_NOTES, jid: bobAccount.jid }))),
    );

    // --- Blocklist ----------------------------------------------------------------------------
    const blocked = ['spammer@spam.example', 'troll@example.net'];
    await block(alice, blocked);

    // --- Message archive ----------------------------------------------------------------------
    // Both available, so messages are delivered (and archived on both sides), not stored offline.
    await alice.send(xml('presence'));
    await alice.sync();
    const messagesStarted = performance.now();
    const sent: { messageId: string; body: string; out: boolean }[] = [];
    for (let i = 0; i < messageCount; i++) {
      const out = i % 2 === 0;
      const body = `#${i} ${BODIES[i % BODIES.length] ?? ''}`;
      const messageId = `mam-${i}`;
      await sendMessage(out ? alice : bob, out ? bobAccount.jid : aliceAccount.jid, body, { id: messageId });
      sent.push({ messageId, body, out });
    }
    const messagesMs = performance.now() - messagesStarted;

    // --- Offline messages ---------------------------------------------------------------------
    await alice.close();
    // Bob sees alice's unavailable presence only once the server has ended her session, after
    // which messages to her bare JID go to the offline store.
    await bob.waitFor(
      (s) => s.name === 'presence' && s.attrs.type === 'unavailable' && (s.attrs.from ?? '').startsWith(`${aliceAccount.jid}/`),
      10_000,
    );
    const offline: PopulatedOfflineMessage[] = [];
    for (const [i, body] of OFFLINE_BODIES.entries()) {
      const messageId = `offline-${i + 1}`;
      await sendMessage(bob, aliceAccount.jid, body, { id: messageId });
      offline.push({ messageId, from: bobAccount.jid, to: aliceAccount.jid, body });
    }

    // --- Read back what the server stored ------------------------------------------------------
    // No presence: an available session would be handed (and rid of) the offline messages.
    alice = await login(aliceAccount, false);

    const roster = sortBy(await getRoster(alice), (i) => i.jid).map(
      (i): PopulatedRosterItem => ({
        jid: i.jid,
        ...(i.name !== undefined ? { name: i.name } : {}),
        subscription: i.subscription as PopulatedRosterItem['subscription'],
        ...(i.ask === 'subscribe' ? { ask: 'subscribe' as const } : {}),
        groups: [...i.groups].sort(),
      }),
    );
    checkEqual('roster', sortBy(intended, (i) => i.jid), roster);
    const version = await rosterVersion(alice);

    const blocklist = (await getBlocklist(alice)).sort();
    checkEqual('blocklist', [...blocked].sort(), blocklist);

    const mam = await queryMam(alice);
    const expectedBodies = [...sent.map((s) => s.body), ...offline.map((o) => o.body)];
    checkEqual('archive bodies', expectedBodies, mam.map((r) => r.message.getChildText('body')));
    const archive: PopulatedArchiveMessage[] = mam.map((r, index) => {
      const exchanged = index < sent.length;
      const out = exchanged && (sent[index]?.out ?? false);
      return {
        id: r.id,
        timestamp: r.stamp ?? '',
        with: bobAccount.jid,
        direction: out ? 'out' : 'in',
        messageId: r.message.attrs.id ?? '',
        body: r.message.getChildText('body') ?? '',
        stanza: toModelElement(r.message),
        exchanged,
      };
    });

    // PEP: every node alice has, and its items as the server returns them to her.
    const nodeNames = (await pepNodeNames(alice)).sort();
    const pep: PopulatedPepNode[] = [];
    for (const node of nodeNames) {
      // mod_bookmarks answers for this node itself, from the XEP-0402 items; nothing is stored in it.
      const generated = node === NS_LEGACY_PEP_BOOKMARKS && profile.privateBookmarksInPep;
      const fetched = generated ? [] : await getPepItems(alice, undefined, node);
      const items = sortBy(
        fetched.map((i) => {
          if (!i.payload) throw new Error(`populate: PEP item ${node}/${i.id} has no payload`);
          return { id: i.id, payload: toModelElement(i.payload) };
        }),
        (i) => i.id,
      );
      pep.push({ node, ...describeNode(node, profile, notesConfig, aliceAccount.jid, bobAccount.jid), items });
    }
    const expectedNodes = [NS_AVATAR_DATA, NS_AVATAR_METADATA, NS_BOOKMARKS2, NS_NOTES];
    if (profile.privateBookmarksInPep) expectedNodes.push(NS_LEGACY_PEP_BOOKMARKS);
    if (profile.vcardInPep) expectedNodes.push(NS_VCARD4);
    checkEqual('PEP nodes', expectedNodes.sort(), nodeNames);

    const expectedBookmarkIds = [...bookmarks.map((b) => b.id), ...(profile.privateBookmarksInPep ? ['lobby@conference.example.org'] : [])].sort();
    checkEqual('XEP-0402 bookmark ids', expectedBookmarkIds, pep.find((n) => n.node === NS_BOOKMARKS2)?.items.map((i) => i.id));
    checkEqual('notes', sortBy(notes, (n) => n.id), pep.find((n) => n.node === NS_NOTES)?.items);

    const privateElements = [toModelElement(prefs), ...(profile.privateBookmarksInPep ? [] : [toModelElement(legacyBookmarks)])];

    return {
      host,
      accounts,
      alice: aliceAccount,
      profile,
      roster: { ...(version !== undefined ? { version } : {}), items: roster },
      pendingSubscriptions: [{ from: carolAccount.jid, payload: [toModelElement(pendingPayload)] }],
      vcard: { element: toModelElement(vcard), storedAs: profile.vcardInPep ? 'pep' : 'vcard' },
      photo,
      private: privateElements,
      legacyBookmarks: toModelElement(legacyBookmarks),
      pep,
      blocklist,
      archive: { exchanged: sent.length, messages: archive },
      offline,
      timings: { totalMs: performance.now() - started, messagesMs },
    };
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
}

/**
 * What the server stores about a node besides its items. Prosody stores an owner affiliation
 * only for nodes created explicitly (a client's <create/>, a module's service:create); nodes
 * auto-created by a publish (with or without publish-options, or by mod_vcard_legacy) have
 * none stored and their owner is implicit.
 */
function describeNode(
  node: string,
  profile: PopulateProfile,
  notesConfig: Readonly<Record<string, string>>,
  alice: string,
  bob: string,
): Omit<PopulatedPepNode, 'node' | 'items'> {
  const owner = { [alice]: 'owner' as const };
  switch (node) {
    case NS_NOTES:
      return { createdBy: 'populate', config: notesConfig, affiliations: { ...owner, [bob]: 'publisher' }, subscribers: [bob] };
    case NS_BOOKMARKS2:
      return {
        createdBy: profile.privateBookmarksInPep ? 'mod_bookmarks' : 'populate',
        config: {
          'pubsub#persist_items': '1',
          'pubsub#max_items': 'max',
          'pubsub#access_model': 'whitelist',
          // mod_bookmarks creates the node with its own defaults, which include this one.
          ...(profile.privateBookmarksInPep ? { 'pubsub#send_last_published_item': 'never' } : {}),
        },
        // Auto-created by a publish with publish-options, the node gets no stored affiliation.
        affiliations: profile.privateBookmarksInPep ? owner : {},
        subscribers: [],
      };
    case NS_LEGACY_PEP_BOOKMARKS:
      return {
        createdBy: 'mod_bookmarks',
        config: { 'pubsub#persist_items': '0', 'pubsub#max_items': '1', 'pubsub#access_model': 'whitelist', 'pubsub#send_last_published_item': 'never' },
        affiliations: owner,
        subscribers: [],
      };
    case NS_AVATAR_DATA:
    case NS_AVATAR_METADATA:
    case NS_VCARD4:
      return profile.vcardInPep
        ? { createdBy: 'mod_vcard_legacy', config: { 'pubsub#access_model': 'open' }, affiliations: {}, subscribers: [] }
        : { createdBy: 'populate', config: {}, affiliations: {}, subscribers: [] };
    default:
      throw new Error(`populate: unexpected PEP node ${node}`);
  }
}

/** The reverse of toModelElement, for sending summary payloads (no prefixed attributes). */
function fromModelElement(el: XmlElement, parentNs?: string): LtxElement {
  const attrs: Record<string, string> = { ...el.attrs };
  if (el.xmlns !== parentNs) attrs.xmlns = el.xmlns;
  return xml(el.name, attrs, el.children.map((c) => (typeof c === 'string' ? c : fromModelElement(c, el.xmlns))));
}
