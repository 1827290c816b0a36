/**
 * Record conversion: the element trees the reader captures, turned into records. A refusal is a
 * {@link RecordError} naming the element at fault; the parser finds its position in the document.
 */
import { formatJid, parseJid, storedBareJid } from '../../lib/jid.js';
import {
  NS,
  childElements,
  firstChild,
  textOf,
  type ArchiveRecord,
  type NodeConfigField,
  type OfflineRecord,
  type PepItemRecord,
  type PepNodeRecord,
  type PrivacyItem,
  type PrivacyList,
  type PrivacyRecord,
  type PubsubAffiliation,
  type PubsubSubscriptionState,
  type RosterItem,
  type RosterRecord,
  type ScramCredentials,
  type ScramMechanism,
  type Subscription,
  type UserRecord,
  type XmlElement,
} from '../../records/model.js';
import { normaliseTimestamp } from '../../records/timestamp.js';
import type { Xep0227ErrorCode } from '../errors.js';

const XPORTA_PUBLISHED = `{${NS.xporta}}published`;
const XPORTA_WITH = `{${NS.xporta}}with`;
const XPORTA_TIMESTAMP = `{${NS.xporta}}timestamp`;
/** Marks the `<delay>` xporta's writer adds to an offline message for the storage time. */
const XPORTA_STORAGE = `{${NS.xporta}}storage`;

// ---------------------------------------------------------------------------------------------
// JIDs

/** Normalises a JID as src/lib/jid.ts does (nodeprep-compatible localpart, lower-case domain); throws when invalid. */
export function validateJid(value: string): string {
  return formatJid(parseJid(value));
}

export type JidForm = 'domain' | 'bare' | 'bare-of-any';

/** The one place the reader validates a JID: normalised, and checked to have the form asked for. */
export function normaliseJid(value: string, form: JidForm): string {
  const jid = validateJid(value);
  const slash = jid.indexOf('/');
  if (form === 'domain' && (jid.includes('@') || slash !== -1)) throw new Error('expected a domain');
  if (form === 'bare' && slash !== -1) throw new Error('expected a bare JID');
  return slash === -1 ? jid : jid.slice(0, slash);
}

/** Bare JID with a lower-cased domain, without validation: only for deriving `with`. */
function looseBare(jid: string): string {
  const bare = storedBareJid(jid);
  const at = bare.indexOf('@');
  const domain = at === -1 ? bare : bare.slice(at + 1);
  // Domains are almost always lower-case already; then the JID needs no new string.
  if (!/[^a-z0-9.-]/.test(domain)) return bare;
  return at === -1 ? bare.toLowerCase() : `${bare.slice(0, at)}@${domain.toLowerCase()}`;
}

// ---------------------------------------------------------------------------------------------
// Values

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;

function decodeBase64(text: string): Buffer | undefined {
  const compact = text.replace(/[\t\n\r ]+/g, '');
  return BASE64.test(compact) ? Buffer.from(compact, 'base64') : undefined;
}

const SCRAM_KEY_BYTES: Record<ScramMechanism, number> = { 'SCRAM-SHA-1': 20, 'SCRAM-SHA-256': 32 };
const SUBSCRIPTIONS: ReadonlySet<string> = new Set<Subscription>(['none', 'to', 'from', 'both', 'remove']);
const AFFILIATIONS: ReadonlySet<string> = new Set<PubsubAffiliation>([
  'owner',
  'publisher',
  'publish-only',
  'member',
  'none',
  'outcast',
]);
const SUBSCRIPTION_STATES: ReadonlySet<string> = new Set<PubsubSubscriptionState>([
  'subscribed',
  'pending',
  'unconfigured',
  'none',
]);
const PRIVACY_STANZAS: ReadonlySet<string> = new Set(['message', 'iq', 'presence-in', 'presence-out']);
/** Namespaces a stored stanza ends up in when its writer left out `xmlns='jabber:client'`. */
export const STANZA_NS_TO_ADOPT: ReadonlySet<string> = new Set(['', NS.pie, NS.pieLegacy, NS.forward, NS.server]);

/** Moves an element, and its descendants that inherited its namespace, into another namespace. */
function adoptNamespace(el: XmlElement, from: string, to: string): XmlElement {
  if (el.xmlns !== from || from === to) return el;
  return {
    name: el.name,
    xmlns: to,
    attrs: el.attrs,
    children: el.children.map((c) => (typeof c === 'string' ? c : adoptNamespace(c, from, to))),
  };
}

