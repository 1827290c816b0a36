/**
 * The per-user lists a document may spread over several records, gathered so that a backend
 * writes each once, at the end of the import.
 */
import type { BlocklistRecord, PrivacyList, PrivacyRecord } from '../../records/model.js';

/** Blocklist records: the union of their JIDs, each once, in the order first met. */
export class CollectedBlocklist {
  readonly jids = new Set<string>();

  add(record: BlocklistRecord): void {
    for (const jid of record.items) this.jids.add(jid);
  }
}

/** Privacy records: lists by name (a later list replaces an earlier one of its name), the last default named. */
export class CollectedPrivacy {
  defaultList: string | undefined;
  /** By name, in the order each name was first met. */
  readonly lists = new Map<string, PrivacyList>();

  add(record: PrivacyRecord): void {
    if (record.defaultList !== undefined) this.defaultList = record.defaultList;
    for (const list of record.lists) this.lists.set(list.name, list);
  }

  /** All of it as one record. */
  toRecord(): PrivacyRecord {
    return { kind: 'privacy', ...(this.defaultList !== undefined ? { defaultList: this.defaultList } : {}), lists: [...this.lists.values()] };
  }
}
