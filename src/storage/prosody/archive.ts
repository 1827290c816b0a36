/**
 * Archive stores: one item per entry `(key, when, with, value)`, the shape of
 * mod_storage_sql's `prosodyarchive` rows and of mod_storage_internal's `.list` items.
 *
 * `archive` (mod_mam.lua): the message as the user's session saw it, `when` = os.time(), `with` =
 * the peer's bare JID, no `<stanza-id>` by the user. `offline` (mod_offline.lua): the whole stanza,
 * `with` = "".
 */
import { createHash } from 'node:crypto';
import { NS, element, firstChild, isElement, type ArchiveRecord, type OfflineRecord, type XmlElement } from '../../records/model.js';
import { LuaTable, isStanzaValue, type LuaValue } from './lua.js';
import { mayContainText, serializeElement } from '../../xml/xml.js';
import { fromPreserialized } from './stanza.js';
import { storedBareJid } from '../../lib/jid.js';
import { generateUuid, isoToSeconds, isoToTime, nowSeconds, secondsToIso } from './util.js';

export interface ArchiveItem {
  readonly key: string;
  /** Unix seconds; Prosody writes integers. */
  readonly when: number;
  readonly with: string;
  readonly value: LuaValue;
}

/** Store names of the archive stores xporta maps to typed records. */
export const ARCHIVE_STORE = 'archive';
export const OFFLINE_STORE = 'offline';

/** The stanza in an archive item's value (stored as `xml`, or preserialized by other drivers). */
export function itemStanza(value: LuaValue): XmlElement | undefined {
  if (isStanzaValue(value)) return value;
  if (value instanceof LuaTable) return fromPreserialized(value);
  return undefined;
}

/** mod_mam's `with`: the peer's bare JID, the recipient for what the user sent, else the sender. */
export function archiveWith(stanza: XmlElement, userJid: string): string {
  const from = stanza.attrs.from;
  const to = stanza.attrs.to ?? from;
  const outgoing = from === undefined || storedBareJid(from) === userJid;
  const peer = outgoing ? to : from;
  return peer === undefined ? '' : storedBareJid(peer);
}

export function archiveRecordFromItem(item: ArchiveItem, userJid: string): ArchiveRecord | undefined {
  const stanza = itemStanza(item.value);
  if (!stanza) return undefined;
  const withJid = item.with !== '' ? item.with : archiveWith(stanza, userJid);
  const timestamp = secondsToIso(item.when);
  // Two literals rather than a spread: this runs once per archived message.
  return withJid !== '' ? { kind: 'archive', id: item.key, timestamp, with: withJid, stanza } : { kind: 'archive', id: item.key, timestamp, stanza };
}

/** Elements in `jabber:server` (a stanza taken from s2s) are `jabber:client` once delivered. */
function clientNamespace(el: XmlElement): XmlElement {
  if (el.xmlns !== 'jabber:server') return el;
  return element(el.name, NS.client, el.attrs, el.children.map((c) => (isElement(c) ? clientNamespace(c) : c)));
}

/** mod_mam never archives the `<stanza-id>` it adds for the archive owner. */
function withoutOwnStanzaId(stanza: XmlElement, userJid: string): XmlElement {
  const own = (c: string | XmlElement): boolean =>
    isElement(c) && c.name === 'stanza-id' && c.xmlns === 'urn:xmpp:sid:0' && c.attrs.by === userJid;
  // Reading the children of a stanza kept as text parses it; the text tells whether to bother.
  if (!mayContainText(stanza, 'stanza-id') || !stanza.children.some(own)) return stanza;
  return element(stanza.name, stanza.xmlns, stanza.attrs, stanza.children.filter((c) => !own(c)));
}

/**
 * The key of an item that came without an id (`id=''`): derived from its time, peer and stanza,
 * so that importing the same document again (a merge) finds the item instead of adding it once
 * more. Shaped as a UUID (version 8, RFC 9562: custom), as Prosody's own keys are UUIDs.
 */
