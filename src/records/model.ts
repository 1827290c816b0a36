/**
 * The records that flow between storage, the XEP-0227 writer and the XEP-0227 reader.
 *
 * A document is a flat stream of events: `host` opens a host, `user` opens a user (closing the
 * previous one), data records belong to the user opened last, `user-end` and `host-end` close.
 * Large kinds (archive, offline, PEP items, private elements) are one record per item so that
 * nothing has to hold a whole archive; the writer groups consecutive records of one kind into
 * their XEP-0227 container element.
 */

/** Namespace URIs: the table lives in namespaces.ts; re-exported so the model is one import. */
export { NS } from './namespaces.js';

// ---------------------------------------------------------------------------------------------
// XML payloads

/**
 * An immutable XML element with resolved namespaces.
 *
 * Attribute keys: a plain name for attributes without a namespace, `xml:lang`/`xml:space` for the
 * XML namespace, and Clark notation `{uri}local` for any other namespaced attribute. Namespace
 * declarations are not attributes: the writer derives them from `xmlns`.
 */
export interface XmlElement {
  readonly name: string;
  readonly xmlns: string;
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: readonly XmlNode[];
}

/** A child is an element or a run of character data. */
export type XmlNode = XmlElement | string;

// ---------------------------------------------------------------------------------------------
// Data kinds: the unit of `?include=` / `?exclude=` and of backend capability

export const DATA_KINDS = [
  'credentials',
  'roster',
  'vcard',
  'private',
  'pep',
  'archive',
  'offline',
  'blocklist',
  'privacy',
  'other',
] as const;

export type DataKind = (typeof DATA_KINDS)[number];

export function isDataKind(value: string): value is DataKind {
  return (DATA_KINDS as readonly string[]).includes(value);
}

// ---------------------------------------------------------------------------------------------
// Document structure events

export interface HostStart {
  readonly kind: 'host';
  /** The host's domain, normalised (lower case). */
  readonly jid: string;
}

export interface HostEnd {
  readonly kind: 'host-end';
}

export type ScramMechanism = 'SCRAM-SHA-1' | 'SCRAM-SHA-256';

/** SCRAM credentials as XEP-0227 carries them; binary values are base64 (RFC 4648, padded). */
export interface ScramCredentials {
  readonly mechanism: ScramMechanism;
  readonly iterationCount: number;
  readonly salt: string;
  readonly storedKey: string;
  readonly serverKey: string;
}

export interface UserStart {
  readonly kind: 'user';
  /** The localpart, normalised. */
  readonly name: string;
  /** A plain-text password, when the source had one. */
  readonly password?: string;
  /** SCRAM credentials, at most one per mechanism. */
  readonly scram: readonly ScramCredentials[];
  /**
   * Attributes of `<user>` other than `name` and `password` (e.g. Prosody's extended-xep0227
   * account keys), kept so that nothing is silently lost. Keys as in {@link XmlElement.attrs}.
   */
  readonly extraAttributes: Readonly<Record<string, string>>;
  /** What the reader had to correct in the document (e.g. a SCRAM label its key length contradicts), for the import report. */
  readonly warnings?: readonly string[];
}

export interface UserEnd {
  readonly kind: 'user-end';
}

// ---------------------------------------------------------------------------------------------
// Per-user data records

export type Subscription = 'none' | 'to' | 'from' | 'both' | 'remove';

export interface RosterItem {
  /** Bare JID of the contact, normalised. */
  readonly jid: string;
  readonly name?: string;
  readonly subscription: Subscription;
  /** Outbound subscription request pending. */
  readonly ask?: 'subscribe';
  /** RFC 6121 subscription pre-approval. */
  readonly approved?: boolean;
  readonly groups: readonly string[];
}

/** The whole roster of one user: small enough to be one record. */
export interface RosterRecord {
  readonly kind: 'roster';
  /** Roster version (RFC 6121 `ver`), opaque. */
  readonly version?: string;
  readonly items: readonly RosterItem[];
}

/** An inbound subscription request the user has not answered yet. */
export interface PendingSubscriptionRecord {
  readonly kind: 'pending-subscription';
  /** Bare JID of the requester. */
  readonly from: string;
  /** Payload children of the subscribe presence (nick, status), possibly empty. */
  readonly payload: readonly XmlElement[];
}

export interface VCardRecord {
  readonly kind: 'vcard';
  /** The `<vCard xmlns='vcard-temp'>` element. */
  readonly vcard: XmlElement;
}

/** One element of XEP-0049 private XML storage, keyed by (name, namespace). */
export interface PrivateRecord {
  readonly kind: 'private';
  readonly element: XmlElement;
}

/** One data-form field value set of a pubsub node configuration, keyed by `var`. */
export interface NodeConfigField {
  readonly var: string;
  readonly type?: string;
  readonly values: readonly string[];
}

export type PubsubAffiliation = 'owner' | 'publisher' | 'publish-only' | 'member' | 'none' | 'outcast';
export type PubsubSubscriptionState = 'subscribed' | 'pending' | 'unconfigured' | 'none';

