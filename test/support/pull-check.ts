/**
 * The acceptance of a client-protocol pull (issue 19), shared by the Prosody and the ejabberd
 * source suites: the data kinds populate.ts and ejabberd-populate.ts leave out, put on the source
 * account through its own client (nick, OMEMO device list and bundle, a privacy list), and what an
 * account serves to its owner over c2s, read the same way on the old server and on the local one
 * so that the two can be compared.
 *
 * Reading is not destructive: no presence is sent, so offline messages stay where they are.
 */
import { expect } from 'vitest';
import { canonicalXml } from './account-probe.js';
import type { PopulateSummary } from './populate.js';
import type { ProsodyHandle } from './prosody.js';
import {
  getBlocklist,
  getPepItems,
  getRoster,
  getVCard,
  loginAs,
  NS,
  publishPep,
  queryMam,
  xml,
  XmppStanzaError,
  type XmlElement,
  type XmppClient,
} from './xmpp-client.js';

export const NS_NICK = 'http://jabber.org/protocol/nick';
export const NS_OMEMO = 'eu.siacs.conversations.axolotl';
export const OMEMO_DEVICELIST = `${NS_OMEMO}.devicelist`;
export const OMEMO_DEVICE_ID = '1434591283';
export const OMEMO_BUNDLE = `${NS_OMEMO}.bundles:${OMEMO_DEVICE_ID}`;
export const NS_PRIVACY = 'jabber:iq:privacy';
/** Derived by the server from the XEP-0402 node (Prosody's mod_bookmarks, ejabberd 24.12): not account data of its own. */
export const DERIVED_NODES: ReadonlySet<string> = new Set(['storage:bookmarks']);

/** Base64 of `n` deterministic bytes: key material shaped like the real thing. */
const key = (seed: number, n = 33): string => Buffer.from(Array.from({ length: n }, (_, i) => (seed * 31 + i * 7) % 256)).toString('base64');

/** The privacy list the extras set (XEP-0016), as an element a server returns. */
export const PRIVACY_LIST = 'no-spam';

export interface ExtraKindsOptions {
  /**
   * Set a privacy list, and make it the default when `'default'`. The server must have XEP-0016
   * (ejabberd's mod_privacy, prosody-modules' mod_privacy_lists). ejabberd keeps the XEP-0191
   * blocklist in the default privacy list, so a default of our own would replace it there.
   */
  readonly privacy: false | 'list' | 'default';
}

/**
 * Adds, through the account's own client: a XEP-0172 nick (default access model), an OMEMO
 * (XEP-0384 0.3, as Conversations publishes it) device list and bundle in open nodes, and a
 * privacy list that denies messages from one JID.
 */
export async function populateExtraKinds(client: XmppClient, options: ExtraKindsOptions): Promise<void> {
  await publishPep(client, NS_NICK, 'current', xml('nick', { xmlns: NS_NICK }, 'Ali 🦊'));
  const open = { access_model: 'open' };
  await publishPep(client, OMEMO_DEVICELIST, 'current', xml('list', { xmlns: NS_OMEMO }, xml('device', { id: OMEMO_DEVICE_ID })), open);
  await publishPep(
    client,
    OMEMO_BUNDLE,
    'current',
    xml(
      'bundle',
      { xmlns: NS_OMEMO },
      xml('signedPreKeyPublic', { signedPreKeyId: '1' }, key(1)),
      xml('signedPreKeySignature', {}, key(2, 64)),
      xml('identityKey', {}, key(3)),
      xml(
        'prekeys',
        {},
        [1, 2, 3].map((id) => xml('preKeyPublic', { preKeyId: String(id) }, key(10 + id))),
      ),
    ),
    open,
  );
  if (options.privacy !== false) {
    await client.iq(
      xml(
        'iq',
        { type: 'set' },
        xml(
          'query',
          { xmlns: NS_PRIVACY },
          xml(
            'list',
            { name: PRIVACY_LIST },
            xml('item', { type: 'jid', value: 'spammer@example.net', action: 'deny', order: '1' }, xml('message')),
            xml('item', { action: 'allow', order: '2' }),
          ),
        ),
      ),
    );
    if (options.privacy === 'default') await client.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_PRIVACY }, xml('default', { name: PRIVACY_LIST }))));
  }
}

export interface ServedNode {
  /** `pubsub#access_model` as the owner's node configuration form gives it. */
  readonly access: string | undefined;
  /** `id canonical-payload`, sorted. */
  readonly items: readonly string[];
}

export interface ServedKinds {
  /** `jid subscription ask groups`, sorted. */
  readonly roster: readonly string[];
  /** vCard-temp fields a client shows: FN, N, NICKNAME, PHOTO (`PATH=text`). */
  readonly vcard: readonly string[];
  /** Every PEP node of the account (disco#items), derived ones left out. */
  readonly pep: Readonly<Record<string, ServedNode>>;
  readonly blocklist: readonly string[];
  /** Default list name and each list canonicalised; undefined when the server has no XEP-0016. */
  readonly privacy: { readonly default: string | undefined; readonly lists: readonly string[] } | undefined;
  /** `[archive id, stamp, message id, body]` in archive order. */
  readonly archive: readonly (readonly [string, string, string, string])[];
}

const VCARD_FIELDS = ['FN', 'N/FAMILY', 'N/GIVEN', 'NICKNAME', 'PHOTO/TYPE', 'PHOTO/BINVAL'];

