/**
 * One import into Prosody's SQL tables, inside a transaction the caller owns. Large kinds are
 * written in batches as the records arrive; the small per-user stores (roster, vCard, blocklist,
 * privacy) are collected and written once at the end, so several records of one kind combine.
 */
import type { ApplyOptions, ApplyReport, SkippedItem, UserRef } from '../backend.js';
import { StorageError } from '../backend.js';
import {
  dataKindOf,
  type DataKind,
  type OpaqueRecord,
  type PendingSubscriptionRecord,
  type PrivacyList,
  type RosterItem,
  type UserRecord,
  type UserStart,
  type VCardRecord,
} from '../../xep0227/model.js';
import { accountToStore, type ProsodyHostOptions } from '../prosody/accounts.js';
import { ARCHIVE_STORE, OFFLINE_STORE, archiveItemFromRecord, offlineItemFromRecord, type ArchiveItem } from '../prosody/archive.js';
import { blocklistToStore } from '../prosody/blocklist.js';
import { LuaTable, type LuaValue } from '../prosody/lua.js';
import { archiveItemFromElement, isProsodyStoreElement, storeFromElement } from '../prosody/opaque.js';
import { PEP_ITEMS_PREFIX, PEP_STORE, defaultPepNode, pepItemToArchive, pepItemsStore, pepNodeToStore } from '../prosody/pep.js';
import { privacyToStore } from '../prosody/privacy.js';
import { privateToStore } from '../prosody/private.js';
import { parseRosterVersion, pendingToStore, rosterItemToStore, rosterMetaToStore, storedRosterVersion } from '../prosody/roster.js';
import { PRIVATE_STORES, TYPED_STORES, typedArchiveKind } from '../prosody/stores.js';
import { bareJid, nowSeconds } from '../prosody/util.js';
import { StoredValueError, serializeValue } from '../prosody/values.js';
import { vcardToStore } from '../prosody/vcard.js';
import type { SqlSession } from './dialect.js';
import {
  INSERT_BATCH,
  deleteArchiveKeys,
  deleteArchiveStore,
  deleteStore,
  existingArchiveKeys,
  insertArchiveItems,
  listStores,
  mapKeyExists,
  readArchive,
  readKeyval,
  writeKeyval,
  writeMapExtra,
  writeMapKeys,
  type Owner,
} from './rows.js';

/** Which stores each kind owns, for `replace`. */
const KIND_STORES: Partial<Record<DataKind, readonly string[]>> = {
  roster: ['roster'],
  vcard: ['vcard'],
  private: ['private'],
  pep: [PEP_STORE],
  blocklist: ['blocklist'],
  privacy: ['privacy'],
};

export class UserImport {
  private readonly owner: Owner;
  private readonly jid: string;
  private readonly counts: Partial<Record<DataKind, number>> = {};
  private readonly skipped: SkippedItem[] = [];
  private readonly warnings: string[] = [];
  private readonly notIncluded = new Map<DataKind, number>();
  private readonly duplicates = new Map<DataKind, number>();

  private rosterItems: Map<string, RosterItem> | undefined;
  private rosterVersion: string | undefined;
  private readonly pending = new Map<string, PendingSubscriptionRecord>();
  /** The roster before the import (merge), and the version any roster had (both modes). */
  private existingRoster: LuaTable | undefined;
  private vcard: VCardRecord | undefined;
  private blocked: Set<string> | undefined;
  private privacy: { defaultList?: string; lists: Map<string, PrivacyList> } | undefined;

  private readonly pepNodes = new Set<string>();
  private readonly pepItemNodes = new Set<string>();
  /** Items waiting for their INSERT, per archive store. */
  private readonly batches = new Map<string, ArchiveItem[]>();
  private batched = 0;
  private offlineSeen: Set<string> | undefined;
  private readonly opaqueWritten = new Set<string>();

  constructor(
    private readonly db: SqlSession,
    private readonly ref: UserRef,
    private readonly host: ProsodyHostOptions,
    private readonly options: ApplyOptions,
    private readonly importStores: ReadonlySet<string>,
  ) {
    this.owner = { host: ref.host, user: ref.user };
    this.jid = `${ref.user}@${ref.host}`;
  }

  private includes(kind: DataKind): boolean {
    return this.options.include.has(kind);
  }