function asClientStanza(el: XmlElement): XmlElement | undefined {
  if (el.xmlns === NS.client) return el;
  return STANZA_NS_TO_ADOPT.has(el.xmlns) ? adoptNamespace(el, el.xmlns, NS.client) : undefined;
}

// ---------------------------------------------------------------------------------------------
// Converters

export class RecordError extends Error {
  constructor(
    readonly code: Xep0227ErrorCode,
    message: string,
    readonly at: XmlElement,
  ) {
    super(message);
  }
}

function required(el: XmlElement, name: string): string {
  const value = el.attrs[name];
  if (value === undefined) throw new RecordError('missing-attribute', `<${el.name}> has no '${name}' attribute`, el);
  return value;
}

function jidAttr(el: XmlElement, name: string, form: JidForm): string {
  const value = required(el, name);
  try {
    return normaliseJid(value, form);
  } catch (err) {
    throw new RecordError('invalid-jid', `<${el.name} ${name}='${value}'>: ${(err as Error).message}`, el);
  }
}

export function invalid(el: XmlElement, message: string): never {
  throw new RecordError('invalid-value', message, el);
}

function timestampAttr(el: XmlElement, key: string, label: string): string | undefined {
  const value = el.attrs[key];
  if (value === undefined) return undefined;
  return normaliseTimestamp(value) ?? invalid(el, `<${el.name}> ${label} is not an XEP-0082 date-time: ${value}`);
}

export function toRoster(el: XmlElement): RosterRecord {
  const items: RosterItem[] = childElements(el, 'item', el.xmlns).map((item) => {
    const jid = jidAttr(item, 'jid', 'bare');
    const subscription = item.attrs.subscription ?? 'none';
    if (!SUBSCRIPTIONS.has(subscription)) invalid(item, `roster item ${jid}: unknown subscription '${subscription}'`);
    const ask = item.attrs.ask;
    if (ask !== undefined && ask !== 'subscribe') invalid(item, `roster item ${jid}: unknown ask '${ask}'`);
    const approved = item.attrs.approved;
    if (approved !== undefined && !['true', '1', 'false', '0'].includes(approved)) {
      invalid(item, `roster item ${jid}: approved must be a boolean, not '${approved}'`);
    }
    return {
      jid,
      ...(item.attrs.name === undefined ? {} : { name: item.attrs.name }),
      subscription: subscription as Subscription,
      ...(ask === undefined ? {} : { ask }),
      ...(approved === undefined ? {} : { approved: approved === 'true' || approved === '1' }),
      groups: childElements(item, 'group', el.xmlns).map(textOf),
    };
  });
  // Prosody writes `version`, RFC 6121 and everyone else `ver`.
  const version = el.attrs.ver ?? el.attrs.version;
  return { kind: 'roster', ...(version === undefined ? {} : { version }), items };
}

export function toPending(el: XmlElement): UserRecord {
  if (el.attrs.type !== 'subscribe') return { kind: 'opaque', element: el };
  const from = jidAttr(el, 'from', 'bare-of-any');
  // Prosody leaves the presence in the pie namespace; its children inherited that by accident.
  const payload = childElements(el).map((child) => adoptNamespace(child, el.xmlns, NS.client));
  return { kind: 'pending-subscription', from, payload };
}

