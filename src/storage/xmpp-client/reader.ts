/**
 * Reads one account over the client protocol into the same record stream the storage backends
 * produce, so the XEP-0227 writer and the import pipeline take it unchanged.
 *
 * What the server refuses (a module not loaded, a node the account may not configure) is not
 * fatal: it is listed in {@link PullNotes.refused} and the pull goes on. Throttling errors
 * (`resource-constraint`, or any error of type `wait`) are retried with exponential backoff;
 * a request still throttled after the last attempt fails the whole pull (`throttled`), since
 * the server asked to wait rather than refused, and carrying the account without that part
 * would pass a loss off as a success.
 * The archive is read page by page: the next page is asked for only when the consumer has
 * taken the previous one.
 */
import { randomBytes } from 'node:crypto';
import { bareJidIfValid } from '../../lib/jid.js';
import { normaliseTimestamp } from '../../records/timestamp.js';
import {
  childElements,
  element,
  firstChild,
  isElement,
  textOf,
  type ArchiveRecord,
  type DataKind,
  type NodeConfigField,
  type PepItemRecord,
  type PepNodeRecord,
  type PrivacyItem,
  type PrivacyList,
  type PubsubAffiliation,
  type PubsubSubscriptionState,
  type RosterItem,
  type Subscription,
  type UserRecord,
  type XmlElement,
} from '../../records/model.js';
import { NS } from '../../records/namespaces.js';
import { XmppPullError, XmppStanzaError } from './errors.js';
import type { ClientStream } from './stream.js';
import { iqRetryingThrottle } from './throttle.js';

/**
 * Private XML namespaces worth asking for: XEP-0049 storage cannot be listed, so only known
 * namespaces can be read.
 */
export const WELL_KNOWN_PRIVATE: readonly { readonly name: string; readonly xmlns: string }[] = [
  { name: 'storage', xmlns: 'storage:bookmarks' },
  { name: 'storage', xmlns: 'storage:rosternotes' },
  { name: 'storage', xmlns: 'storage:metacontacts' },
  { name: 'query', xmlns: 'jabber:iq:roster:delimiter' },
  { name: 'exodus', xmlns: 'exodus:prefs' },
  { name: 'gajim', xmlns: 'gajim:prefs' },
  { name: 'psi', xmlns: 'psi:prefs' },
];

export interface PullNotes {
  /** What the server refused or could not give, one line each; never a secret. */
  readonly refused: string[];
  /** Facts the user should know (e.g. MAM preferences read but not carried). */
  readonly warnings: string[];
  /** The archive size the server announced (RSM count), when it did. */
  archiveTotal?: number;
  /** Archived messages read so far. */
  archiveRead: number;
}

export interface ReadRemoteOptions {
  readonly include: ReadonlySet<DataKind>;
  /** Messages per MAM page. */
  readonly pageSize: number;
  /** Attempts for a throttled request, the first included. */
  readonly throttleAttempts?: number;
  /** First backoff delay; doubled per attempt. */
  readonly backoffMs?: number;
  readonly signal?: AbortSignal;
}

/** Kinds the client protocol cannot read: credentials stay secret, offline messages stay put. */
export const UNREADABLE_KINDS: ReadonlySet<DataKind> = new Set(['credentials', 'offline', 'other']);

export class RemoteAccountReader {
  private readonly own: string;

  constructor(
    private readonly stream: ClientStream,
    /** The account's bare JID. */
    jid: string,
    private readonly notes: PullNotes,
  ) {
    this.own = jid;
  }

  /**
   * An IQ with throttling retried; other stanza errors are thrown as they are, and throttling
   * that outlasts the attempts as {@link XmppPullError} `throttled`. `beforeAttempt` runs before
   * each sending (the archive empties the page a refused attempt may have begun).
   */
  private request(what: string, type: 'get' | 'set', payload: XmlElement, options: ReadRemoteOptions, to?: string, beforeAttempt?: () => void): Promise<XmlElement> {
    return iqRetryingThrottle(this.stream, type, payload, options, to, {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(beforeAttempt ? { beforeAttempt } : {}),
      outlasted: (err, attempts) => new XmppPullError('throttled', `${what}: still ${err.condition} after ${attempts} attempts`, { cause: err }),
    });
  }