function flatten(el: XmlElement, prefix: string, out: Map<string, string>): void {
  for (const child of el.getChildElements()) {
    const path = prefix ? `${prefix}/${child.name}` : child.name;
    if (child.getChildElements().length > 0) flatten(child, path, out);
    else if (!out.has(path)) out.set(path, child.text().replace(/\s+/g, ''));
  }
}

async function nodeNames(client: XmppClient): Promise<string[]> {
  const result = await client.iq(xml('iq', { type: 'get', to: client.bareJid }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })));
  const query = result.getChild('query', 'http://jabber.org/protocol/disco#items');
  return [...new Set((query?.getChildren('item') ?? []).map((i) => i.attrs.node ?? '').filter((n) => n !== '' && !DERIVED_NODES.has(n)))].sort();
}

async function accessModel(client: XmppClient, node: string): Promise<string | undefined> {
  const result = await client.iq(xml('iq', { type: 'get', to: client.bareJid }, xml('pubsub', { xmlns: NS.pubsubOwner }, xml('configure', { node }))));
  const form = result.getChild('pubsub', NS.pubsubOwner)?.getChild('configure')?.getChild('x', NS.dataForms);
  const field = form?.getChildren('field').find((f) => f.attrs.var === 'pubsub#access_model');
  return field?.getChildText('value') ?? undefined;
}

async function privacy(client: XmppClient): Promise<ServedKinds['privacy']> {
  let names: XmlElement;
  try {
    names = await client.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_PRIVACY })));
  } catch (err) {
    if (err instanceof XmppStanzaError && err.condition === 'service-unavailable') return undefined;
    throw err;
  }
  const query = names.getChild('query', NS_PRIVACY);
  const lists: string[] = [];
  for (const name of (query?.getChildren('list') ?? []).map((l) => l.attrs.name ?? '').sort()) {
    const answer = await client.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_PRIVACY }, xml('list', { name }))));
    const list = answer.getChild('query', NS_PRIVACY)?.getChild('list');
    if (list) lists.push(canonicalXml(list));
  }
  return { default: query?.getChild('default')?.attrs.name, lists };
}

/** What the account serves to its owner, every kind the acceptance names. */
export async function readServedKinds(client: XmppClient): Promise<ServedKinds> {
  const roster = (await getRoster(client)).map((r) => `${r.jid} ${r.subscription} ${r.ask ?? '-'} ${[...r.groups].sort().join(',')}`).sort();
  const fields = new Map<string, string>();
  const vcard = await getVCard(client);
  if (vcard) flatten(vcard, '', fields);
  const pep: Record<string, ServedNode> = {};
  for (const node of await nodeNames(client)) {
    const items = (await getPepItems(client, undefined, node)).map((i) => `${i.id} ${i.payload ? canonicalXml(i.payload) : ''}`).sort();
    pep[node] = { access: await accessModel(client, node), items };
  }
  const archive = (await queryMam(client)).map((m) => [m.id, m.stamp ?? '', m.message.attrs.id ?? '', m.message.getChildText('body') ?? ''] as const);
  return {
    roster,
    vcard: VCARD_FIELDS.filter((f) => fields.has(f)).map((f) => `${f}=${fields.get(f) ?? ''}`),
    pep,
    blocklist: (await getBlocklist(client)).sort(),
    privacy: await privacy(client),
    archive,
  };
}

/** Archive times as a server of `precision` keeps them: Prosody 0.12 stores whole seconds. */
export function stampAt(stamp: string, precision: 'seconds' | 'micro'): string {
  return precision === 'seconds' ? stamp.replace(/\.\d+Z$/, 'Z') : stamp;
}

/**
 * The local account serves what the old one served: the same roster, vCard and avatar, every
 * PEP node with its items and access model (bookmarks among them), the same blocklist and
 * privacy lists (when both servers have XEP-0016), and every archived message with its archive
 * id, time (to the precision the local server keeps) and message id.
 */
export function expectServedAlike(local: ServedKinds, old: ServedKinds, localStamps: 'seconds' | 'micro'): void {
  expect(local.roster).toEqual(old.roster);
  expect(local.vcard).toEqual(old.vcard);
  expect(Object.keys(local.pep).sort()).toEqual(Object.keys(old.pep).sort());
  for (const [node, served] of Object.entries(old.pep)) {
    expect(local.pep[node]?.items, `items of ${node}`).toEqual(served.items);
    expect(local.pep[node]?.access, `access model of ${node}`).toBe(served.access);
  }
  expect(local.blocklist).toEqual(old.blocklist);
  if (local.privacy !== undefined && old.privacy !== undefined) expect(local.privacy).toEqual(old.privacy);
  expect(local.archive).toEqual(old.archive.map(([id, stamp, messageId, body]) => [id, stampAt(stamp, localStamps), messageId, body]));
}

/**
 * The old account's offline messages are still waiting on the old server: a pull sends no
 * presence, so a login with presence gets each of them, with its id.
 */
export async function expectOfflineStillWaiting(oldServer: ProsodyHandle, summary: PopulateSummary): Promise<void> {
  const alice = await loginAs(oldServer, 'alice', summary.alice.password, { presence: true });
  try {
    for (const o of summary.offline) {
      const got = await alice.waitFor((s) => s.name === 'message' && s.getChildText('body') === o.body, 10_000);
      expect(got.attrs.id).toBe(o.messageId);
    }
  } finally {
    await alice.close();
  }
}
