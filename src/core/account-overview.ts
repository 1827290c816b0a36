/**
 * What an account holds, in the terms its owner knows: contacts, archived messages, bookmarks,
 * PEP items, offline messages and the rest, counted as the storage streams the records (the
 * archive with its cursor), so a large archive costs time, never memory.
 */
import { DATA_KINDS, type DataKind, type DocumentEvent, type UserRecord, type XmlElement } from '../records/model.js';
import type { StorageBackend, UserRef } from '../storage/backend.js';

export interface AccountOverview {
  readonly contacts: number;
  readonly messages: number;
  readonly bookmarks: number;
  /** PEP items other than bookmarks. */
  readonly pepItems: number;
  readonly offlineMessages: number;
  readonly blocked: number;
  /** 1 when the account has a profile: a vCard-temp, or a vCard4 in PEP. */
  readonly vcard: number;
  readonly privateElements: number;
}

const BOOKMARKS_NODE = 'urn:xmpp:bookmarks:1';
const LEGACY_BOOKMARKS_NODE = 'storage:bookmarks';
/** Where servers that convert vCard-temp keep the profile (XEP-0292 in PEP). */
const VCARD4_NODE = 'urn:xmpp:vcard4';

function conferencesIn(element: XmlElement | null): number {
  if (element === null) return 0;
  return element.children.filter((c) => typeof c !== 'string' && c.name === 'conference').length;
}

/** Counts records as they pass, in the overview's terms: of an account's storage, or of a document to import. */
export class OverviewTally {
  private readonly counts = { contacts: 0, messages: 0, bookmarks: 0, pepItems: 0, offlineMessages: 0, blocked: 0, vcard: 0, privateElements: 0 };
  private pepBookmarks = 0;
  private privateBookmarks = 0;

  add(record: UserRecord | DocumentEvent): void {
    const counts = this.counts;
    switch (record.kind) {
      case 'roster':
        counts.contacts += record.items.length;
        break;
      case 'archive':
        counts.messages++;
        break;
      case 'offline':
        counts.offlineMessages++;
        break;
      case 'vcard':
        counts.vcard = 1;
        break;
      case 'blocklist':
        counts.blocked += record.items.length;
        break;
      case 'private':
        counts.privateElements++;
        if (record.element.name === 'storage' && record.element.xmlns === LEGACY_BOOKMARKS_NODE) this.privateBookmarks += conferencesIn(record.element);
        break;
      case 'pep-item':
        if (record.node === VCARD4_NODE) counts.vcard = 1;
        if (record.node === BOOKMARKS_NODE) this.pepBookmarks++;
        else if (record.node === LEGACY_BOOKMARKS_NODE) this.pepBookmarks += conferencesIn(record.payload);
        else counts.pepItems++;
        break;
      default:
        break;
    }
  }

  result(): AccountOverview {
    // A client keeps its bookmarks in one of the places (servers mirror them): count the fuller one.
    return { ...this.counts, bookmarks: Math.max(this.pepBookmarks, this.privateBookmarks) };
  }
}

/** The overview; null when the account does not exist. */
export async function accountOverview(storage: StorageBackend, ref: UserRef, signal?: AbortSignal): Promise<AccountOverview | null> {
  if (!(await storage.userExists(ref))) return null;
  const include = new Set<DataKind>(DATA_KINDS.filter((k) => k !== 'credentials' && storage.supportedKinds.has(k)));
  const tally = new OverviewTally();
  for await (const record of storage.readUser(ref, { include, ...(signal ? { signal } : {}) })) tally.add(record);
  return tally.result();
}