  /** Like {@link request}, but a stanza error becomes a note and undefined. */
  private async tryRequest(what: string, type: 'get' | 'set', payload: XmlElement, options: ReadRemoteOptions, to?: string): Promise<XmlElement | undefined> {
    try {
      return await this.request(what, type, payload, options, to);
    } catch (err) {
      if (err instanceof XmppStanzaError) {
        if (err.condition !== 'item-not-found') this.notes.refused.push(`${what}: ${err.condition}`);
        return undefined;
      }
      throw err;
    }
  }

  async *records(options: ReadRemoteOptions): AsyncGenerator<UserRecord> {
    const kinds = options.include;
    if (kinds.has('roster')) {
      const roster = await this.roster(options);
      if (roster) yield roster;
    }
    if (kinds.has('vcard')) {
      const vcard = await this.tryRequest('vCard', 'get', element('vCard', NS.vcardTemp), options);
      const el = vcard ? firstChild(vcard, 'vCard', NS.vcardTemp) : undefined;
      if (el && el.children.some(isElement)) yield { kind: 'vcard', vcard: el };
    }
    const pepNodes = kinds.has('pep') || kinds.has('private') ? await this.pepNodeNames(options) : [];
    // Prosody and ejabberd answer legacy bookmark requests from the XEP-0402 node: carrying
    // the derived view too would store the same bookmarks twice.
    const derivedBookmarks = pepNodes.includes(NS.bookmarks);
    if (kinds.has('private')) yield* this.privateElements(options, derivedBookmarks);
    if (kinds.has('pep')) {
      for (const node of pepNodes) {
        if (node === NS.legacyBookmarks && derivedBookmarks) continue;
        yield* this.pepNode(node, options);
      }
    }
    if (kinds.has('blocklist')) {
      const answer = await this.tryRequest('blocklist', 'get', element('blocklist', NS.blocking), options);
      const list = answer ? firstChild(answer, 'blocklist', NS.blocking) : undefined;
      if (list) {
        const items = childElements(list, 'item', NS.blocking)
          .map((i) => i.attrs.jid)
          .filter((j): j is string => j !== undefined && j !== '');
        if (items.length > 0) yield { kind: 'blocklist', items };
      }
    }
    if (kinds.has('privacy')) {
      const privacy = await this.privacy(options);
      if (privacy) yield privacy;
    }
    if (kinds.has('archive')) {
      await this.mamPreferences(options);
      yield* this.archive(options);
    }
  }

  private async roster(options: ReadRemoteOptions): Promise<UserRecord | undefined> {
    const answer = await this.tryRequest('roster', 'get', element('query', NS.roster), options);
    const query = answer ? firstChild(answer, 'query', NS.roster) : undefined;
    if (!query) return undefined;
    const items: RosterItem[] = [];
    for (const item of childElements(query, 'item', NS.roster)) {
      const jid = item.attrs.jid ? bareJidIfValid(item.attrs.jid) : undefined;
      if (!jid) {
        this.notes.refused.push(`roster: an item with an invalid JID was skipped`);
        continue;
      }
      const subscription = (['none', 'to', 'from', 'both'].includes(item.attrs.subscription ?? '') ? item.attrs.subscription : 'none') as Subscription;
      items.push({
        jid,
        ...(item.attrs.name ? { name: item.attrs.name } : {}),
        subscription,
        ...(item.attrs.ask === 'subscribe' ? { ask: 'subscribe' as const } : {}),
        ...(item.attrs.approved === 'true' ? { approved: true } : {}),
        groups: childElements(item, 'group', NS.roster).map(textOf),
      });
    }
    return { kind: 'roster', ...(query.attrs.ver ? { version: query.attrs.ver } : {}), items };
  }

