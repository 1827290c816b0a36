/**
 * Streaming XEP-0227 reader: bytes in, document events out.
 *
 * saxes is fed one slice of at most 64 KiB at a time; the events it produces go into a small
 * queue, and the next slice is parsed only when the consumer has taken them all. Memory is thus
 * bounded by one slice plus one record's element tree (itself bounded by `maxElementBytes`), no
 * matter how large the archive inside is.
 *
 * Accepted dialects besides the XEP's own: Prosody's mod_storage_xep0227 (pending presences
 * without a namespace, `subscribed=` on PEP subscriptions, roster `version=`, extended-xep0227
 * attributes, archived messages without `jabber:client`) and ejabberd's export_piefxis (the
 * pre-1.0 namespace, double-base64 SCRAM values, XIncluded host files).
 *
 * Nothing inside `<user>` is dropped: elements without a typed record become `opaque` records,
 * unknown children of the streamed containers (archive, offline-messages, pubsub items) become
 * opaque records wrapped in their container, so that writing them back gives the same tree.
 * Unknown children of `<server-data>` and `<host>` are skipped.
 */
import { formatJid, parseJid } from '../lib/jid.js';
import { createReadStream } from 'node:fs';
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { SaxesParser, type SaxesTagNS } from 'saxes';
import { Xep0227Error, type Xep0227ErrorCode } from './errors.js';
import {
  NS,
  childElements,
  firstChild,
  textOf,
  type ArchiveRecord,
  type DocumentEvent,
  type NodeConfigField,
  type OfflineRecord,
  type OpaqueRecord,
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
  type UserStart,
  type XmlElement,
} from '../records/model.js';
import { readArchiveItem } from './archive-item.js';
import { measureText, skipXmlSpace } from '../xml/chars.js';
import { ElementBuilder, attributeKey } from '../xml/parse.js';
import { betweenMarkup, listen, skipOver } from '../xml/saxes-internals.js';
import { XIncludeError, includeTarget, resolveInclude } from './xinclude.js';

export interface ReaderOptions {
  /** Deepest element nesting accepted, counting `<server-data>` as 1. Default 64. */
  readonly maxDepth?: number;
  /**
   * Largest single record subtree (a vCard with its photo, one archived message, one PEP item),
   * in bytes of the document; also bounds any run of bytes the parser buffers between two
   * events. Default 16 MiB.
   */
  readonly maxElementBytes?: number;
  /**
   * Most elements in a single record subtree, the record's own element included. Bounds the
   * memory a record's tree takes whatever its byte size: empty elements cost a few bytes of
   * document each but far more as objects. Default 50,000.
   */
  readonly maxElementNodes?: number;
  /** Largest document in bytes, XIncluded files included. Default unlimited. */
  readonly maxDocumentBytes?: number;
  /** Directory that XIncluded files must lie in; relative hrefs of the main document resolve against it. */
  readonly baseDir?: string;
  /** Follow `<xi:include>` children of `<server-data>` and `<host>`; needs `baseDir`. Default false. */
  readonly allowXInclude?: boolean;
  /**
   * Root elements the main document may have: `<server-data>` (the default) and, for host
   * imports, a `<host>` root as ejabberd's `export_piefxis_host` writes it.
   */
  readonly roots?: readonly ('server-data' | 'host')[];
  /**
   * Read credentials (`password`, `<scram-credentials>`). Default true; false when they are not
   * imported, so that credentials the reader would refuse cannot fail the document.
   */
  readonly credentials?: boolean;
  /**
   * Take archive items of the usual shape straight from the text (archive-item.ts) instead of
   * through the parser. Default true; false only to compare the two in tests.
   */
  readonly fastArchive?: boolean;
}

const DEFAULT_MAX_DEPTH = 64;
const DEFAULT_MAX_ELEMENT_BYTES = 16 * 1024 * 1024;
const DEFAULT_MAX_ELEMENT_NODES = 50_000;
/** Fewest characters an element takes in a document (`<a/>`). */
const MIN_ELEMENT_CHARS = 4;
/** XInclude nesting: the main document includes host files, which may include user files, … */
const MAX_INCLUDE_DEPTH = 4;
const SLICE = 64 * 1024;
/** Outcomes of offering an archive item to the fast path, besides the index where it ended. */
const NOT_TAKEN = -1;
const HOLD = -2;
const RESULT_TAG = '<result';

const PIE_NAMESPACES: ReadonlySet<string> = new Set([NS.pie, NS.pieLegacy]);
const XPORTA_PUBLISHED = `{${NS.xporta}}published`;
const XPORTA_WITH = `{${NS.xporta}}with`;
const XPORTA_TIMESTAMP = `{${NS.xporta}}timestamp`;
/** Marks the `<delay>` xporta's writer adds to an offline message for the storage time. */
const XPORTA_STORAGE = `{${NS.xporta}}storage`;

// ---------------------------------------------------------------------------------------------
// JIDs

/**
 * Minimal JID check until `src/jid.ts` (nodeprep/PRECIS) replaces it: splits
 * `[local@]domain[/resource]`, refuses empty parts, whitespace, control characters and the
 * characters RFC 7622 forbids in a localpart, and lower-cases the domain. Throws `Error`.
 */
/** Normalises a JID as src/jid.ts does (nodeprep-compatible localpart, lower-case domain); throws when invalid. */
export function validateJid(value: string): string {
  return formatJid(parseJid(value));
}

type JidForm = 'domain' | 'bare' | 'bare-of-any';

