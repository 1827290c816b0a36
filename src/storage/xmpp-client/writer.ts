/**
 * Writes a record stream into a remote account over the client protocol: the destination side
 * of a transfer whose new account is not in storage xporta can write. It sends what a client may
 * set on its own account:
 *
 * - roster items with their name and groups (one `jabber:iq:roster` set each). Subscription
 *   states cannot be set by a client: they are established by subscription requests;
 * - the vCard (vcard-temp set);
 * - private XML (`jabber:iq:private` set, one element each);
 * - PEP items, published with publish-options carrying the node's access model (so an item is
 *   never more visible on the new account than on the old), and the node's affiliations;
 * - the XEP-0191 blocklist and XEP-0016 privacy lists.
 *
 * What the protocol cannot carry (the archive, offline messages, pending inbound requests,
 * server-specific elements, PEP subscriptions) is counted and listed in the report. A stanza
 * error on one item is listed too and the writing goes on; throttling is retried (throttle.ts);
 * a broken stream is thrown. Moved statements (XEP-0283) on the source are not written: the new
 * account has not moved.
 */
import { element, firstChild, textOf, type DataKind, type PepItemRecord, type PepNodeRecord, type PrivacyRecord, type RosterItem, type UserRecord, type XmlElement } from '../../records/model.js';
import { NS } from '../../records/namespaces.js';
import { XmppStanzaError } from './errors.js';
import type { ClientStream } from './stream.js';
import { iqRetryingThrottle, type ThrottleOptions } from './throttle.js';

export interface PushReport {
  /** Items written, per data kind (roster items, PEP items, blocked JIDs, privacy lists…). */
  readonly written: Partial<Record<DataKind, number>>;
  /** What the destination server refused, one line each: what, and the server's condition. */
  readonly refused: readonly string[];
  /** What the client protocol cannot carry, one line per kind with its count and why. */
  readonly notCarried: readonly string[];
}

export type PushOptions = ThrottleOptions;

/**
 * Node configuration fields sent as publish-options when the source node had them. Not
 * `pubsub#max_items`: ejabberd 23.01 refuses it there (as an unknown field, with type wait).
 */
const PUBLISH_OPTION_FIELDS = ['pubsub#access_model', 'pubsub#persist_items'] as const;
/**
 * Conditions with which a server refuses publish-options it does not accept as given; ejabberd
 * answers an unknown field with `resource-constraint`, so that one leads to the next set too.
 */
const OPTIONS_REFUSED = new Set(['precondition-not-met', 'not-acceptable', 'bad-request', 'conflict', 'policy-violation', 'resource-constraint']);

const NOT_CARRIED: Readonly<Record<string, (n: number) => string>> = {
  archive: (n) => archiveNotCarried(n),
  offline: (n) => `${n} offline messages — only a server can store messages for delivery to its own account`,
  'pending-subscription': (n) => `${n} pending subscription requests — only the contacts can send them again`,
  opaque: (n) => `${n} server-specific elements — the client protocol has no request that stores them`,
  subscriptions: (n) => `${n} roster subscription states — a client cannot set them; they come back as contacts accept subscription requests`,
  'pep-subscriptions': (n) => `${n} PEP node subscriptions — contacts' clients subscribe again by themselves`,
};

/** A node being written: its record, and the publish-options its items went with once one was accepted. */
interface OpenNode {
  readonly record: PepNodeRecord;
  options?: readonly XmlElement[];
  published: boolean;
}

export class RemoteAccountWriter {
  private readonly written: Partial<Record<DataKind, number>> = {};
  private readonly refused: string[] = [];
  private readonly skipped = new Map<string, number>();
  private node: OpenNode | undefined;

  constructor(
    private readonly stream: ClientStream,
    /** The destination account's bare JID. */
    private readonly jid: string,
    private readonly options: PushOptions = {},
  ) {}

