/**
 * What an account serves to its owner over the client protocol, read by a real client logging
 * in: roster, vCard-temp, the items of named PEP nodes, the MAM archive count, and the offline
 * messages with their XEP-0203 delay stamps. Comparing the probe of a source account with the
 * probe of the imported account is the acceptance check of a transfer.
 *
 * The probe is destructive in one way: reading the offline messages needs an available
 * session, which makes the server deliver and then delete them. Probe a source only after its
 * document was written, and probe each target once.
 */
import { expect } from 'vitest';
import {
  connectClient,
  getPepItems,
  getRoster,
  getVCard,
  NS,
  queryMam,
  xml,
  XmppStanzaError,
  type ConnectOptions,
  type XmlElement,
} from './xmpp-client.js';

export interface ServedOffline {
  /** Bare JID of the sender. */
  readonly from: string;
  readonly body: string;
  /** The XEP-0203 stamp the server delivered it with; undefined when it carried none. */
  readonly stamp: string | undefined;
}

export interface ServedAccount {
  /** [jid, name, subscription, ask, sorted groups], sorted by JID. */
  readonly roster: readonly (readonly [string, string, string, string, string])[];
  /** The vCard-temp flattened to `PATH=text` lines (e.g. `PHOTO/TYPE=image/png`), in document order. */
  readonly vcard: readonly string[];
  /** Per asked node: its items as `id canonical-payload-xml`, sorted; a node that does not exist is []. */
  readonly pep: Readonly<Record<string, readonly string[]>>;
  /** How many messages a MAM query over the whole archive returns. */
  readonly archiveCount: number;
  /** Sorted by stamp, then body. */
  readonly offline: readonly ServedOffline[];
}

export interface ProbeOptions {
  /** PEP nodes whose items to read. */
  readonly pepNodes?: readonly string[];
  /** How long to wait after the last offline message before deciding there are no more. Default 400 ms. */
  readonly quietMs?: number;
}

function flattenVCard(el: XmlElement, prefix: string, out: string[]): void {
  for (const child of el.getChildElements()) {
    const path = prefix ? `${prefix}/${child.name}` : child.name;
    if (child.getChildElements().length > 0) flattenVCard(child, path, out);
    else out.push(`${path}=${child.text()}`);
  }
}

async function pepItems(client: Awaited<ReturnType<typeof connectClient>>, node: string): Promise<string[]> {
  try {
    const items = await getPepItems(client, undefined, node);
    return items.map((i) => `${i.id} ${i.payload ? canonicalXml(i.payload) : ''}`).sort();
  } catch (err) {
    if (err instanceof XmppStanzaError && err.condition === 'item-not-found') return [];
    throw err;
  }
}

/** XML with attributes in name order, so two servers' serialisations of the same element compare equal. */
export function canonicalXml(el: XmlElement): string {
  const esc = (t: string): string => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
  const attrs = Object.entries(el.attrs)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => ` ${k}="${esc(v)}"`)
    .join('');
  const children = el.children.map((c) => (typeof c === 'string' ? esc(c) : canonicalXml(c))).join('');
  return `<${el.name}${attrs}>${children}</${el.name}>`;
}

const bare = (jid: string | undefined): string => (jid ?? '').split('/')[0] ?? '';

/** Logs in as the account and reads what it serves (see the module comment: offline messages are consumed). */
export async function probeAccount(connect: ConnectOptions, options: ProbeOptions = {}): Promise<ServedAccount> {
  const client = await connectClient({ ...connect, presence: false });
  try {
    // First an available session: the server now delivers the offline messages, before the
    // answer to the ping that follows the presence, and a quiet period covers servers that route
    // them through another process. First, because Prosody's mod_mam skips offline delivery for
    // a session that has queried the archive.
    await client.send(xml('presence'));
    await client.sync();
    const isOffline = (s: XmlElement): boolean => s.name === 'message' && s.getChild('body') !== undefined;
    const delivered: XmlElement[] = [];
    for (;;) {
      try {
        delivered.push(await client.waitFor(isOffline, options.quietMs ?? 400));
      } catch {
        break;
      }
    }
    const offline = delivered
      .map((m) => ({ from: bare(m.attrs.from), body: m.getChildText('body') ?? '', stamp: m.getChild('delay', NS.delay)?.attrs.stamp }))
      .sort((a, b) => `${a.stamp ?? ''} ${a.body}`.localeCompare(`${b.stamp ?? ''} ${b.body}`));
    const roster = (await getRoster(client))
      .map((r) => [r.jid, r.name ?? '', r.subscription, r.ask ?? '', [...r.groups].sort().join(',')] as const)
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const vcard: string[] = [];
    const vcardEl = await getVCard(client);
    if (vcardEl) flattenVCard(vcardEl, '', vcard);
    const pep: Record<string, readonly string[]> = {};
    for (const node of options.pepNodes ?? []) pep[node] = await pepItems(client, node);
    const archiveCount = (await queryMam(client)).length;

    return { roster, vcard, pep, archiveCount, offline };
  } finally {
    await client.close();
  }
}

/** What a document kind does not carry at all, so the target serves none of it whatever the source has. */
export type NotCarried = 'pep' | 'archive' | 'offline';

/**
 * The target serves what the source served; for what the document kind cannot carry, it
 * serves nothing (so a tool that starts exporting it shows up here).
 */
export function expectServesSame(target: ServedAccount, source: ServedAccount, notCarried: readonly NotCarried[] = []): void {
  expect(target.roster).toEqual(source.roster);
  expect(target.vcard).toEqual(source.vcard);
  if (notCarried.includes('pep')) {
    for (const items of Object.values(target.pep)) expect(items).toEqual([]);
  } else {
    expect(target.pep).toEqual(source.pep);
  }
  expect(target.archiveCount).toBe(notCarried.includes('archive') ? 0 : source.archiveCount);
  // Equal stamps mean something only when the source had them.
  for (const o of source.offline) expect(o.stamp, `source offline message "${o.body}" has no delay`).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  expect(target.offline).toEqual(notCarried.includes('offline') ? [] : source.offline);
}