/** A PEP node: configuration, affiliations and subscriptions. Items are separate records. */
export interface PepNodeRecord {
  readonly kind: 'pep-node';
  readonly node: string;
  /** The node configuration form fields (`pubsub#…`), FORM_TYPE excluded. */
  readonly config: readonly NodeConfigField[];
  readonly affiliations: readonly { readonly jid: string; readonly affiliation: PubsubAffiliation }[];
  readonly subscriptions: readonly {
    readonly jid: string;
    readonly subscription: PubsubSubscriptionState;
    readonly subid?: string;
  }[];
}

/** One published PEP item. */
export interface PepItemRecord {
  readonly kind: 'pep-item';
  readonly node: string;
  readonly id: string;
  /** The payload; null for a notification-only item without payload. */
  readonly payload: XmlElement | null;
  /** Publisher's JID, when known (XEP-0060 `publisher` attribute). */
  readonly publisher?: string;
  /** Publish time, ISO 8601 UTC with `Z`, when known. */
  readonly published?: string;
}

/** One message of the user's own message archive (XEP-0313). */
export interface ArchiveRecord {
  readonly kind: 'archive';
  /** The archive id (MAM result id / stanza-id). */
  readonly id: string;
  /** Archive time, ISO 8601 UTC with `Z` (XEP-0082), at whatever precision the source had. */
  readonly timestamp: string;
  /** Bare JID of the other party; derived from the stanza when the source did not say. */
  readonly with?: string;
  /** The `<message xmlns='jabber:client'>` as archived. */
  readonly stanza: XmlElement;
}

/** A message stored for delivery while the user was offline. */
export interface OfflineRecord {
  readonly kind: 'offline';
  /** When it was stored, ISO 8601 UTC, when known (a `<delay>` in the stanza also says so). */
  readonly timestamp?: string;
  readonly stanza: XmlElement;
}

/** XEP-0191 blocklist: the blocked JIDs (bare, full or domain). */
export interface BlocklistRecord {
  readonly kind: 'blocklist';
  readonly items: readonly string[];
}

export interface PrivacyItem {
  readonly type?: 'jid' | 'group' | 'subscription';
  readonly value?: string;
  readonly action: 'allow' | 'deny';
  readonly order: number;
  /** Stanza kinds the rule is limited to; empty means all. */
  readonly stanzas: readonly ('message' | 'iq' | 'presence-in' | 'presence-out')[];
}

export interface PrivacyList {
  readonly name: string;
  readonly items: readonly PrivacyItem[];
}

/** XEP-0016 privacy lists of one user. */
export interface PrivacyRecord {
  readonly kind: 'privacy';
  readonly defaultList?: string;
  readonly lists: readonly PrivacyList[];
}

/** An element inside `<user>` that xporta has no typed record for: kept as it is. */
export interface OpaqueRecord {
  readonly kind: 'opaque';
  readonly element: XmlElement;
}

export type UserRecord =
  | RosterRecord
  | PendingSubscriptionRecord
  | VCardRecord
  | PrivateRecord
  | PepNodeRecord
  | PepItemRecord
  | ArchiveRecord
  | OfflineRecord
  | BlocklistRecord
  | PrivacyRecord
  | OpaqueRecord;

export type DocumentEvent = HostStart | UserStart | UserRecord | UserEnd | HostEnd;

/** The data kind each record belongs to, for include/exclude filters and reports. */
export function dataKindOf(record: UserRecord): DataKind {
  switch (record.kind) {
    case 'roster':
    case 'pending-subscription':
      return 'roster';
    case 'vcard':
      return 'vcard';
    case 'private':
      return 'private';
    case 'pep-node':
    case 'pep-item':
      return 'pep';
    case 'archive':
      return 'archive';
    case 'offline':
      return 'offline';
    case 'blocklist':
      return 'blocklist';
    case 'privacy':
      return 'privacy';
    case 'opaque':
      return 'other';
  }
}

// ---------------------------------------------------------------------------------------------
// Element helpers

export function element(
  name: string,
  xmlns: string,
  attrs: Readonly<Record<string, string>> = {},
  children: readonly XmlNode[] = [],
): XmlElement {
  return { name, xmlns, attrs, children };
}

export function isElement(node: XmlNode): node is XmlElement {
  return typeof node !== 'string';
}

/** Child elements, optionally filtered by local name and namespace. */
export function childElements(parent: XmlElement, name?: string, xmlns?: string): XmlElement[] {
  return parent.children.filter(
    (c): c is XmlElement =>
      typeof c !== 'string' && (name === undefined || c.name === name) && (xmlns === undefined || c.xmlns === xmlns),
  );
}

export function firstChild(parent: XmlElement, name: string, xmlns?: string): XmlElement | undefined {
  return childElements(parent, name, xmlns)[0];
}

/** Concatenated character data of the direct children. */
export function textOf(el: XmlElement): string {
  return el.children.filter((c): c is string => typeof c === 'string').join('');
}