  /** Writes one record; a stanza error is listed, a stream failure is thrown. */
  async write(record: UserRecord): Promise<void> {
    if (record.kind !== 'pep-item' && this.node && (record.kind !== 'pep-node' || record.node !== this.node.record.node)) await this.closeNode();
    switch (record.kind) {
      case 'roster':
        for (const item of record.items) await this.rosterItem(item);
        return;
      case 'vcard':
        if (await this.set('vCard', record.vcard)) this.count('vcard');
        return;
      case 'private':
        if (await this.set(`private ${record.element.xmlns}`, element('query', NS.private, {}, [record.element]))) this.count('private');
        return;
      case 'pep-node':
        if (record.node === NS.moved) return;
        if (record.subscriptions.some((s) => s.jid !== this.jid)) this.skip('pep-subscriptions', record.subscriptions.length);
        this.node = { record, published: false };
        return;
      case 'pep-item':
        if (record.node !== NS.moved) await this.pepItem(record);
        return;
      case 'blocklist':
        if (record.items.length > 0 && (await this.set('blocklist', element('block', NS.blocking, {}, record.items.map((jid) => element('item', NS.blocking, { jid })))))) {
          this.count('blocklist', record.items.length);
        }
        return;
      case 'privacy':
        await this.privacy(record);
        return;
      case 'archive':
      case 'offline':
      case 'pending-subscription':
      case 'opaque':
        this.skip(record.kind);
        return;
    }
  }

  /** Ends the last node and returns the report. */
  async finish(): Promise<PushReport> {
    await this.closeNode();
    const notCarried = [...this.skipped].map(([what, n]) => (NOT_CARRIED[what] ?? ((k: number) => `${k} ${what}`))(n));
    return { written: { ...this.written }, refused: [...this.refused], notCarried };
  }

  private count(kind: DataKind, n = 1): void {
    this.written[kind] = (this.written[kind] ?? 0) + n;
  }

  private skip(what: string, n = 1): void {
    this.skipped.set(what, (this.skipped.get(what) ?? 0) + n);
  }

  /** An IQ set; a stanza error is listed under `what` and answers false. */
  private async set(what: string, payload: XmlElement, to?: string): Promise<boolean> {
    try {
      await iqRetryingThrottle(this.stream, 'set', payload, this.options, to);
      return true;
    } catch (err) {
      if (!(err instanceof XmppStanzaError)) throw err;
      this.refused.push(`${what}: ${err.condition}`);
      return false;
    }
  }

  private async rosterItem(item: RosterItem): Promise<void> {
    if (item.subscription === 'remove' || item.jid === this.jid) return;
    if (item.subscription !== 'none') this.skip('subscriptions');
    const attrs = { jid: item.jid, ...(item.name !== undefined ? { name: item.name } : {}) };
    const groups = item.groups.map((g) => element('group', NS.roster, {}, [g]));
    if (await this.set(`roster item ${item.jid}`, element('query', NS.roster, {}, [element('item', NS.roster, attrs, groups)]))) this.count('roster');
  }

  /**
   * Publishes an item with the node's publish-options. The first item of a node finds out which
   * options the server takes: all the portable ones, else the access model alone; without the
   * access model the item is not published at all (it could end up more visible than it was).
   */
  private async pepItem(record: PepItemRecord): Promise<void> {
    if (this.node?.record.node !== record.node) {
      await this.closeNode();
      this.node = { record: { kind: 'pep-node', node: record.node, config: [], affiliations: [], subscriptions: [] }, published: false };
    }
    const node = this.node;
    const item = element('item', NS.pubsub, { id: record.id }, record.payload ? [record.payload] : []);
    const what = `PEP ${record.node} item ${record.id}`;
    const candidates = node.options ? [node.options] : publishOptionSets(node.record);
    for (const [i, options] of candidates.entries()) {
      const publish = [element('publish', NS.pubsub, { node: record.node }, [item]), ...(options.length > 0 ? [element('publish-options', NS.pubsub, {}, [submitForm(`${NS.pubsub}#publish-options`, options)])] : [])];
      const last = i + 1 === candidates.length;
      try {
        // While a smaller set is left to try, a "wait" answer is taken as a refusal of the options.
        await iqRetryingThrottle(this.stream, 'set', element('pubsub', NS.pubsub, {}, publish), last ? this.options : { ...this.options, throttleAttempts: 1 });
      } catch (err) {
        if (!(err instanceof XmppStanzaError)) throw err;
        if (!last && (OPTIONS_REFUSED.has(err.condition) || err.errorType === 'wait')) continue;
        this.refused.push(`${what}: ${err.condition}`);
        return;
      }
      node.options = options;
      node.published = true;
      this.count('pep');
      return;
    }
  }