export function toPepNodes(el: XmlElement): UserRecord[] {
  interface Node {
    config: NodeConfigField[];
    affiliations: PepNodeRecord['affiliations'][number][];
    subscriptions: PepNodeRecord['subscriptions'][number][];
  }
  // Grouped by node because exporters list configure/affiliations/subscriptions in any order.
  const nodes = new Map<string, Node>();
  const unknown: XmlElement[] = [];
  for (const child of childElements(el)) {
    if (child.xmlns !== NS.pubsubOwner || !['configure', 'affiliations', 'subscriptions'].includes(child.name)) {
      unknown.push(child);
      continue;
    }
    const name = required(child, 'node');
    let node = nodes.get(name);
    if (!node) {
      node = { config: [], affiliations: [], subscriptions: [] };
      nodes.set(name, node);
    }
    if (child.name === 'configure') {
      const form = firstChild(child, 'x', NS.dataForms);
      for (const field of form ? childElements(form, 'field', NS.dataForms) : []) {
        const fieldVar = field.attrs.var;
        if (fieldVar === undefined || fieldVar === 'FORM_TYPE') continue;
        node.config.push({
          var: fieldVar,
          ...(field.attrs.type === undefined ? {} : { type: field.attrs.type }),
          values: childElements(field, 'value', NS.dataForms).map(textOf),
        });
      }
    } else if (child.name === 'affiliations') {
      for (const a of childElements(child, 'affiliation', NS.pubsubOwner)) {
        const jid = required(a, 'jid');
        const affiliation = required(a, 'affiliation');
        if (!AFFILIATIONS.has(affiliation)) invalid(a, `node ${name}: unknown affiliation '${affiliation}'`);
        node.affiliations.push({ jid, affiliation: affiliation as PubsubAffiliation });
      }
    } else {
      for (const s of childElements(child, 'subscription', NS.pubsubOwner)) {
        const jid = required(s, 'jid');
        // Prosody 0.12 writes the state as `subscribed='subscribed'`.
        const state = s.attrs.subscription ?? s.attrs.subscribed;
        if (state === undefined) throw new RecordError('missing-attribute', `<subscription> has no 'subscription' attribute`, s);
        if (!SUBSCRIPTION_STATES.has(state)) invalid(s, `node ${name}: unknown subscription state '${state}'`);
        node.subscriptions.push({
          jid,
          subscription: state as PubsubSubscriptionState,
          ...(s.attrs.subid === undefined ? {} : { subid: s.attrs.subid }),
        });
      }
    }
  }
  const records: UserRecord[] = [...nodes].map(([node, data]) => ({ kind: 'pep-node', node, ...data }));
  // Whatever else the owner element held is kept, in an owner element of its own.
  if (unknown.length > 0) records.push({ kind: 'opaque', element: { ...el, children: unknown } });
  return records;
}

export function toPepItem(el: XmlElement, node: string): PepItemRecord {
  const id = required(el, 'id');
  const payloads = childElements(el);
  if (payloads.length > 1) invalid(el, `item ${id} of node ${node} has more than one payload`);
  const published = timestampAttr(el, XPORTA_PUBLISHED, 'published');
  return {
    kind: 'pep-item',
    node,
    id,
    payload: payloads[0] ?? null,
    ...(el.attrs.publisher === undefined ? {} : { publisher: el.attrs.publisher }),
    ...(published === undefined ? {} : { published }),
  };
}

export function toArchive(el: XmlElement, userJid: string): ArchiveRecord {
  const id = required(el, 'id');
  const forwarded = firstChild(el, 'forwarded', NS.forward) ?? invalid(el, `archived message ${id} has no <forwarded>`);
  const delay = firstChild(forwarded, 'delay', NS.delay) ?? invalid(forwarded, `archived message ${id} has no <delay>`);
  const timestamp = timestampAttr(delay, 'stamp', 'stamp') ?? invalid(delay, `archived message ${id}: <delay> has no stamp`);
  const message = childElements(forwarded).find((c) => c.name === 'message');
  if (!message) invalid(forwarded, `archived message ${id} has no <message>`);
  const stanza = asClientStanza(message) ?? invalid(message, `archived message ${id} is in namespace ${message.xmlns}`);
  return archiveRecord(id, timestamp, stanza, el.attrs[XPORTA_WITH], userJid);
}

/**
 * {@link toArchive} of an item the reader's fast path took apart (read/archive-item.ts): its
 * `<forwarded>` holds `<delay>` and then the `jabber:client` `stanza`, nothing else. Undefined
 * where toArchive would refuse the item: the parser then reads it again and reports where.
 */
export function toArchiveFromParts(
  resultAttrs: Readonly<Record<string, string>>,
  delayAttrs: Readonly<Record<string, string>>,
  stanza: XmlElement,
  userJid: string,
): ArchiveRecord | undefined {
  const id = resultAttrs.id;
  const stamp = delayAttrs.stamp;
  if (id === undefined || stamp === undefined) return undefined;
  const timestamp = isUtcStamp(stamp) ? stamp : normaliseTimestamp(stamp);
  return timestamp === undefined ? undefined : archiveRecord(id, timestamp, stanza, resultAttrs[XPORTA_WITH], userJid);
}