export function contentId(when: number, peer: string, stanza: XmlElement): string {
  const hex = createHash('sha256').update(`${when}\n${peer}\n`).update(serializeElement(stanza)).digest('hex');
  const variant = ((parseInt(hex[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/**
 * `subSecond`: keep the fraction of the time (Prosody 13 on SQLite and in files keeps µs);
 * otherwise whole seconds, as 0.12 (whose util.datetime needs an integer) and PG/MySQL store them.
 */
export function archiveItemFromRecord(record: ArchiveRecord, userJid: string, subSecond = false): ArchiveItem | string {
  const when = (subSecond ? isoToTime : isoToSeconds)(record.timestamp);
  if (when === undefined) return `invalid timestamp ${JSON.stringify(record.timestamp)}`;
  const stanza = withoutOwnStanzaId(clientNamespace(record.stanza), userJid);
  return {
    key: record.id !== '' ? record.id : contentId(when, record.with ?? '', stanza),
    when,
    with: record.with !== undefined && record.with !== '' ? storedBareJid(record.with) : archiveWith(stanza, userJid),
    value: stanza,
  };
}

export function offlineRecordFromItem(item: ArchiveItem): OfflineRecord | undefined {
  const stanza = itemStanza(item.value);
  if (!stanza) return undefined;
  return { kind: 'offline', timestamp: secondsToIso(item.when), stanza };
}

/**
 * The time an offline message was stored: the record's, else its `<delay>`, else now. The stanza
 * is kept as mod_offline stores it: without the delay that says that time (mod_offline adds it
 * on delivery, so keeping it would deliver two) and without ejabberd's archive marks for the
 * user (its `archived` element and the `stanza-id` paired with it). A `stanza-id` alone is
 * Prosody's own mod_mam mark and stays. `subSecond` as for archive items.
 */
export function offlineItemFromRecord(record: OfflineRecord, userJid: string, subSecond = false): ArchiveItem | string {
  let when: number | undefined;
  if (record.timestamp !== undefined) {
    when = (subSecond ? isoToTime : isoToSeconds)(record.timestamp);
    if (when === undefined) return `invalid timestamp ${JSON.stringify(record.timestamp)}`;
  } else {
    const stamp = firstChild(record.stanza, 'delay', NS.delay)?.attrs.stamp;
    when = (stamp !== undefined ? isoToSeconds(stamp) : undefined) ?? nowSeconds();
  }
  return { key: generateUuid(), when, with: '', value: offlineStanza(clientNamespace(record.stanza), when, userJid) };
}

const MAM_TMP = 'urn:xmpp:mam:tmp';
const STANZA_ID = 'urn:xmpp:sid:0';

function offlineStanza(stanza: XmlElement, when: number, userJid: string): XmlElement {
  if (!stanza.children.some((c) => isElement(c) && (c.name === 'delay' || c.xmlns === MAM_TMP))) return stanza;
  const ejabberdIds = new Set(
    stanza.children.filter((c): c is XmlElement => isElement(c) && c.name === 'archived' && c.xmlns === MAM_TMP && c.attrs.by === userJid).map((c) => c.attrs.id),
  );
  let delayDropped = false;
  const drop = (c: string | XmlElement): boolean => {
    if (!isElement(c)) return false;
    if (c.name === 'archived' && c.xmlns === MAM_TMP) return c.attrs.by === userJid;
    if (c.name === 'stanza-id' && c.xmlns === STANZA_ID) return c.attrs.by === userJid && ejabberdIds.has(c.attrs.id);
    if (delayDropped || c.name !== 'delay' || c.xmlns !== NS.delay || c.attrs.stamp === undefined) return false;
    delayDropped = isoToSeconds(c.attrs.stamp) === when;
    return delayDropped;
  };
  const children = stanza.children.filter((c) => !drop(c));
  return children.length === stanza.children.length ? stanza : element(stanza.name, stanza.xmlns, stanza.attrs, children);
}