/** The one place the reader validates a JID, so that swapping in `src/jid.ts` touches one call. */
function normaliseJid(value: string, form: JidForm): string {
  const jid = validateJid(value);
  const slash = jid.indexOf('/');
  if (form === 'domain' && (jid.includes('@') || slash !== -1)) throw new Error('expected a domain');
  if (form === 'bare' && slash !== -1) throw new Error('expected a bare JID');
  return slash === -1 ? jid : jid.slice(0, slash);
}

/** Bare JID with a lower-cased domain, without validation: only for deriving `with`. */
function looseBare(jid: string): string {
  const slash = jid.indexOf('/');
  const bare = slash === -1 ? jid : jid.slice(0, slash);
  const at = bare.indexOf('@');
  const domain = at === -1 ? bare : bare.slice(at + 1);
  // Domains are almost always lower-case already; then the JID needs no new string.
  if (!/[^a-z0-9.-]/.test(domain)) return bare;
  return at === -1 ? bare.toLowerCase() : `${bare.slice(0, at)}@${domain.toLowerCase()}`;
}

// ---------------------------------------------------------------------------------------------
// Values

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** XEP-0082 date-time to UTC with `Z`, keeping the source's fractional digits; undefined if invalid. */
export function normaliseTimestamp(value: string): string | undefined {
  const m = TIMESTAMP.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac = '', zone = 'Z'] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  // Year 0000 does not exist in XEP-0082 (ISO 8601 without expanded years) nor for the servers.
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) {
    return undefined;
  }
  if (zone === 'Z') return value;
  const sign = zone.startsWith('-') ? -1 : 1;
  const offsetMinutes = Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6));
  // setUTCFullYear, not Date.UTC, which reads years 0-99 as 1900-1999.
  const local = new Date(0);
  local.setUTCFullYear(year, month - 1, day);
  local.setUTCHours(Number(h), Number(mi), Number(s), 0);
  const utc = new Date(local.getTime() - sign * offsetMinutes * 60_000);
  // An offset can carry 0001-01-01 or 9999-12-31 out of the four-digit years.
  if (utc.getUTCFullYear() < 1 || utc.getUTCFullYear() > 9999) return undefined;
  return `${utc.toISOString().slice(0, 19)}${frac}Z`;
}

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
const STANZA_NS_TO_ADOPT: ReadonlySet<string> = new Set(['', NS.pie, NS.pieLegacy, NS.forward, 'jabber:server']);

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
// Record conversion: element trees to records. Errors name the element; the parser finds its position.