  private count(kind: DataKind, n = 1): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + n;
  }

  private skip(kind: DataKind, reason: string, detail?: string): void {
    this.skipped.push({ kind, reason, ...(detail !== undefined ? { detail } : {}) });
  }

  async run(account: UserStart, records: AsyncIterable<UserRecord>): Promise<ApplyReport> {
    const existing = await readKeyval(this.db, this.owner, 'accounts');
    const exists = existing !== undefined && !existing.isEmpty;
    if (!exists && !this.options.createAccount) throw new StorageError('user-not-found', `${this.jid} does not exist`);
    if (!exists || this.includes('credentials')) await this.applyAccount(account, exists ? existing : undefined);

    if (this.includes('roster')) {
      const roster = await readKeyval(this.db, this.owner, 'roster');
      if (roster && !roster.isEmpty) this.existingRoster = roster;
    }
    if (this.options.mode === 'replace') await this.clear();

    for await (const record of records) {
      this.options.signal?.throwIfAborted();
      await this.add(record);
    }
    this.options.signal?.throwIfAborted();
    await this.finish();
    return this.report(!exists);
  }

  private async applyAccount(account: UserStart, existing: LuaTable | undefined): Promise<void> {
    const result = accountToStore(account, this.host, {
      ...(existing ? { existing } : {}),
      applyCredentials: this.includes('credentials'),
      mode: this.options.mode,
    });
    await writeKeyval(this.db, this.owner, 'accounts', result.data);
    this.warnings.push(...result.warnings);
    this.skipped.push(...result.skipped);
    if (result.credentialsApplied) this.count('credentials');
  }

  /** `replace`: the selected kinds' stores emptied before anything is written. */
  private async clear(): Promise<void> {
    for (const [kind, stores] of Object.entries(KIND_STORES) as [DataKind, readonly string[]][]) {
      if (!this.includes(kind)) continue;
      for (const store of stores) await deleteStore(this.db, this.owner, store);
    }
    if (this.includes('archive')) await deleteArchiveStore(this.db, this.owner, ARCHIVE_STORE);
    if (this.includes('offline')) await deleteArchiveStore(this.db, this.owner, OFFLINE_STORE);
    if (this.includes('pep') || this.includes('other')) {
      for (const store of await listStores(this.db, this.owner, true)) {
        const pep = store.startsWith(PEP_ITEMS_PREFIX);
        if ((pep && this.includes('pep')) || (!pep && this.includes('other') && this.importStores.has(store))) {
          await deleteArchiveStore(this.db, this.owner, store);
        }
      }
    }
    if (this.includes('other')) {
      for (const store of await listStores(this.db, this.owner, false)) {
        if (this.importStores.has(store)) await deleteStore(this.db, this.owner, store);
      }
    }
  }

  private async add(record: UserRecord): Promise<void> {
    const kind = dataKindOf(record);
    if (!this.includes(kind)) {
      this.notIncluded.set(kind, (this.notIncluded.get(kind) ?? 0) + 1);
      return;
    }
    switch (record.kind) {
      case 'roster':
        this.rosterItems ??= new Map();
        for (const item of record.items) this.rosterItems.set(item.jid, item);
        if (record.version !== undefined) this.rosterVersion = record.version;
        this.count('roster');
        return;
      case 'pending-subscription':
        this.pending.set(bareJid(record.from), record);
        this.count('roster');
        return;
      case 'vcard':
        this.vcard = record;
        this.count('vcard');
        return;
      case 'private': {
        const entry = privateToStore(record);
        if (!entry) {
          this.skip('private', 'an element without children: Prosody stores nothing', `${record.element.name}:${record.element.xmlns}`);
          return;
        }
        await writeMapKeys(this.db, this.owner, 'private', [entry]);
        this.count('private');
        return;
      }
      case 'pep-node':
        await writeMapKeys(this.db, this.owner, PEP_STORE, [{ key: record.node, value: pepNodeToStore(record, this.skipped) }]);
        this.pepNodes.add(record.node);
        this.count('pep');
        return;
      case 'pep-item': {
        const item = pepItemToArchive(record);
        if (typeof item === 'string') {
          this.skip('pep', item, `${record.node} ${record.id}`);
          return;
        }
        this.pepItemNodes.add(record.node);
        this.count('pep');
        await this.enqueue(pepItemsStore(record.node), item);
        return;
      }
      case 'archive': {
        const item = archiveItemFromRecord(record, this.jid);
        if (typeof item === 'string') this.skip('archive', item, record.id);
        else await this.enqueue(ARCHIVE_STORE, item);
        return;
      }
      case 'offline': {
        const item = offlineItemFromRecord(record);
        if (typeof item === 'string') this.skip('offline', item);
        else await this.enqueue(OFFLINE_STORE, item);
        return;
      }
      case 'blocklist':
        this.blocked ??= new Set();
        for (const jid of record.items) this.blocked.add(jid);
        this.count('blocklist');
        return;
      case 'privacy':
        this.privacy ??= { lists: new Map() };
        if (record.defaultList !== undefined) this.privacy.defaultList = record.defaultList;
        for (const list of record.lists) this.privacy.lists.set(list.name, list);
        this.count('privacy');
        return;
      case 'opaque':
        await this.addOpaque(record);
        return;
    }
  }

  private async addOpaque(record: OpaqueRecord): Promise<void> {
    const el = record.element;
    if (!isProsodyStoreElement(el)) {
      this.skip('other', 'no Prosody store holds this element', `{${el.xmlns}}${el.name}`);
      return;
    }
    let parsed: { store: string; data: LuaTable } | { store: string; item: ArchiveItem };
    try {
      parsed = el.name === 'store' ? storeFromElement(el) : archiveItemFromElement(el);
    } catch (err) {
      if (!(err instanceof StoredValueError)) throw err;
      this.skip('other', `invalid store data: ${err.message}`, el.attrs.name ?? el.attrs.store);
      return;
    }
    const { store } = parsed;
    const archive = 'item' in parsed;
    const typed = archive ? typedArchiveKind(store) !== undefined : TYPED_STORES.has(store);
    if (typed || PRIVATE_STORES.has(store) || !this.importStores.has(store)) {
      this.skip('other', 'store is not importable', store);
      return;
    }
    if ('item' in parsed) {
      await this.enqueue(store, parsed.item);
    } else {
      let data = parsed.data;
      if (this.options.mode === 'merge' || this.opaqueWritten.has(store)) {
        const current = await readKeyval(this.db, this.owner, store);
        if (current) {
          for (const [key, value] of data.entries()) current.set(key, value);
          data = current;
        }
      }
      await writeKeyval(this.db, this.owner, store, data);
      this.opaqueWritten.add(store);
    }
    this.count('other');
  }

  private async enqueue(store: string, item: ArchiveItem): Promise<void> {
    let batch = this.batches.get(store);
    if (!batch) {
      batch = [];
      this.batches.set(store, batch);
    }
    batch.push(item);
    if (++this.batched >= INSERT_BATCH) await this.flush();
  }

  private async flush(): Promise<void> {
    for (const [store, items] of this.batches) {
      if (store === ARCHIVE_STORE) await this.flushArchive(items);
      else if (store === OFFLINE_STORE) await this.flushOffline(items);
      else await this.flushReplacing(store, items);
    }
    this.batches.clear();
    this.batched = 0;
  }

  /** MAM: an id already archived (or seen earlier in the document) is the same message. */
  private async flushArchive(items: ArchiveItem[]): Promise<void> {
    const seen = await existingArchiveKeys(this.db, this.owner, ARCHIVE_STORE, [...new Set(items.map((i) => i.key))]);
    const fresh: ArchiveItem[] = [];
    for (const item of items) {
      if (seen.has(item.key)) continue;
      seen.add(item.key);
      fresh.push(item);
    }
    this.noteDuplicates('archive', items.length - fresh.length);
    await insertArchiveItems(this.db, this.owner, ARCHIVE_STORE, fresh);
    this.count('archive', fresh.length);
  }

  /** Offline messages have no id of their own: a merge skips one stored at the same time with the same content. */
  private async flushOffline(items: ArchiveItem[]): Promise<void> {
    let fresh = items;
    if (this.options.mode === 'merge') {
      this.offlineSeen ??= await this.storedOffline();
      const seen = this.offlineSeen;
      fresh = items.filter((item) => {
        const id = offlineIdentity(item.when, item.value);
        if (seen.has(id)) return false;
        seen.add(id);
        return true;
      });
      this.noteDuplicates('offline', items.length - fresh.length);
    }
    await insertArchiveItems(this.db, this.owner, OFFLINE_STORE, fresh);
    this.count('offline', fresh.length);
  }

  private async storedOffline(): Promise<Set<string>> {
    const seen = new Set<string>();
    for await (const row of readArchive(this.db, this.owner, OFFLINE_STORE, 1000)) seen.add(offlineIdentity(row.when, row.value));
    return seen;
  }

  /** archive_store:append semantics: an item with the same key replaces the stored one. */
  private async flushReplacing(store: string, items: ArchiveItem[]): Promise<void> {
    const last = new Map<string, ArchiveItem>();
    for (const item of items) {
      last.delete(item.key);
      last.set(item.key, item);
    }
    await deleteArchiveKeys(this.db, this.owner, store, [...last.keys()]);
    await insertArchiveItems(this.db, this.owner, store, [...last.values()]);
  }

  private noteDuplicates(kind: DataKind, n: number): void {
    if (n > 0) this.duplicates.set(kind, (this.duplicates.get(kind) ?? 0) + n);
  }

  private async finish(): Promise<void> {
    await this.flush();
    await this.writeRoster();
    if (this.vcard) await writeKeyval(this.db, this.owner, 'vcard', vcardToStore(this.vcard));
    if (this.blocked) {
      const existing = this.options.mode === 'merge' ? await readKeyval(this.db, this.owner, 'blocklist') : undefined;
      await writeKeyval(this.db, this.owner, 'blocklist', blocklistToStore({ kind: 'blocklist', items: [...this.blocked] }, nowSeconds(), existing));
    }
    if (this.privacy) {
      const existing = this.options.mode === 'merge' ? await readKeyval(this.db, this.owner, 'privacy') : undefined;
      const record = { kind: 'privacy' as const, ...(this.privacy.defaultList !== undefined ? { defaultList: this.privacy.defaultList } : {}), lists: [...this.privacy.lists.values()] };
      await writeKeyval(this.db, this.owner, 'privacy', privacyToStore(record, existing));
    }
    // Items are only served for a node Prosody knows: create the node as publishing would have.
    for (const node of this.pepItemNodes) {
      if (this.pepNodes.has(node) || (await mapKeyExists(this.db, this.owner, PEP_STORE, node))) continue;
      await writeMapKeys(this.db, this.owner, PEP_STORE, [{ key: node, value: defaultPepNode(node, this.jid) }]);
    }
  }

  private async writeRoster(): Promise<void> {
    const existing = this.existingRoster;
    const touched = this.rosterItems !== undefined || this.pending.size > 0;
    // Even an emptied roster needs its version moved on, or a client would keep its cached copy.
    if (!touched && !(this.options.mode === 'replace' && existing)) return;
    const merge = this.options.mode === 'merge';
    const entries: { key: string; value: LuaValue | undefined }[] = [];
    for (const item of this.rosterItems?.values() ?? []) {
      if (item.jid === this.jid || item.jid === '') continue;
      entries.push({ key: item.jid, value: rosterItemToStore(item) });
    }
    const pending = new Map<string, LuaValue>();
    const existingMeta = existing?.get(false);
    if (merge && existingMeta instanceof LuaTable) {
      const old = existingMeta.get('pending');
      if (old instanceof LuaTable) for (const [jid, value] of old.hash) pending.set(jid, value);
    }
    for (const [jid, record] of this.pending) pending.set(jid, pendingToStore(record, this.jid));
    const existingVersion = existing ? (storedRosterVersion(existingMeta) ?? 0) : undefined;
    const meta = rosterMetaToStore(pending, parseRosterVersion(this.rosterVersion), existingVersion);
    if (merge) {
      await writeMapKeys(this.db, this.owner, 'roster', entries);
      const extra = new LuaTable();
      if (existing) for (const [key, value] of existing.entries()) if (typeof key !== 'string') extra.set(key, value);
      extra.set(false, meta);
      await writeMapExtra(this.db, this.owner, 'roster', extra);
    } else {
      const data = new LuaTable();
      for (const { key, value } of entries) data.set(key, value);
      data.set(false, meta);
      await writeKeyval(this.db, this.owner, 'roster', data);
    }
  }

  private report(created: boolean): ApplyReport {
    const skipped = [...this.skipped];
    for (const [kind, n] of this.duplicates) skipped.push({ kind, reason: 'already stored', detail: `${n} record(s)` });
    for (const [kind, n] of this.notIncluded) skipped.push({ kind, reason: 'kind not included', detail: `${n} record(s)` });
    return {
      user: this.jid,
      mode: this.options.mode,
      dryRun: this.options.dryRun,
      created,
      counts: this.counts,
      skipped,
      unsupported: [],
      warnings: this.warnings,
    };
  }
}

function offlineIdentity(when: number, value: LuaValue): string {
  const stored = serializeValue(value);
  return `${when}\u0000${stored.type}\u0000${stored.value}`;
}
