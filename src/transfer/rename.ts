/**
 * Renaming or moving an account: the rewrite of its own bare JID, wherever its records refer to
 * it, into the new one. Records are never mutated; what does not change is returned as it is.
 */
import { formatJid, JidError, parseJid, type Jid } from '../lib/jid.js';
import type { PepNodeRecord, PrivacyRecord, RosterItem, UserRecord, XmlElement, XmlNode } from '../records/model.js';
import { textOf } from '../records/model.js';

/**
 * Maps references to one bare JID onto another. Archives repeat the same few JIDs millions of
 * times, so results are cached; the cache is bounded because attribute values are untrusted.
 */
class JidMapper {
  private readonly cache = new Map<string, string | null>();
  private static readonly CACHE_LIMIT = 4096;

  constructor(
    private readonly from: string,
    private readonly to: Jid,
  ) {}

  /** The replacement for a bare or full JID of `from`; undefined for anything else, even invalid JIDs. */
  map(value: string): string | undefined {
    // The old JID has a localpart, and only an ASCII `@` can separate one.
    if (!value.includes('@')) return undefined;
    let result = this.cache.get(value);
    if (result === undefined) {
      result = this.compute(value);
      if (this.cache.size >= JidMapper.CACHE_LIMIT) this.cache.clear();
      this.cache.set(value, result);
    }
    return result ?? undefined;
  }

  /** Like {@link map}, but only for the bare JID itself. */
  mapBare(value: string): string | undefined {
    const mapped = this.map(value);
    return mapped !== undefined && !mapped.includes('/') ? mapped : undefined;
  }

  private compute(value: string): string | null {
    let jid: Jid;
    try {
      jid = parseJid(value);
    } catch (err) {
      if (err instanceof JidError) return null;
      throw err;
    }
    if (jid.local === undefined || `${jid.local}@${jid.domain}` !== this.from) return null;
    return formatJid(jid.resource === undefined ? this.to : { ...this.to, resource: jid.resource });
  }
}

function parseAccountJid(value: string, role: 'from' | 'to'): Jid {
  const jid = parseJid(value);
  if (jid.local === undefined || jid.resource !== undefined) {
    throw new JidError(`${role} must be a bare JID with a localpart`);
  }
  return jid;
}

/**
 * Rewrites the selected attributes of an element tree; returns the same objects wherever nothing
 * changed. Text is never touched: message bodies quote JIDs without referring to the account.
 */
function rewriteAttributes(
  el: XmlElement,
  mapper: JidMapper,
  selected: (name: string) => boolean,
): XmlElement {
  let attrs: Record<string, string> | undefined;
  for (const [name, value] of Object.entries(el.attrs)) {
    if (!selected(name)) continue;
    const mapped = mapper.map(value);
    if (mapped !== undefined && mapped !== value) {
      attrs ??= { ...el.attrs };
      attrs[name] = mapped;
    }
  }
  let children: XmlNode[] | undefined;
  el.children.forEach((child, i) => {
    if (typeof child === 'string') return;
    const rewritten = rewriteAttributes(child, mapper, selected);
    if (rewritten !== child) {
      children ??= [...el.children];
      children[i] = rewritten;
    }
  });
  if (attrs === undefined && children === undefined) return el;
  return { ...el, attrs: attrs ?? el.attrs, children: children ?? el.children };
}

const STANZA_JID_ATTRIBUTES: ReadonlySet<string> = new Set(['from', 'to', 'jid', 'by']);
const isStanzaJidAttribute = (name: string): boolean => STANZA_JID_ATTRIBUTES.has(name);
const isJidAttribute = (name: string): boolean => name === 'jid';
const anyAttribute = (): boolean => true;

/** Maps each item; returns the input array when nothing changed. */
function mapShared<T>(items: readonly T[], fn: (item: T) => T): readonly T[] {
  let out: T[] | undefined;
  items.forEach((item, i) => {
    const mapped = fn(item);
    if (mapped !== item) {
      out ??= [...items];
      out[i] = mapped;
    }
  });
  return out ?? items;
}

/**
 * Keeps the first item per key. Only called after a rewrite, which can make a former self-contact
 * collide with an existing entry for the new JID; storage keys would reject the duplicate.
 */
