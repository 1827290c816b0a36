/**
 * XEP-0048 private bookmarks (`<storage xmlns='storage:bookmarks'>` in private XML) ↔ XEP-0402
 * PEP bookmarks (one `urn:xmpp:bookmarks:1` item per room, its id the room JID), converted as
 * XEP-0402 §5.3 maps them. ejabberd 24.12 keeps both forms in sync whenever a client writes one;
 * an import writes its tables directly, so it does the same itself.
 */
import { childElements, element, firstChild, textOf, type NodeConfigField, type XmlElement } from '../../records/model.js';
import { NS } from '../../records/namespaces.js';

export const LEGACY_NS = NS.legacyBookmarks;
export const PEP_BOOKMARKS_NODE = NS.bookmarks;

/** The node configuration XEP-0402 §5.2 requires of the bookmarks node. */
export const PEP_BOOKMARKS_CONFIG: readonly NodeConfigField[] = [
  { var: 'pubsub#persist_items', values: ['true'] },
  { var: 'pubsub#max_items', values: ['max'] },
  { var: 'pubsub#send_last_published_item', values: ['never'] },
  { var: 'pubsub#access_model', values: ['whitelist'] },
];

export interface PepBookmark {
  /** The room's JID (the item id). */
  readonly id: string;
  readonly payload: XmlElement;
}

function truthy(value: string | undefined): boolean {
  return value === 'true' || value === '1';
}

/** Each `<conference/>` of a legacy `<storage/>` as a XEP-0402 item. */
export function pepFromLegacy(storage: XmlElement): PepBookmark[] {
  const out = new Map<string, PepBookmark>();
  for (const conf of childElements(storage, 'conference', LEGACY_NS)) {
    const jid = conf.attrs.jid;
    if (jid === undefined || jid === '') continue;
    const children: XmlElement[] = [];
    const nick = firstChild(conf, 'nick', LEGACY_NS);
    if (nick) children.push(element('nick', PEP_BOOKMARKS_NODE, {}, [textOf(nick)]));
    const password = firstChild(conf, 'password', LEGACY_NS);
    if (password) children.push(element('password', PEP_BOOKMARKS_NODE, {}, [textOf(password)]));
    const attrs: Record<string, string> = { autojoin: truthy(conf.attrs.autojoin) ? 'true' : 'false' };
    if (conf.attrs.name !== undefined) attrs.name = conf.attrs.name;
    out.set(jid, { id: jid, payload: element('conference', PEP_BOOKMARKS_NODE, attrs, children) });
  }
  return [...out.values()];
}

/** XEP-0402 items as one legacy `<storage/>` (extensions have no place there and are left out). */
export function legacyFromPep(items: readonly PepBookmark[]): XmlElement {
  const conferences: XmlElement[] = [];
  for (const { id, payload } of items) {
    if (payload.name !== 'conference' || payload.xmlns !== PEP_BOOKMARKS_NODE) continue;
    const children: XmlElement[] = [];
    const nick = firstChild(payload, 'nick', PEP_BOOKMARKS_NODE);
    if (nick) children.push(element('nick', LEGACY_NS, {}, [textOf(nick)]));
    const password = firstChild(payload, 'password', PEP_BOOKMARKS_NODE);
    if (password) children.push(element('password', LEGACY_NS, {}, [textOf(password)]));
    const attrs: Record<string, string> = { jid: id, autojoin: truthy(payload.attrs.autojoin) ? 'true' : 'false' };
    if (payload.attrs.name !== undefined) attrs.name = payload.attrs.name;
    conferences.push(element('conference', LEGACY_NS, attrs, children));
  }
  return element('storage', LEGACY_NS, {}, conferences);
}