  /** After a node's items: its affiliations (the owner's own excepted), where the server allows. */
  private async closeNode(): Promise<void> {
    const node = this.node;
    this.node = undefined;
    if (!node?.published) return;
    const others = node.record.affiliations.filter((a) => a.jid !== this.jid && a.affiliation !== 'owner');
    if (others.length === 0) return;
    const affiliations = element('affiliations', NS.pubsubOwner, { node: node.record.node }, others.map((a) => element('affiliation', NS.pubsubOwner, { jid: a.jid, affiliation: a.affiliation })));
    await this.set(`PEP ${node.record.node} affiliations`, element('pubsub', NS.pubsubOwner, {}, [affiliations]), this.jid);
  }

  private async privacy(record: PrivacyRecord): Promise<void> {
    let written = 0;
    for (const list of record.lists) {
      const items = [...list.items]
        .sort((a, b) => a.order - b.order)
        .map((i) =>
          element(
            'item',
            NS.privacy,
            { ...(i.type ? { type: i.type } : {}), ...(i.value !== undefined ? { value: i.value } : {}), action: i.action, order: String(i.order) },
            i.stanzas.map((s) => element(s, NS.privacy)),
          ),
        );
      if (await this.set(`privacy list ${list.name}`, element('query', NS.privacy, {}, [element('list', NS.privacy, { name: list.name }, items)]))) written++;
    }
    if (written > 0) this.count('privacy', written);
    if (record.defaultList !== undefined && written > 0) {
      await this.set(`default privacy list ${record.defaultList}`, element('query', NS.privacy, {}, [element('default', NS.privacy, { name: record.defaultList })]));
    }
  }
}

/** The publish-options to try, best first: every portable field the node had, then its access model alone. */
function publishOptionSets(node: PepNodeRecord): (readonly XmlElement[])[] {
  const field = (name: string): XmlElement | undefined => {
    const f = node.config.find((c) => c.var === name);
    return f && f.values.length > 0 ? element('field', NS.dataForms, { var: name }, f.values.map((v) => element('value', NS.dataForms, {}, [v]))) : undefined;
  };
  const all = PUBLISH_OPTION_FIELDS.map(field).filter((f): f is XmlElement => f !== undefined);
  const access = field('pubsub#access_model');
  if (!access) return [all];
  return all.length > 1 ? [all, [access]] : [all];
}

function submitForm(formType: string, fields: readonly XmlElement[]): XmlElement {
  return element('x', NS.dataForms, { type: 'submit' }, [
    element('field', NS.dataForms, { var: 'FORM_TYPE', type: 'hidden' }, [element('value', NS.dataForms, {}, [formType])]),
    ...fields,
  ]);
}

/** Writes a whole record stream; the report once the last record is written. */
export async function pushRecords(stream: ClientStream, jid: string, records: AsyncIterable<UserRecord>, options: PushOptions = {}): Promise<PushReport> {
  const writer = new RemoteAccountWriter(stream, jid, options);
  for await (const record of records) await writer.write(record);
  return writer.finish();
}

/**
 * Publishes one item to the account's own PEP node with the given access model (created by the
 * publish when it does not exist). Throws the server's {@link XmppStanzaError}.
 */