  private async *privateElements(options: ReadRemoteOptions, derivedBookmarks: boolean): AsyncGenerator<UserRecord> {
    for (const { name, xmlns } of WELL_KNOWN_PRIVATE) {
      if (xmlns === NS.legacyBookmarks && derivedBookmarks) continue;
      const answer = await this.tryRequest(`private ${xmlns}`, 'get', element('query', NS.private, {}, [element(name, xmlns)]), options);
      const query = answer ? firstChild(answer, 'query', NS.private) : undefined;
      const stored = query ? firstChild(query, name, xmlns) : undefined;
      // An empty element is the server saying "nothing stored".
      if (stored && (stored.children.length > 0 || Object.keys(stored.attrs).length > 0)) yield { kind: 'private', element: stored };
    }
  }

  /** The PEP nodes on the account (disco#items on the bare JID). */
  private async pepNodeNames(options: ReadRemoteOptions): Promise<string[]> {
    const answer = await this.tryRequest('PEP node list', 'get', element('query', NS.discoItems), options, this.own);
    const query = answer ? firstChild(answer, 'query', NS.discoItems) : undefined;
    if (!query) return [];
    return [...new Set(childElements(query, 'item').map((i) => i.attrs.node).filter((n): n is string => n !== undefined && n !== ''))];
  }

  private async *pepNode(node: string, options: ReadRemoteOptions): AsyncGenerator<UserRecord> {
    const config: NodeConfigField[] = [];
    const configAnswer = await this.tryRequest(`PEP ${node} configuration`, 'get', element('pubsub', NS.pubsubOwner, {}, [element('configure', NS.pubsubOwner, { node })]), options);
    const form = configAnswer ? firstChild(firstChild(firstChild(configAnswer, 'pubsub', NS.pubsubOwner) ?? configAnswer, 'configure', NS.pubsubOwner) ?? configAnswer, 'x', NS.dataForms) : undefined;
    if (form) {
      for (const field of childElements(form, 'field', NS.dataForms)) {
        const name = field.attrs.var;
        if (!name || name === 'FORM_TYPE' || field.attrs.type === 'fixed') continue;
        config.push({ var: name, ...(field.attrs.type ? { type: field.attrs.type } : {}), values: childElements(field, 'value', NS.dataForms).map(textOf) });
      }
    }
    const affiliations: { jid: string; affiliation: PubsubAffiliation }[] = [];
    const affAnswer = await this.tryRequest(`PEP ${node} affiliations`, 'get', element('pubsub', NS.pubsubOwner, {}, [element('affiliations', NS.pubsubOwner, { node })]), options);
    const affList = affAnswer ? firstChild(firstChild(affAnswer, 'pubsub', NS.pubsubOwner) ?? affAnswer, 'affiliations', NS.pubsubOwner) : undefined;
    for (const a of affList ? childElements(affList, 'affiliation', NS.pubsubOwner) : []) {
      if (a.attrs.jid && a.attrs.affiliation) affiliations.push({ jid: a.attrs.jid, affiliation: a.attrs.affiliation as PubsubAffiliation });
    }
    const subscriptions: { jid: string; subscription: PubsubSubscriptionState; subid?: string }[] = [];
    const subAnswer = await this.tryRequest(`PEP ${node} subscriptions`, 'get', element('pubsub', NS.pubsubOwner, {}, [element('subscriptions', NS.pubsubOwner, { node })]), options);
    const subList = subAnswer ? firstChild(firstChild(subAnswer, 'pubsub', NS.pubsubOwner) ?? subAnswer, 'subscriptions', NS.pubsubOwner) : undefined;
    for (const s of subList ? childElements(subList, 'subscription', NS.pubsubOwner) : []) {
      if (s.attrs.jid && s.attrs.subscription) {
        subscriptions.push({ jid: s.attrs.jid, subscription: s.attrs.subscription as PubsubSubscriptionState, ...(s.attrs.subid ? { subid: s.attrs.subid } : {}) });
      }
    }
    const nodeRecord: PepNodeRecord = { kind: 'pep-node', node, config, affiliations, subscriptions };
    yield nodeRecord;
    yield* this.pepItems(node, options);
  }

