/**
 * What every Prosody backend must read from an account that real clients filled
 * (test/support/populate.ts): one set of checks for the SQL and the internal-file live tests.
 */
import { expect, it } from 'vitest';
import { createRecordRewriter } from '../../../src/transfer/rename.js';
import type { StorageBackend } from '../../../src/storage/backend.js';
import { deriveScramKeys } from '../../../src/storage/prosody/index.js';
import { DATA_KINDS, type UserRecord, type UserStart, type XmlElement } from '../../../src/records/model.js';
import { NS_PREFS, toModelElement, type PopulateSummary } from '../populate.js';
import { getBlocklist, getPepItems, getPrivate, getRoster, getVCard, queryMam, xml, type XmppClient } from '../xmpp-client.js';
import { collect, iterate } from './sample-user.js';

export function recordsOf<K extends UserRecord['kind']>(records: readonly UserRecord[], kind: K): Extract<UserRecord, { kind: K }>[] {
  return records.filter((r): r is Extract<UserRecord, { kind: K }> => r.kind === kind);
}

export const byId = <T extends { id: string }>(a: T, b: T): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Affiliations and subscriptions in a canonical order: the stores keep no order for them. */
export function sortedNode(record: UserRecord): UserRecord {
  if (record.kind !== 'pep-node') return record;
  const byJid = <T extends { jid: string }>(a: T, b: T): number => (a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0);
  return { ...record, affiliations: [...record.affiliations].sort(byJid), subscriptions: [...record.subscriptions].sort(byJid) };
}

export function bodyOf(stanza: XmlElement): string | undefined {
  const body = stanza.children.find((c): c is XmlElement => typeof c !== 'string' && c.name === 'body');
  return body?.children.filter((c): c is string => typeof c === 'string').join('');
}

export interface PopulatedRead {
  readonly account: UserStart;
  readonly records: readonly UserRecord[];
  readonly summary: PopulateSummary;
}

/** Registers the read checks; `read` gives the state its suite's beforeAll prepared. */
export function itReadsThePopulatedAccount(read: () => PopulatedRead, passwordHash: 'SHA-1' | 'SHA-256'): void {
  it('reads the credentials Prosody derived from alice’s password', () => {
    const { account, summary } = read();
    expect(account.name).toBe('alice');
    expect(account.password).toBeUndefined();
    expect(account.scram).toHaveLength(1);
    const [scram] = account.scram;
    expect(scram?.mechanism).toBe(`SCRAM-${passwordHash}`);
    expect(scram?.iterationCount).toBe(10000);
    const salt = Buffer.from(scram!.salt, 'base64').toString('utf8');
    expect(salt).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const keys = deriveScramKeys(summary.alice.password, passwordHash, salt, 10000)!;
    expect(Buffer.from(scram!.storedKey, 'base64').toString('hex')).toBe(keys.get('stored_key'));
    expect(Buffer.from(scram!.serverKey, 'base64').toString('hex')).toBe(keys.get('server_key'));
  });

  it('reads the roster, its version and the pending subscription', () => {
    const { records, summary } = read();
    const [roster, ...more] = recordsOf(records, 'roster');
    expect(more).toEqual([]);
    expect(roster?.version).toBe(summary.roster.version);
    expect(roster?.items).toEqual(summary.roster.items);
    expect(recordsOf(records, 'pending-subscription').map(({ from, payload }) => ({ from, payload }))).toEqual(summary.pendingSubscriptions);
  });

  it('reads the vCard and private XML where the server kept them', () => {
    const { records, summary } = read();
    const vcards = recordsOf(records, 'vcard');
    if (summary.vcard.storedAs === 'vcard') expect(vcards.map((v) => v.vcard)).toEqual([summary.vcard.element]);
    else expect(vcards).toEqual([]);
    expect(recordsOf(records, 'private').map((p) => p.element)).toEqual(summary.private);
  });

  it('reads every PEP node with its configuration, affiliations, subscribers and items', () => {
    const { records, summary } = read();
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

  it('reads the archive as MAM serves it: same ids, times, peers and messages', () => {
    const { records, summary } = read();
    const archive = recordsOf(records, 'archive');
    expect(archive.map(({ id, timestamp, with: peer, stanza }) => ({ id, timestamp, with: peer, stanza }))).toEqual(
      summary.archive.messages.map(({ id, timestamp, with: peer, stanza }) => ({ id, timestamp, with: peer, stanza })),
    );
  });

  it('reads offline messages and the blocklist', () => {
    const { records, summary } = read();
    const offline = recordsOf(records, 'offline');
    expect(offline.map((o) => ({ messageId: o.stanza.attrs.id, from: o.stanza.attrs.from?.split('/')[0], to: o.stanza.attrs.to, body: bodyOf(o.stanza) }))).toEqual(
      summary.offline,
    );
    expect(recordsOf(records, 'blocklist').map((b) => b.items)).toEqual([summary.blocklist]);
  });
}

/**
 * Imports alice's records as a new account `dave` (her SCRAM keys, so her password), every
 * reference to alice rewritten, and checks that what was written reads back as exactly that.
 */
export async function importAliceAsDave(
  backend: StorageBackend,
  account: UserStart,
  records: readonly UserRecord[],
): Promise<void> {
  const all = new Set(DATA_KINDS);
  const rewrite = createRecordRewriter('alice@localhost', 'dave@localhost');
  const daveRecords = records.map(rewrite).map(sortedNode);
  const dave = { host: 'localhost', user: 'dave' };
  const report = await backend.applyUser(dave, { kind: 'user', name: 'dave', scram: account.scram, extraAttributes: {} }, iterate(daveRecords), {
    mode: 'replace',
    dryRun: false,
    include: all,
    createAccount: true,
  });
  expect(report).toMatchObject({ created: true, warnings: [], skipped: [] });
  expect(await collect(backend.readUser(dave, { include: all }))).toEqual(daveRecords);
}

/**
 * What a real client logged in to the imported account must find: everything `summary` says
 * alice's account held. Going online delivers the offline messages (only before any MAM query:
 * mod_mam then holds them back) and repeats the unanswered subscription request.
 */
export async function expectClientFindsPopulatedAccount(client: XmppClient, summary: PopulateSummary): Promise<void> {
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
}