function dedupe<T>(items: readonly T[], key: (item: T) => string): readonly T[] {
  const seen = new Set<string>();
  const out = items.filter((item) => {
    const k = key(item);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  return out.length === items.length ? items : out;
}

function rewriteVCard(vcard: XmlElement, mapper: JidMapper): XmlElement {
  let children: XmlNode[] | undefined;
  vcard.children.forEach((child, i) => {
    if (typeof child === 'string' || child.name !== 'JABBERID' || child.xmlns !== vcard.xmlns) return;
    const mapped = mapper.mapBare(textOf(child).trim());
    if (mapped !== undefined && mapped !== textOf(child)) {
      children ??= [...vcard.children];
      children[i] = { ...child, children: [mapped] };
    }
  });
  return children === undefined ? vcard : { ...vcard, children };
}

function rewriteRoster(items: readonly RosterItem[], mapper: JidMapper): readonly RosterItem[] {
  const mapped = mapShared(items, (item) => {
    const jid = mapper.map(item.jid);
    return jid === undefined || jid === item.jid ? item : { ...item, jid };
  });
  return mapped === items ? items : dedupe(mapped, (item) => item.jid);
}

function rewritePepNode(record: PepNodeRecord, mapper: JidMapper): PepNodeRecord {
  const rewriteJid = <T extends { readonly jid: string }>(entry: T): T => {
    const jid = mapper.map(entry.jid);
    return jid === undefined || jid === entry.jid ? entry : { ...entry, jid };
  };
  let affiliations = mapShared(record.affiliations, rewriteJid);
  if (affiliations !== record.affiliations) affiliations = dedupe(affiliations, (a) => a.jid);
  let subscriptions = mapShared(record.subscriptions, rewriteJid);
  if (subscriptions !== record.subscriptions) {
    subscriptions = dedupe(subscriptions, (s) => `${s.jid}\u0000${s.subid ?? ''}`);
  }
  if (affiliations === record.affiliations && subscriptions === record.subscriptions) return record;
  return { ...record, affiliations, subscriptions };
}

function rewritePrivacy(record: PrivacyRecord, mapper: JidMapper): PrivacyRecord {
  const lists = mapShared(record.lists, (list) => {
    const items = mapShared(list.items, (item) => {
      if (item.type !== 'jid' || item.value === undefined) return item;
      const value = mapper.map(item.value);
      return value === undefined || value === item.value ? item : { ...item, value };
    });
    return items === list.items ? list : { ...list, items };
  });
  return lists === record.lists ? record : { ...record, lists };
}

function rewriteWith(mapper: JidMapper, record: UserRecord): UserRecord {
  switch (record.kind) {
    case 'roster': {
      const items = rewriteRoster(record.items, mapper);
      return items === record.items ? record : { ...record, items };
    }
    case 'pending-subscription': {
      const from = mapper.map(record.from);
      return from === undefined || from === record.from ? record : { ...record, from };
    }
    case 'vcard': {
      const vcard = rewriteVCard(record.vcard, mapper);
      return vcard === record.vcard ? record : { ...record, vcard };
    }
    case 'private':
    case 'opaque': {
      const element = rewriteAttributes(record.element, mapper, anyAttribute);
      return element === record.element ? record : { ...record, element };
    }
    case 'pep-node':
      return rewritePepNode(record, mapper);
    case 'pep-item': {
      const payload = record.payload === null ? null : rewriteAttributes(record.payload, mapper, isJidAttribute);
      const publisher = record.publisher === undefined ? undefined : mapper.map(record.publisher);
      if (payload === record.payload && (publisher === undefined || publisher === record.publisher)) return record;
      return { ...record, payload, ...(publisher === undefined ? {} : { publisher }) };
    }
    case 'archive': {
      const stanza = rewriteAttributes(record.stanza, mapper, isStanzaJidAttribute);
      const withJid = record.with === undefined ? undefined : mapper.map(record.with);
      if (stanza === record.stanza && (withJid === undefined || withJid === record.with)) return record;
      return { ...record, stanza, ...(withJid === undefined ? {} : { with: withJid }) };
    }
    case 'offline': {
      const stanza = rewriteAttributes(record.stanza, mapper, isStanzaJidAttribute);
      return stanza === record.stanza ? record : { ...record, stanza };
    }
    case 'blocklist': {
      const items = mapShared(record.items, (item) => mapper.map(item) ?? item);
      return items === record.items ? record : { ...record, items: dedupe(items, (item) => item) };
    }
    case 'privacy':
      return rewritePrivacy(record, mapper);
    default: {
      const unreachable: never = record;
      return unreachable;
    }
  }
}

/**
 * A reusable rewriter from one bare account JID to another (e.g. `alice@old` → `bob@new`); reuse
 * it across a user's records so its cache pays off. Throws {@link JidError} when `from` or `to` is
 * not a bare JID with a localpart.
 *
 * References to `from` (bare, or full — keeping the resource) become references to `to`; all
 * comparison is on normalised forms. What counts as a reference depends on the kind: see the
 * tests. Records are never mutated; unchanged records and subtrees are returned as they are.
 */
export function createRecordRewriter(from: string, to: string): (record: UserRecord) => UserRecord {
  const fromJid = parseAccountJid(from, 'from');
  const toJid = parseAccountJid(to, 'to');
  const fromBare = formatJid(fromJid);
  if (fromBare === formatJid(toJid)) return (record) => record;
  const mapper = new JidMapper(fromBare, toJid);
  return (record) => rewriteWith(mapper, record);
}

export function rewriteRecord(record: UserRecord, from: string, to: string): UserRecord {
  return createRecordRewriter(from, to)(record);
}

/**
 * Streams {@link rewriteRecord} over records. As with any async generator, nothing runs until the
 * first `next()`, so an invalid `from`/`to` surfaces there, before any record is read.
 */
export async function* rewriteRecords(
  records: AsyncIterable<UserRecord>,
  from: string,
  to: string,
): AsyncGenerator<UserRecord, void, undefined> {
  const rewrite = createRecordRewriter(from, to);
  for await (const record of records) yield rewrite(record);
}