  /** Items of a node, following RSM when the server pages them (XEP-0060 §6.5.4). */
  private async *pepItems(node: string, options: ReadRemoteOptions): AsyncGenerator<PepItemRecord> {
    let after: string | undefined;
    const seen = new Set<string>();
    for (;;) {
      const set = after !== undefined ? [element('set', NS.rsm, {}, [element('max', NS.rsm, {}, [String(options.pageSize)]), element('after', NS.rsm, {}, [after])])] : [];
      const answer = await this.tryRequest(`PEP ${node} items`, 'get', element('pubsub', NS.pubsub, {}, [element('items', NS.pubsub, { node }), ...set]), options, this.own);
      const pubsub = answer ? firstChild(answer, 'pubsub', NS.pubsub) : undefined;
      const items = pubsub ? firstChild(pubsub, 'items', NS.pubsub) : undefined;
      if (!items) return;
      let fresh = 0;
      for (const item of childElements(items, 'item', NS.pubsub)) {
        const id = item.attrs.id;
        if (!id || seen.has(id)) continue;
        seen.add(id);
        fresh++;
        const payload = item.children.find(isElement) ?? null;
        yield { kind: 'pep-item', node, id, payload, ...(item.attrs.publisher ? { publisher: item.attrs.publisher } : {}) };
      }
      const rsm = pubsub ? firstChild(pubsub, 'set', NS.rsm) : undefined;
      const last = rsm ? firstChild(rsm, 'last', NS.rsm) : undefined;
      if (!last || fresh === 0) return;
      after = textOf(last);
    }
  }

  private async privacy(options: ReadRemoteOptions): Promise<UserRecord | undefined> {
    const answer = await this.tryRequest('privacy lists', 'get', element('query', NS.privacy), options);
    const query = answer ? firstChild(answer, 'query', NS.privacy) : undefined;
    if (!query) return undefined;
    const names = childElements(query, 'list', NS.privacy).map((l) => l.attrs.name).filter((n): n is string => !!n);
    if (names.length === 0) return undefined;
    const lists: PrivacyList[] = [];
    for (const name of names) {
      const listAnswer = await this.tryRequest(`privacy list ${name}`, 'get', element('query', NS.privacy, {}, [element('list', NS.privacy, { name })]), options);
      const list = listAnswer ? firstChild(firstChild(listAnswer, 'query', NS.privacy) ?? listAnswer, 'list', NS.privacy) : undefined;
      if (!list) continue;
      const items: PrivacyItem[] = childElements(list, 'item', NS.privacy).map((i) => ({
        ...(i.attrs.type === 'jid' || i.attrs.type === 'group' || i.attrs.type === 'subscription' ? { type: i.attrs.type } : {}),
        ...(i.attrs.value !== undefined ? { value: i.attrs.value } : {}),
        action: i.attrs.action === 'allow' ? 'allow' : 'deny',
        order: Number(i.attrs.order ?? 0),
        stanzas: childElements(i)
          .map((c) => c.name)
          .filter((n): n is PrivacyItem['stanzas'][number] => n === 'message' || n === 'iq' || n === 'presence-in' || n === 'presence-out'),
      }));
      lists.push({ name, items });
    }
    const defaultList = firstChild(query, 'default', NS.privacy)?.attrs.name;
    return { kind: 'privacy', ...(defaultList ? { defaultList } : {}), lists };
  }

  /** MAM preferences have no place in XEP-0227: read so that the report can say what they were. */
  private async mamPreferences(options: ReadRemoteOptions): Promise<void> {
    const answer = await this.tryRequest('MAM preferences', 'get', element('prefs', NS.mam), options);
    const prefs = answer ? firstChild(answer, 'prefs', NS.mam) : undefined;
    if (prefs) {
      this.notes.warnings.push(`MAM preferences (default=${prefs.attrs.default ?? 'unknown'}) were read but are not carried: set them again on the new account`);
    }
  }