function archiveRecord(id: string, timestamp: string, stanza: XmlElement, withAttr: string | undefined, userJid: string): ArchiveRecord {
  let peer = withAttr;
  if (peer === undefined) {
    const { from, to } = stanza.attrs;
    const fromBare = from === undefined ? undefined : looseBare(from);
    if (fromBare !== undefined && fromBare !== userJid) peer = fromBare;
    else if (to !== undefined) peer = looseBare(to);
  }
  // Two literals rather than a spread: this runs once per archived message.
  return peer === undefined ? { kind: 'archive', id, timestamp, stanza } : { kind: 'archive', id, timestamp, with: peer, stanza };
}

/** Digit at `at` of `s`, -1 for any other character. */
function digitAt(s: string, at: number): number {
  const d = s.charCodeAt(at) - 48;
  return d >= 0 && d <= 9 ? d : -1;
}

/** Two digits at `at` as a number, -1 unless both are digits. */
function twoDigits(s: string, at: number): number {
  const a = digitAt(s, at);
  const b = digitAt(s, at + 1);
  return a < 0 || b < 0 ? -1 : a * 10 + b;
}

/**
 * Whether `value` is `YYYY-MM-DDThh:mm:ssZ` with fields normaliseTimestamp accepts, which then
 * returns it unchanged: the form of nearly every stamp, checked without a regular expression's
 * match array.
 */
function isUtcStamp(value: string): boolean {
  if (value.length !== 20 || value.charCodeAt(19) !== 0x5a /* Z */) return false;
  if (value.charCodeAt(4) !== 0x2d || value.charCodeAt(7) !== 0x2d || value.charCodeAt(10) !== 0x54) return false;
  if (value.charCodeAt(13) !== 0x3a || value.charCodeAt(16) !== 0x3a) return false;
  const century = twoDigits(value, 0);
  const yy = twoDigits(value, 2);
  const month = twoDigits(value, 5);
  const day = twoDigits(value, 8);
  const hour = twoDigits(value, 11);
  const minute = twoDigits(value, 14);
  const second = twoDigits(value, 17);
  if (century < 0 || yy < 0 || century * 100 + yy < 1) return false;
  return month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour >= 0 && hour <= 23 && minute >= 0 && minute <= 59 && second >= 0 && second <= 60;
}

export function toOffline(el: XmlElement): OfflineRecord {
  let stanza = asClientStanza(el) ?? invalid(el, `offline message in namespace ${el.xmlns}`);
  let timestamp = timestampAttr(stanza, XPORTA_TIMESTAMP, 'timestamp');
  if (timestamp !== undefined) {
    const { [XPORTA_TIMESTAMP]: _, ...attrs } = stanza.attrs;
    stanza = { ...stanza, attrs };
  } else {
    const added = childElements(stanza, 'delay', NS.delay).find((d) => d.attrs[XPORTA_STORAGE] === 'true');
    const stamp = (added ?? firstChild(stanza, 'delay', NS.delay))?.attrs.stamp;
    timestamp = stamp === undefined ? undefined : normaliseTimestamp(stamp);
    if (added && timestamp !== undefined) stanza = { ...stanza, children: stanza.children.filter((c) => c !== added) };
  }
  return { kind: 'offline', ...(timestamp === undefined ? {} : { timestamp }), stanza };
}

export function toPrivacy(el: XmlElement): PrivacyRecord {
  const defaultList = firstChild(el, 'default', el.xmlns)?.attrs.name;
  const lists: PrivacyList[] = childElements(el, 'list', el.xmlns).map((list) => {
    const name = required(list, 'name');
    const items: PrivacyItem[] = childElements(list, 'item', el.xmlns).map((item) => {
      const action = required(item, 'action');
      if (action !== 'allow' && action !== 'deny') invalid(item, `privacy list ${name}: unknown action '${action}'`);
      const order = required(item, 'order');
      if (!/^\d{1,15}$/.test(order)) invalid(item, `privacy list ${name}: order must be an unsigned integer, not '${order}'`);
      const type = item.attrs.type;
      if (type !== undefined && type !== 'jid' && type !== 'group' && type !== 'subscription') {
        invalid(item, `privacy list ${name}: unknown item type '${type}'`);
      }
      return {
        ...(type === undefined ? {} : { type }),
        ...(item.attrs.value === undefined ? {} : { value: item.attrs.value }),
        action,
        order: Number(order),
        stanzas: childElements(item)
          .map((c) => c.name)
          .filter((n): n is PrivacyItem['stanzas'][number] => PRIVACY_STANZAS.has(n)),
      };
    });
    return { name, items };
  });
  return { kind: 'privacy', ...(defaultList === undefined ? {} : { defaultList }), lists };
}