export async function publishOwnPep(stream: ClientStream, node: string, id: string, payload: XmlElement, accessModel: string, options: ThrottleOptions = {}): Promise<void> {
  const form = submitForm(`${NS.pubsub}#publish-options`, [element('field', NS.dataForms, { var: 'pubsub#access_model' }, [element('value', NS.dataForms, {}, [accessModel])])]);
  const pubsub = element('pubsub', NS.pubsub, {}, [
    element('publish', NS.pubsub, { node }, [element('item', NS.pubsub, { id }, [payload])]),
    element('publish-options', NS.pubsub, {}, [form]),
  ]);
  await iqRetryingThrottle(stream, 'set', pubsub, options);
}

/**
 * Sends `<presence type='subscribe'>` with `payload` to each contact, directed: no initial
 * presence is sent, so the session stays invisible and receives no offline messages. Resolves
 * once the server has answered an IQ sent after them, i.e. has routed them all (a stream's
 * stanzas are handled in order).
 */
export async function sendSubscriptionRequests(stream: ClientStream, contacts: readonly string[], payload: readonly XmlElement[]): Promise<void> {
  for (const to of contacts) stream.send(element('presence', NS.client, { type: 'subscribe', to }, payload));
  const domain = stream.jid.slice(stream.jid.indexOf('@') + 1).split('/')[0] ?? '';
  try {
    await stream.iq('get', element('ping', NS.ping), domain);
  } catch (err) {
    // A server without XEP-0199 answers with an error: still an answer after the presences.
    if (!(err instanceof XmppStanzaError)) throw err;
  }
}

/** The contacts of a roster to notify of a move: every item but the account itself and removals. */
export function contactsOf(items: readonly RosterItem[], ...exclude: readonly string[]): string[] {
  return items.filter((i) => i.subscription !== 'remove' && !exclude.includes(i.jid)).map((i) => i.jid);
}


/** The report line for an archive that stays behind; `n` when the old server said how large it is. */
export function archiveNotCarried(n?: number): string {
  return `${n ?? 'all'} archived messages — a remote account's archive cannot be written over the client protocol`;
}

/**
 * The size of the account's archive as the server counts it (RSM `<count>` of a one-message MAM
 * page), without reading it; undefined when the server gives no count or has no archive.
 */
export async function archiveSize(stream: ClientStream, options: ThrottleOptions = {}): Promise<number | undefined> {
  const query = element('query', NS.mam, { queryid: 'xporta-count' }, [element('set', NS.rsm, {}, [element('max', NS.rsm, {}, ['1'])])]);
  try {
    const answer = await iqRetryingThrottle(stream, 'set', query, options);
    const fin = firstChild(answer, 'fin', NS.mam);
    const set = fin ? firstChild(fin, 'set', NS.rsm) : undefined;
    const count = set ? firstChild(set, 'count', NS.rsm) : undefined;
    const n = count ? Number(textOf(count).trim()) : Number.NaN;
    return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
  } catch (err) {
    if (err instanceof XmppStanzaError) return undefined;
    throw err;
  }
}

/**
 * Copies the XEP-0313 preferences (default, always, never) from one session's account to the
 * other's: the one part of the archive a client may write. Answers the default that was set, or
 * the refusal (`MAM preferences: condition`); undefined when the old server has none to give.
 */
export async function copyMamPreferences(from: ClientStream, to: ClientStream, options: ThrottleOptions = {}): Promise<{ readonly set?: string; readonly refused?: string } | undefined> {
  let prefs: XmlElement | undefined;
  try {
    prefs = firstChild(await iqRetryingThrottle(from, 'get', element('prefs', NS.mam), options), 'prefs', NS.mam);
  } catch (err) {
    if (err instanceof XmppStanzaError) return undefined;
    throw err;
  }
  if (!prefs?.attrs.default) return undefined;
  try {
    await iqRetryingThrottle(to, 'set', prefs, options);
    return { set: prefs.attrs.default };
  } catch (err) {
    if (err instanceof XmppStanzaError) return { refused: `MAM preferences: ${err.condition}` };
    throw err;
  }
}