  /** The whole archive, oldest first, one RSM page per request. */
  private async *archive(options: ReadRemoteOptions): AsyncGenerator<ArchiveRecord> {
    let after: string | undefined;
    for (let pageNumber = 1; ; pageNumber++) {
      options.signal?.throwIfAborted();
      const queryid = randomBytes(6).toString('hex');
      let page: ArchiveRecord[] = [];
      let overflow = false;
      const remove = this.stream.onMessage((message) => {
        const result = firstChild(message, 'result', NS.mam);
        if (!result || result.attrs.queryid !== queryid) return;
        if (message.attrs.from !== undefined && bareJidIfValid(message.attrs.from) !== this.own) return;
        // One page is all that is held: a server sending more than asked for is not followed.
        if (page.length >= options.pageSize) {
          overflow = true;
          return;
        }
        const record = this.archiveRecord(result);
        if (record) page.push(record);
      });
      let fin: XmlElement | undefined;
      try {
        const set = [element('max', NS.rsm, {}, [String(options.pageSize)]), ...(after !== undefined ? [element('after', NS.rsm, {}, [after])] : [])];
        const answer = await this.request('archive', 'set', element('query', NS.mam, { queryid }, [element('set', NS.rsm, {}, set)]), options, undefined, () => {
          page = [];
          overflow = false;
        });
        fin = firstChild(answer, 'fin', NS.mam);
      } catch (err) {
        if (err instanceof XmppStanzaError) {
          this.notes.refused.push(`archive: ${err.condition}`);
          return;
        }
        throw err;
      } finally {
        remove();
      }
      if (!fin) throw new XmppPullError('protocol', 'MAM answer without <fin>');
      if (overflow) throw new XmppPullError('protocol', `the server sent more than ${options.pageSize} archived messages for one page`);
      const rsm = firstChild(fin, 'set', NS.rsm);
      const count = rsm ? firstChild(rsm, 'count', NS.rsm) : undefined;
      if (count && this.notes.archiveTotal === undefined) this.notes.archiveTotal = Number(textOf(count));
      const last = rsm ? firstChild(rsm, 'last', NS.rsm) : undefined;
      const more = fin.attrs.complete !== 'true' && last !== undefined && page.length > 0;
      // Prosody 13 leaves the count out of every page unless archives expire (it would count a
      // possibly unbounded archive per page) but gives it for an empty page: asked once, for
      // the progress the faces show, and only when there is more than this page.
      if (pageNumber === 1 && more && this.notes.archiveTotal === undefined) await this.archiveCount(options);
      for (const record of page) {
        this.notes.archiveRead++;
        yield record;
      }
      if (!more || last === undefined) return;
      after = textOf(last);
    }
  }

  /** XEP-0059 §2.7: a page of `max` 0 asks for the count alone. A server that cannot say leaves the total unknown. */
  private async archiveCount(options: ReadRemoteOptions): Promise<void> {
    const queryid = randomBytes(6).toString('hex');
    const answer = await this.tryRequest('archive count', 'set', element('query', NS.mam, { queryid }, [element('set', NS.rsm, {}, [element('max', NS.rsm, {}, ['0'])])]), options);
    const fin = answer ? firstChild(answer, 'fin', NS.mam) : undefined;
    const rsm = fin ? firstChild(fin, 'set', NS.rsm) : undefined;
    const count = rsm ? firstChild(rsm, 'count', NS.rsm) : undefined;
    const total = count ? Number(textOf(count)) : Number.NaN;
    if (Number.isSafeInteger(total) && total >= 0) this.notes.archiveTotal = total;
  }

  private archiveRecord(result: XmlElement): ArchiveRecord | undefined {
    const id = result.attrs.id;
    const forwarded = firstChild(result, 'forwarded', NS.forward);
    const message = forwarded ? firstChild(forwarded, 'message', NS.client) : undefined;
    const delay = forwarded ? firstChild(forwarded, 'delay', NS.delay) : undefined;
    const timestamp = delay?.attrs.stamp ? normaliseTimestamp(delay.attrs.stamp) : undefined;
    if (!id || !message || !timestamp) {
      this.notes.refused.push(`archive: a result without id, message or time was skipped${id ? ` (${id})` : ''}`);
      return undefined;
    }
    const from = message.attrs.from ? bareJidIfValid(message.attrs.from) : this.own;
    const to = message.attrs.to ? bareJidIfValid(message.attrs.to) : this.own;
    if (from === undefined || to === undefined) {
      this.notes.refused.push(`archive: message ${id} with an invalid JID was skipped`);
      return undefined;
    }
    const other = from === this.own ? to : from;
    return { kind: 'archive', id, timestamp, ...(other ? { with: other } : {}), stanza: message };
  }
}