class RecordError extends Error {
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

function invalid(el: XmlElement, message: string): never {
  throw new RecordError('invalid-value', message, el);
}

function timestampAttr(el: XmlElement, key: string, label: string): string | undefined {
  const value = el.attrs[key];
  if (value === undefined) return undefined;
  return normaliseTimestamp(value) ?? invalid(el, `<${el.name}> ${label} is not an XEP-0082 date-time: ${value}`);
}

function toRoster(el: XmlElement): RosterRecord {
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

function toPending(el: XmlElement): UserRecord {
  if (el.attrs.type !== 'subscribe') return { kind: 'opaque', element: el };
  const from = jidAttr(el, 'from', 'bare-of-any');
  // Prosody leaves the presence in the pie namespace; its children inherited that by accident.
  const payload = childElements(el).map((child) => adoptNamespace(child, el.xmlns, NS.client));
  return { kind: 'pending-subscription', from, payload };
}

function toPepNodes(el: XmlElement): UserRecord[] {
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

function toPepItem(el: XmlElement, node: string): PepItemRecord {
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

function toArchive(el: XmlElement, userJid: string): ArchiveRecord {
  const id = required(el, 'id');
  const forwarded = firstChild(el, 'forwarded', NS.forward) ?? invalid(el, `archived message ${id} has no <forwarded>`);
  const delay = firstChild(forwarded, 'delay', NS.delay) ?? invalid(forwarded, `archived message ${id} has no <delay>`);
  const timestamp = timestampAttr(delay, 'stamp', 'stamp') ?? invalid(delay, `archived message ${id}: <delay> has no stamp`);
  const message = childElements(forwarded).find((c) => c.name === 'message');
  if (!message) invalid(forwarded, `archived message ${id} has no <message>`);
  const stanza = asClientStanza(message) ?? invalid(message, `archived message ${id} is in namespace ${message.xmlns}`);
  let peer = el.attrs[XPORTA_WITH];
  if (peer === undefined) {
    const { from, to } = stanza.attrs;
    if (from !== undefined && looseBare(from) !== userJid) peer = looseBare(from);
    else if (to !== undefined) peer = looseBare(to);
  }
  return { kind: 'archive', id, timestamp, ...(peer === undefined ? {} : { with: peer }), stanza };
}

function toOffline(el: XmlElement): OfflineRecord {
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

function toPrivacy(el: XmlElement): PrivacyRecord {
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
function toScram(el: XmlElement): { scram: ScramCredentials; warning?: string } | undefined {
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

function toBlocklist(el: XmlElement): UserRecord {
  return { kind: 'blocklist', items: childElements(el, 'item', el.xmlns).map((item) => required(item, 'jid')) };
}

// ---------------------------------------------------------------------------------------------
// The parser of one document (the main one or an XIncluded file)

type RootKind = 'server-data' | 'host' | 'user';

/** What an open element is, for deciding what its children are. */
type Frame =
  | { readonly kind: 'server-data' | 'host' | 'user' | 'skip' | 'capture' | 'private' | 'archive' | 'pubsub' }
  | { readonly kind: 'offline'; readonly ns: string }
  | { readonly kind: 'items'; readonly node: string };

/** What a captured subtree becomes when it closes. */
type Capture =
  | { readonly kind: 'scram' | 'roster' | 'presence' | 'vcard' | 'private' | 'pep-owner' | 'archive' | 'offline' }
  | { readonly kind: 'blocklist' | 'privacy' | 'opaque' }
  | { readonly kind: 'pep-item'; readonly node: string }
  | { readonly kind: 'wrapped'; readonly wrap: (el: XmlElement) => XmlElement };

interface OpenUser {
  readonly name: string;
  readonly jid: string;
  readonly start: Omit<UserStart, 'scram'>;
  readonly scram: ScramCredentials[];
  readonly warnings: string[];
  /** Records met before the user could be emitted (SCRAM sets of unknown mechanisms). */
  readonly deferred: UserRecord[];
  emitted: boolean;
}

class IncludeRequest {
  constructor(
    readonly target: string,
    readonly roots: ReadonlySet<RootKind>,
    readonly host: string | undefined,
    readonly depth: number,
    readonly line: number,
    readonly column: number,
  ) {}
}

type QueueItem = DocumentEvent | IncludeRequest;

/** State shared by the main document and the files it includes. */
class Shared {
  readonly maxDepth: number;
  readonly maxElementBytes: number;
  readonly maxElementNodes: number;
  readonly maxDocumentBytes: number;
  readonly baseDir: string | undefined;
  readonly allowXInclude: boolean;
  readonly fastArchive: boolean;
  readonly credentials: boolean;
  documentBytes = 0;
  /** User names per host, for duplicate detection across host elements and included files. */
  readonly users = new Map<string, Set<string>>();

  constructor(options: ReaderOptions) {
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.maxElementBytes = options.maxElementBytes ?? DEFAULT_MAX_ELEMENT_BYTES;
    this.maxElementNodes = options.maxElementNodes ?? DEFAULT_MAX_ELEMENT_NODES;
    this.maxDocumentBytes = options.maxDocumentBytes ?? Number.POSITIVE_INFINITY;
    this.baseDir = options.baseDir;
    this.allowXInclude = options.allowXInclude === true && options.baseDir !== undefined;
    this.fastArchive = options.fastArchive ?? true;
    this.credentials = options.credentials ?? true;
  }
}

interface DocumentContext {
  readonly roots: ReadonlySet<RootKind>;
  /** Depth of the element the document's root stands in for, minus one. */
  readonly depthOffset: number;
  readonly includeDepth: number;
  /** Directory relative hrefs resolve against. */
  readonly dir: string | undefined;
  /** Name of the file in errors (XIncluded files only). */
  readonly source: string | undefined;
  /** Host the included `<user>` belongs to. */
  readonly host: string | undefined;
}

class DocumentParser {
  private readonly sax = new SaxesParser({ xmlns: true, position: true });
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });
  private queue: QueueItem[] = [];
  failure: Xep0227Error | undefined;

  private readonly stack: Frame[] = [];
  private host: string | undefined;
  private user: OpenUser | undefined;
  private builder: ElementBuilder | undefined;
  private capture: Capture | undefined;
  /** Line and column of each element opened in the current capture, in document order. */
  private positions: number[] = [];
  /** Elements opened in the current capture, its root included. */
  private captureNodes = 0;
  private tagLine = 1;
  private tagColumn = 1;
  private started = false;
  /** 1 when the main document's root is `<host>`: depths count as if `<server-data>` were around it. */
  private rootShift = 0;

  // Byte accounting: `chunk` is the text saxes is working on, `chunkStart` its stream position.
  private chunk = '';
  private chunkStart = 0;
  /** Code units written to saxes so far (its `position` is only meaningful inside events). */
  private written = 0;
  private chunkAscii = true;
  /** Index in `chunk` from which bytes count towards the current element. */
  private markOffset = 0;
  /** Bytes counted towards the current element before `chunk`. */
  private markedBytes = 0;
  /** A trailing CR or high surrogate held back so that positions map onto `chunk` exactly. */
  private carry = '';
  /** Bytes of an incomplete UTF-8 sequence the decoder holds, for locating encoding errors. */
  private held: Uint8Array = new Uint8Array(0);
  /** The start of an archive item that the end of the last slice cut off, for the fast path. */
  private heldItem = '';
  /** Set once the source has ended: nothing is held back any more. */
  private ending = false;

  constructor(
    readonly shared: Shared,
    readonly ctx: DocumentContext,
  ) {
    const sax = this.sax;
    listen(sax, {
      doctype: (doctype) => this.onDoctype(doctype),
      xmldecl: (decl) => {
        // XML 1.1 admits control characters (as &#x1; and raw C1) that no XMPP server can carry:
        // the streams are XML 1.0, and Prosody refuses to send them. Refused before any content.
        if (decl.version !== undefined && decl.version !== '1.0') {
          this.fail('unsupported-version', `only XML 1.0 documents are supported, not version ${decl.version}`, sax.line, 1);
        }
        const encoding = decl.encoding;
        if (encoding !== undefined && !/^(utf-?8|us-ascii|ascii)$/i.test(encoding)) {
          this.fail('malformed', `only UTF-8 documents are supported, not ${encoding}`, sax.line, 1);
        }
      },
      error: (err) => {
        const message = err.message.replace(/^(?:[^:]*:)?\d+:\d+: /, '');
        if (/entity/.test(message)) this.fail('entity', message, sax.line, this.entityColumn());
        // saxes counts the characters read on the line: the column of the offending one, 0 at a line's start.
        this.fail('malformed', message, sax.line, Math.max(1, sax.column));
      },
      opentagstart: (tag) => {
        this.tagLine = sax.line;
        this.tagColumn = Math.max(1, sax.column - [...tag.name].length - 1);
      },
      opentag: (tag) => this.onOpen(tag),
      closetag: () => this.onClose(),
      text: (text) => this.onText(text),
      cdata: (text) => this.onText(text),
      comment: () => this.mark(),
      processinginstruction: () => this.mark(),
    });
  }

  /** Takes the events produced so far. */
  take(): QueueItem[] {
    const items = this.queue;
    this.queue = [];
    return items;
  }

  feed(chunk: Uint8Array | string): void {
    if (this.failure) return;
    try {
      if (typeof chunk === 'string') {
        for (let i = 0; i < chunk.length && !this.failure; i += SLICE) {
          const piece = chunk.slice(i, i + SLICE);
          this.count(Buffer.byteLength(piece, 'utf8'));
          this.feedText(!this.started && i === 0 && piece.startsWith('\uFEFF') ? piece.slice(1) : piece);
        }
      } else {
        for (let i = 0; i < chunk.length && !this.failure; i += SLICE) {
          const piece = chunk.subarray(i, i + SLICE);
          this.count(piece.length);
          this.feedText(this.decode(piece));
        }
      }
    } catch (err) {
      this.failure = keepXep0227Error(err);
    }
  }

  end(): void {
    if (this.failure) return;
    this.ending = true;
    try {
      this.feedText(this.decode(undefined));
      if (this.carry !== '') {
        const carried = this.carry;
        this.carry = '';
        this.writeToSax(carried);
      }
      if (this.heldItem !== '') this.writeToSax('');
      this.sax.close();
    } catch (err) {
      this.failure = keepXep0227Error(err);
    }
  }

  /** Decodes the next bytes, or flushes the decoder when `bytes` is undefined. */
  private decode(bytes: Uint8Array | undefined): string {
    try {
      const text = bytes === undefined ? this.decoder.decode() : this.decoder.decode(bytes, { stream: true });
      // An incomplete sequence is at most 3 bytes long, so the last 3 bytes tell.
      this.held =
        bytes === undefined ? new Uint8Array(0) : incompleteTail(bytes.length >= 3 ? bytes.subarray(bytes.length - 3) : concat(this.held, bytes));
      return text;
    } catch {
      // Parse up to the offending byte so that the error points at it.
      const all = concat(this.held, bytes ?? new Uint8Array(0));
      this.feedText(new TextDecoder().decode(all.subarray(0, firstInvalidUtf8(all))));
      const carried = this.carry;
      this.carry = '';
      if (carried !== '') this.writeToSax(carried);
      return this.fail('malformed', 'the document is not valid UTF-8', this.sax.line, this.sax.column + 1);
    }
  }

  /** Column of the `&` that starts the entity reference saxes just refused. */
  private entityColumn(): number {
    const end = this.sax.position - this.chunkStart;
    const amp = this.chunk.lastIndexOf('&', end - 1);
    if (amp === -1 || end > this.chunk.length) return this.sax.column;
    return Math.max(1, this.sax.column - [...this.chunk.slice(amp, end)].length + 1);
  }

  private count(bytes: number): void {
    this.shared.documentBytes += bytes;
    if (this.shared.documentBytes > this.shared.maxDocumentBytes) {
      this.fail(
        'document-too-large',
        `the document is larger than ${this.shared.maxDocumentBytes} bytes`,
        this.sax.line,
        this.sax.column + 1,
      );
    }
  }

  private feedText(text: string): void {
    let s = this.carry + text;
    this.carry = '';
    const last = s.charCodeAt(s.length - 1);
    // saxes would carry these over itself, which would shift its positions against `chunk`.
    if (last === 0x0d || (last >= 0xd800 && last <= 0xdbff)) {
      this.carry = s.slice(-1);
      s = s.slice(0, -1);
    }
    if (s !== '') this.writeToSax(s);
  }

  private writeToSax(text: string): void {
    this.started = true;
    const s = this.heldItem === '' ? text : this.heldItem + text;
    this.heldItem = '';
    this.chunk = s;
    this.chunkStart = this.written;
    this.chunkAscii = Buffer.byteLength(s, 'utf8') === s.length;
    let consumed = s.length;
    if (this.shared.fastArchive) consumed = this.writeTakingArchiveItems(s);
    else this.sax.write(s);
    this.written += consumed;
    this.markedBytes += this.bytesOf(this.markOffset, consumed);
    this.markOffset = 0;
    this.chunk = '';
    if (consumed < s.length) this.heldItem = s.slice(consumed);
    if (this.markedBytes > this.shared.maxElementBytes) this.tooLarge();
  }

  /**
   * Writes `s` to saxes, but for the archive items the fast path takes (archive-item.ts), with the
   * whitespace before them; saxes' position is moved past those. Returns how much of `s` was
   * consumed: an item that `s` cuts off waits for the next slice.
   */
  private writeTakingArchiveItems(s: string): number {
    let pos = 0;
    for (;;) {
      const lt = s.indexOf(RESULT_TAG, pos);
      if (lt < 0) break;
      if (skipXmlSpace(s, pos) !== lt) {
        this.sax.write(s.slice(pos, lt));
        pos = lt;
      }
      const end = this.atArchiveItem() ? this.takeArchiveItem(s, pos, lt) : NOT_TAKEN;
      if (end === HOLD) return pos;
      if (end === NOT_TAKEN) {
        this.sax.write(s.slice(pos, lt + RESULT_TAG.length));
        pos = lt + RESULT_TAG.length;
      } else {
        pos = end;
      }
    }
    if (pos < s.length) this.sax.write(pos === 0 ? s : s.slice(pos));
    return s.length;
  }

  /** Whether saxes stands between the children of an `<archive>`, where an item may start. */
  private atArchiveItem(): boolean {
    return this.builder === undefined && this.stack[this.stack.length - 1]?.kind === 'archive' && betweenMarkup(this.sax);
  }

  /**
   * Takes the archive item at `lt` (whitespace from `from`) if the fast path can: returns where it
   * ends, {@link HOLD} when `s` ends inside it, or {@link NOT_TAKEN} for saxes to parse it. The
   * checks the parser would make (depth, size, the record's own) are made here too; an item that
   * fails one goes to saxes, which reports it with its position.
   */
  private takeArchiveItem(s: string, from: number, lt: number): number {
    const close = s.indexOf('</result', lt + RESULT_TAG.length);
    const gt = close < 0 ? -1 : s.indexOf('>', close);
    if (gt < 0) return this.ending || s.length - from > SLICE ? NOT_TAKEN : HOLD;
    const end = gt + 1;
    const measured = measureText(s, from, end);
    // A margin for the few bytes around the item that the parser counts with it.
    if (!measured.xmlChars || measured.bytes + 2 > this.shared.maxElementBytes) return NOT_TAKEN;
    // Long enough to hold more elements than allowed: saxes counts them and names the position.
    if (end - lt > MIN_ELEMENT_CHARS * this.shared.maxElementNodes) return NOT_TAKEN;
    const tree = readArchiveItem(s.slice(lt, end));
    if (!tree) return NOT_TAKEN;
    if (this.stack.length + this.ctx.depthOffset + this.rootShift + tree.depth > this.shared.maxDepth) return NOT_TAKEN;
    let record: ArchiveRecord;
    try {
      record = toArchive(tree.result, this.user?.jid ?? '');
    } catch (err) {
      if (err instanceof RecordError) return NOT_TAKEN;
      throw err;
    }
    this.queue.push(record);
    skipOver(this.sax, end - from, measured);
    this.markOffset = end;
    this.markedBytes = 0;
    return end;
  }

  private bytesOf(from: number, to: number): number {
    if (to <= from) return 0;
    return this.chunkAscii ? to - from : Buffer.byteLength(this.chunk.slice(from, to), 'utf8');
  }

  /** Starts counting element bytes afresh at the parser's position. */
  private mark(): void {
    if (this.builder) return;
    this.markOffset = Math.max(0, this.sax.position - this.chunkStart);
    this.markedBytes = 0;
  }

  private tooLarge(): never {
    const [line, column] = this.builder ? [this.positions[0] ?? this.sax.line, this.positions[1] ?? 1] : [this.sax.line, this.sax.column];
    this.fail('element-too-large', `an element is larger than ${this.shared.maxElementBytes} bytes`, line, column);
  }

  /** Named at the record's start tag, as an element over the byte limit is. */
  private tooManyNodes(): never {
    this.fail(
      'too-many-nodes',
      `an element holds more than ${this.shared.maxElementNodes} elements`,
      this.positions[0] ?? this.tagLine,
      this.positions[1] ?? this.tagColumn,
    );
  }

  fail(code: Xep0227ErrorCode, message: string, line: number, column: number): never {
    throw new Xep0227Error(code, message, line, column, this.ctx.source);
  }

  private onDoctype(doctype: string): never {
    // Reported where `<!DOCTYPE` starts: the event comes at its closing `>`.
    const lines = doctype.split('\n');
    const line = this.sax.line - (lines.length - 1);
    const column =
      lines.length === 1 ? Math.max(1, this.sax.column - [...doctype].length - '<!DOCTYPE>'.length + 1) : 1;
    this.fail('doctype', 'DOCTYPE declarations are not allowed', line, column);
  }

  private onText(text: string): void {
    if (this.builder) this.builder.text(text);
    else this.mark();
  }

  // -------------------------------------------------------------------------------------------
  // Structure

  private onOpen(tag: SaxesTagNS): void {
    const depth = this.stack.length + 1 + this.ctx.depthOffset + this.rootShift;
    if (depth > this.shared.maxDepth) {
      this.fail('too-deep', `elements are nested deeper than ${this.shared.maxDepth} levels`, this.tagLine, this.tagColumn);
    }
    if (this.builder) {
      if (++this.captureNodes > this.shared.maxElementNodes) this.tooManyNodes();
      this.builder.open(tag);
      this.positions.push(this.tagLine, this.tagColumn);
      this.stack.push({ kind: 'capture' });
      return;
    }
    const parent = this.stack[this.stack.length - 1];
    if (!parent) return this.openRoot(tag);
    switch (parent.kind) {
      // Unknown children of <server-data> and <host> are skipped, not kept: the model has no
      // host-level record, and XEP-0227 puts no user data there.
      case 'server-data':
        if (tag.uri === NS.xinclude && tag.local === 'include') return this.openInclude(tag, new Set(['server-data', 'host']), depth);
        if (tag.local === 'host' && PIE_NAMESPACES.has(tag.uri)) return this.openHost(tag);
        return this.push({ kind: 'skip' });
      case 'host':
        if (tag.uri === NS.xinclude && tag.local === 'include') return this.openInclude(tag, new Set(['user']), depth);
        if (tag.local === 'user' && PIE_NAMESPACES.has(tag.uri)) return this.openUser(tag);
        return this.push({ kind: 'skip' });
      case 'user':
        return this.openUserChild(tag);
      case 'private':
        return this.startCapture(tag, { kind: 'private' });
      case 'archive':
        if (tag.local === 'result' && tag.uri === NS.mam) return this.startCapture(tag, { kind: 'archive' });
        return this.startCapture(tag, { kind: 'wrapped', wrap: (el) => wrapIn('archive', NS.mamArchive, {}, el) });
      case 'offline': {
        if (tag.local === 'message' && (tag.uri === NS.client || STANZA_NS_TO_ADOPT.has(tag.uri))) {
          return this.startCapture(tag, { kind: 'offline' });
        }
        const ns = parent.ns;
        return this.startCapture(tag, { kind: 'wrapped', wrap: (el) => wrapIn('offline-messages', ns, {}, el) });
      }
      case 'pubsub':
        if (tag.local === 'items' && tag.uri === NS.pubsub) {
          const node = tag.attributes.node?.value;
          if (node === undefined) this.fail('missing-attribute', "<items> has no 'node' attribute", this.tagLine, this.tagColumn);
          return this.push({ kind: 'items', node });
        }
        return this.startCapture(tag, { kind: 'wrapped', wrap: (el) => wrapIn('pubsub', NS.pubsub, {}, el) });
      case 'items': {
        const node = parent.node;
        if (tag.local === 'item' && tag.uri === NS.pubsub) return this.startCapture(tag, { kind: 'pep-item', node });
        return this.startCapture(tag, {
          kind: 'wrapped',
          wrap: (el) => wrapIn('pubsub', NS.pubsub, {}, wrapIn('items', NS.pubsub, { node }, el)),
        });
      }
      case 'skip':
      case 'capture':
        return this.push({ kind: 'skip' });
    }
  }

  private push(frame: Frame): void {
    this.stack.push(frame);
    this.mark();
  }

  private openRoot(tag: SaxesTagNS): void {
    const kind = tag.local as RootKind;
    if (!this.ctx.roots.has(kind)) {
      const expected = [...this.ctx.roots].map((r) => `<${r}>`).join(' or ');
      this.fail('wrong-root', `the root element must be ${expected}, not <${tag.local}>`, this.tagLine, this.tagColumn);
    }
    if (!PIE_NAMESPACES.has(tag.uri)) {
      this.fail(
        'wrong-namespace',
        `<${tag.local}> must be in namespace ${NS.pie}, not ${tag.uri === '' ? 'no namespace' : tag.uri}`,
        this.tagLine,
        this.tagColumn,
      );
    }
    if (kind === 'server-data') return this.push({ kind: 'server-data' });
    if (kind === 'host') {
      if (this.ctx.includeDepth === 0) this.rootShift = 1;
      return this.openHost(tag);
    }
    this.host = this.ctx.host;
    return this.openUser(tag);
  }

  private attr(tag: SaxesTagNS, name: string): string {
    const value = tag.attributes[name]?.value;
    if (value === undefined) this.fail('missing-attribute', `<${tag.local}> has no '${name}' attribute`, this.tagLine, this.tagColumn);
    return value;
  }

  private jid(value: string, form: JidForm, what: string): string {
    try {
      return normaliseJid(value, form);
    } catch (err) {
      return this.fail('invalid-jid', `${what} '${value}' is not a valid JID: ${(err as Error).message}`, this.tagLine, this.tagColumn);
    }
  }

  private openHost(tag: SaxesTagNS): void {
    const jid = this.jid(this.attr(tag, 'jid'), 'domain', 'host');
    this.host = jid;
    this.queue.push({ kind: 'host', jid });
    this.push({ kind: 'host' });
  }

  private openUser(tag: SaxesTagNS): void {
    const host = this.host ?? this.fail('wrong-root', '<user> outside a host', this.tagLine, this.tagColumn);
    const raw = this.attr(tag, 'name');
    if (raw.includes('@') || raw.includes('/')) {
      this.fail('invalid-jid', `user name '${raw}' is not a valid localpart`, this.tagLine, this.tagColumn);
    }
    const jid = this.jid(`${raw}@${host}`, 'bare', 'user');
    const name = jid.slice(0, jid.lastIndexOf('@'));
    let names = this.shared.users.get(host);
    if (!names) {
      names = new Set();
      this.shared.users.set(host, names);
    }
    if (names.has(name)) this.fail('duplicate-user', `user '${name}' appears twice in host ${host}`, this.tagLine, this.tagColumn);
    names.add(name);
    let password: string | undefined;
    const extraAttributes: Record<string, string> = {};
    for (const attr of Object.values(tag.attributes)) {
      const key = attributeKey(attr);
      if (key === undefined || key === 'name') continue;
      if (key === 'password') {
        if (this.shared.credentials) password = attr.value;
      } else {
        extraAttributes[key] = attr.value;
      }
    }
    this.user = {
      name,
      jid,
      start: { kind: 'user', name, ...(password === undefined ? {} : { password }), extraAttributes },
      scram: [],
      warnings: [],
      deferred: [],
      emitted: false,
    };
    this.push({ kind: 'user' });
  }

  /** Emits the `user` event once its credentials (which must come first) are known. */
  private flushUser(): void {
    const user = this.user;
    if (!user || user.emitted) return;
    user.emitted = true;
    const start: UserStart = { ...user.start, scram: user.scram, ...(user.warnings.length > 0 ? { warnings: user.warnings } : {}) };
    this.queue.push(start, ...user.deferred);
  }

  private openUserChild(tag: SaxesTagNS): void {
    const { uri, local } = tag;
    if (local === 'scram-credentials' && uri === NS.scram && !this.shared.credentials) return this.push({ kind: 'skip' });
    if (local === 'scram-credentials' && uri === NS.scram) {
      if (this.user?.emitted) {
        this.fail(
          'invalid-value',
          '<scram-credentials> must come before the other children of <user>',
          this.tagLine,
          this.tagColumn,
        );
      }
      return this.startCapture(tag, { kind: 'scram' });
    }
    if (uri === NS.xinclude && local === 'include') {
      this.fail('xinclude', 'xi:include is only supported as a child of <server-data> or <host>', this.tagLine, this.tagColumn);
    }
    this.flushUser();
    if (local === 'query' && uri === NS.roster) return this.startCapture(tag, { kind: 'roster' });
    if (local === 'presence' && (uri === NS.client || PIE_NAMESPACES.has(uri))) return this.startCapture(tag, { kind: 'presence' });
    if (local === 'vCard' && uri === NS.vcardTemp) return this.startCapture(tag, { kind: 'vcard' });
    if (local === 'query' && uri === NS.private) return this.push({ kind: 'private' });
    if (local === 'pubsub' && uri === NS.pubsubOwner) return this.startCapture(tag, { kind: 'pep-owner' });
    if (local === 'pubsub' && uri === NS.pubsub) return this.push({ kind: 'pubsub' });
    if (local === 'archive' && uri === NS.mamArchive) return this.push({ kind: 'archive' });
    if (local === 'offline-messages' && PIE_NAMESPACES.has(uri)) return this.push({ kind: 'offline', ns: uri });
    if (local === 'blocklist' && uri === NS.blocking) return this.startCapture(tag, { kind: 'blocklist' });
    if (local === 'query' && uri === NS.privacy) return this.startCapture(tag, { kind: 'privacy' });
    return this.startCapture(tag, { kind: 'opaque' });
  }

  private openInclude(tag: SaxesTagNS, roots: ReadonlySet<RootKind>, depth: number): void {
    if (!this.shared.allowXInclude) {
      this.fail('xinclude', 'XInclude is not allowed for this document', this.tagLine, this.tagColumn);
    }
    if (this.ctx.includeDepth >= MAX_INCLUDE_DEPTH) {
      this.fail('xinclude', `XIncludes are nested deeper than ${MAX_INCLUDE_DEPTH} levels`, this.tagLine, this.tagColumn);
    }
    const attrs: Record<string, string> = {};
    for (const attr of Object.values(tag.attributes)) {
      const key = attributeKey(attr);
      if (key !== undefined) attrs[key] = attr.value;
    }
    let target: string;
    try {
      target = includeTarget(attrs);
    } catch (err) {
      return this.fail('xinclude', (err as Error).message, this.tagLine, this.tagColumn);
    }
    const host = roots.has('user') ? this.host : undefined;
    this.queue.push(new IncludeRequest(target, roots, host, depth, this.tagLine, this.tagColumn));
    this.push({ kind: 'skip' });
  }

  private onClose(): void {
    const frame = this.stack.pop();
    if (frame?.kind === 'capture') {
      const el = this.builder?.close();
      if (el) this.finishCapture(el);
      return;
    }
    this.mark();
    if (frame?.kind === 'user') {
      this.flushUser();
      this.queue.push({ kind: 'user-end' });
      this.user = undefined;
    } else if (frame?.kind === 'host') {
      this.queue.push({ kind: 'host-end' });
      this.host = undefined;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Captured subtrees

  private startCapture(tag: SaxesTagNS, capture: Capture): void {
    this.builder = new ElementBuilder();
    this.capture = capture;
    this.positions = [this.tagLine, this.tagColumn];
    this.captureNodes = 1;
    this.builder.open(tag);
    // Not push(): the bytes since the previous event (this start tag) count towards the element.
    this.stack.push({ kind: 'capture' });
  }

  private finishCapture(el: XmlElement): void {
    const capture = this.capture;
    this.builder = undefined;
    this.capture = undefined;
    const total = this.markedBytes + this.bytesOf(this.markOffset, this.sax.position - this.chunkStart);
    if (total > this.shared.maxElementBytes) {
      this.fail('element-too-large', `an element is larger than ${this.shared.maxElementBytes} bytes`, this.positions[0] ?? 1, this.positions[1] ?? 1);
    }
    this.mark();
    if (!capture) return;
    try {
      this.convert(el, capture);
    } catch (err) {
      if (!(err instanceof RecordError)) throw err;
      const [line, column] = this.positionOf(el, err.at);
      this.fail(err.code, err.message, line, column);
    }
  }

  private convert(el: XmlElement, capture: Capture): void {
    const user = this.user;
    switch (capture.kind) {
      case 'scram': {
        const read = toScram(el);
        if (!user) return;
        if (!read) {
          user.deferred.push({ kind: 'opaque', element: el });
          return;
        }
        const { scram, warning } = read;
        if (user.scram.some((s) => s.mechanism === scram.mechanism)) invalid(el, `${scram.mechanism} credentials appear twice`);
        user.scram.push(scram);
        if (warning !== undefined) user.warnings.push(warning);
        return;
      }
      case 'roster':
        return void this.queue.push(toRoster(el));
      case 'presence':
        return void this.queue.push(toPending(el));
      case 'vcard':
        return void this.queue.push({ kind: 'vcard', vcard: el });
      case 'private':
        return void this.queue.push({ kind: 'private', element: el });
      case 'pep-owner':
        return void this.queue.push(...toPepNodes(el));
      case 'pep-item':
        return void this.queue.push(toPepItem(el, capture.node));
      case 'archive':
        return void this.queue.push(toArchive(el, user?.jid ?? ''));
      case 'offline':
        return void this.queue.push(toOffline(el));
      case 'blocklist':
        return void this.queue.push(toBlocklist(el));
      case 'privacy':
        return void this.queue.push(toPrivacy(el));
      case 'opaque':
        return void this.queue.push({ kind: 'opaque', element: el } satisfies OpaqueRecord);
      case 'wrapped':
        return void this.queue.push({ kind: 'opaque', element: capture.wrap(el) });
    }
  }

  /** Position of `target` inside the captured `root`: elements were opened in document order. */
  private positionOf(root: XmlElement, target: XmlElement): [number, number] {
    let index = 0;
    let found = -1;
    const walk = (el: XmlElement): void => {
      if (found !== -1) return;
      if (el === target) {
        found = index;
        return;
      }
      index++;
      for (const child of el.children) if (typeof child !== 'string') walk(child);
    };
    walk(root);
    const i = Math.max(0, found) * 2;
    return [this.positions[i] ?? 1, this.positions[i + 1] ?? 1];
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The last bytes of `bytes` that start a UTF-8 sequence without completing it. */
function incompleteTail(bytes: Uint8Array): Uint8Array {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const b = bytes[bytes.length - back] as number;
    if (b < 0x80) return new Uint8Array(0);
    if (b >= 0xc0) {
      const need = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : 2;
      return need > back ? bytes.slice(bytes.length - back) : new Uint8Array(0);
    }
  }
  return new Uint8Array(0);
}

/** Index of the first byte that is not part of well-formed UTF-8 (RFC 3629), or the length. */
function firstInvalidUtf8(b: Uint8Array): number {
  let i = 0;
  while (i < b.length) {
    const c = b[i] as number;
    if (c < 0x80) {
      i++;
      continue;
    }
    const n = c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : 0;
    if (n === 0 || i + n >= b.length) return i;
    const second = b[i + 1] as number;
    const [lo, hi] = c === 0xe0 ? [0xa0, 0xbf] : c === 0xed ? [0x80, 0x9f] : c === 0xf0 ? [0x90, 0xbf] : c === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    if (second < lo || second > hi) return i;
    for (let k = 2; k <= n; k++) {
      const next = b[i + k] as number;
      if (next < 0x80 || next > 0xbf) return i;
    }
    i += n + 1;
  }
  return b.length;
}

/** Errors of the document are kept for after the queued events; anything else is a bug and propagates. */
function keepXep0227Error(err: unknown): Xep0227Error {
  if (err instanceof Xep0227Error) return err;
  throw err;
}

function wrapIn(name: string, xmlns: string, attrs: Record<string, string>, child: XmlElement): XmlElement {
  return { name, xmlns, attrs, children: [child] };
}

// ---------------------------------------------------------------------------------------------
// Driving parsers from byte sources

async function* drive(source: AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string>, parser: DocumentParser): AsyncGenerator<DocumentEvent> {
  for await (const chunk of source) {
    parser.feed(chunk);
    yield* drain(parser);
  }
  parser.end();
  yield* drain(parser);
}

async function* drain(parser: DocumentParser): AsyncGenerator<DocumentEvent> {
  for (const item of parser.take()) {
    if (item instanceof IncludeRequest) yield* include(item, parser);
    else yield item;
  }
  // Events that came before the error in the same slice are still delivered, in order.
  if (parser.failure) throw parser.failure;
}

async function* include(request: IncludeRequest, parent: DocumentParser): AsyncGenerator<DocumentEvent> {
  const { shared, ctx } = parent;
  const baseDir = shared.baseDir as string;
  let file: string;
  try {
    file = await resolveInclude(request.target, ctx.dir ?? baseDir, baseDir);
  } catch (err) {
    if (!(err instanceof XIncludeError)) throw err;
    throw new Xep0227Error('xinclude', err.message, request.line, request.column, ctx.source);
  }
  const child = new DocumentParser(shared, {
    roots: request.roots,
    depthOffset: request.depth - 1,
    includeDepth: ctx.includeDepth + 1,
    dir: path.dirname(file),
    source: path.relative(await realpath(baseDir), file),
    host: request.host,
  });
  yield* drive(createReadStream(file, { highWaterMark: SLICE }), child);
}

/**
 * Parses a XEP-0227 document into events, in document order: `host`, `user`, the user's
 * records, `user-end`, …, `host-end`. Throws {@link Xep0227Error} for documents it refuses
 * (after yielding the events that came before the problem); I/O errors of `source` pass through.
 */
export async function* readDocument(
  source: string | Uint8Array | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array | string> | Readable,
  options: ReaderOptions = {},
): AsyncGenerator<DocumentEvent> {
  const shared = new Shared(options);
  const parser = new DocumentParser(shared, {
    roots: new Set(options.roots ?? ['server-data']),
    depthOffset: 0,
    includeDepth: 0,
    dir: options.baseDir,
    source: undefined,
    host: undefined,
  });
  // A whole document in memory is one chunk, not an iterable of characters or numbers.
  const chunks = typeof source === 'string' || source instanceof Uint8Array ? [source] : source;
  yield* drive(chunks as AsyncIterable<Uint8Array | string>, parser);
}