/**
 * SCRAM credentials, or undefined for a mechanism the model has no place for. The hash is the
 * one the key length says (20 bytes SHA-1, 32 bytes SHA-256): prosody-migrator labels SHA-256
 * keys `SCRAM-SHA-1`, so a label that disagrees gives a warning, not a refusal.
 */
export function toScram(el: XmlElement): { scram: ScramCredentials; warning?: string } | undefined {
  const mechanism = required(el, 'mechanism');
  if (!Object.hasOwn(SCRAM_KEY_BYTES, mechanism)) return undefined;
  const mech = mechanism as ScramMechanism;
  const text = (name: string): { el: XmlElement; value: string } => {
    const found = childElements(el, name, el.xmlns);
    if (found.length !== 1) invalid(el, `${mech} credentials need exactly one <${name}>`);
    const child = found[0] as XmlElement;
    return { el: child, value: textOf(child).trim() };
  };
  const iter = text('iter-count');
  if (!/^[1-9]\d{0,9}$/.test(iter.value) || Number(iter.value) > 0x7fffffff) {
    invalid(iter.el, `${mech} iteration count must be a positive integer, not '${iter.value}'`);
  }
  const fields = { salt: text('salt'), serverKey: text('server-key'), storedKey: text('stored-key') };
  const decoded = {} as Record<keyof typeof fields, Buffer>;
  for (const key of Object.keys(fields) as (keyof typeof fields)[]) {
    const field = fields[key];
    decoded[key] = decodeBase64(field.value) ?? invalid(field.el, `${mech} <${field.el.name}> is not base64`);
  }
  // ejabberd 23.01 base64-encodes the base64 text it keeps in SQL. A real key's raw bytes are
  // never themselves base64 of 20 or 32 bytes (that text is 27+ characters), so this is unambiguous.
  const inner = decodeBase64(decoded.serverKey.toString('latin1'));
  if (inner && (inner.length === 20 || inner.length === 32)) {
    for (const key of Object.keys(fields) as (keyof typeof fields)[]) {
      const field = fields[key];
      decoded[key] =
        decodeBase64(decoded[key].toString('latin1')) ??
        invalid(field.el, `${mech} <${field.el.name}> is double-encoded in part only`);
    }
  }
  const serverKeyBytes = decoded.serverKey.length;
  const byLength = (Object.keys(SCRAM_KEY_BYTES) as ScramMechanism[]).find((m) => SCRAM_KEY_BYTES[m] === serverKeyBytes);
  if (byLength === undefined) {
    invalid(fields.serverKey.el, `${mech} <server-key> must be 20 (SHA-1) or 32 (SHA-256) bytes, not ${serverKeyBytes}`);
  }
  if (decoded.storedKey.length !== serverKeyBytes) {
    invalid(fields.storedKey.el, `${mech} <stored-key> must be ${serverKeyBytes} bytes like <server-key>, not ${decoded.storedKey.length}`);
  }
  if (decoded.salt.length === 0) invalid(fields.salt.el, `${mech} salt is empty`);
  const scram: ScramCredentials = {
    mechanism: byLength,
    iterationCount: Number(iter.value),
    salt: decoded.salt.toString('base64'),
    storedKey: decoded.storedKey.toString('base64'),
    serverKey: decoded.serverKey.toString('base64'),
  };
  if (byLength === mech) return { scram };
  return {
    scram,
    warning: `credentials labelled ${mech} have ${serverKeyBytes}-byte keys: imported as ${byLength}`,
  };
}

export function toBlocklist(el: XmlElement): UserRecord {
  return { kind: 'blocklist', items: childElements(el, 'item', el.xmlns).map((item) => required(item, 'jid')) };
}

/** `child` wrapped in a container element: how an unknown child of a streamed container is kept. */
export function wrapIn(name: string, xmlns: string, attrs: Record<string, string>, child: XmlElement): XmlElement {
  return { name, xmlns, attrs, children: [child] };
}
