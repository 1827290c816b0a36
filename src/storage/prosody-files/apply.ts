/**
 * One import into Prosody's internal storage files. The rules are those of the SQL backend's
 * import (src/storage/prosody-sql/apply.ts), over files instead of rows:
 *
 * - `replace` empties the selected kinds' stores first; `merge` keeps what is there;
 * - roster: contacts by JID, the document's win; pending requests added; version moved on;
 * - private by (name, namespace) and PEP nodes by name: the document's replace stored ones;
 * - PEP items (and opaque archive items) by key, as `archive:append` with a key does: the stored
 *   item goes, the document's is appended; within the document the last one counts;
 * - MAM archive by id: an id already stored (or earlier in the document) is skipped;
 * - offline messages: on merge, one stored at the same time with the same stanza is skipped;
 * - blocklist: union; privacy lists by name; vCard replaced.
 *
 * Small stores are read whole, changed in memory and written once at the end. Archive stores
 * are streamed: the stored file is copied byte for byte into the new one and the document's items
 * appended after it in the same pass (Prosody itself would rewrite the whole file per item).
 * Everything goes through one {@link FileTransaction}, so nothing is visible before the commit.
 */
import type { ApplyOptions, ApplyReport, SkippedItem, UserRef } from '../backend.js';
import { StorageError } from '../backend.js';
import { dataKindOf, type DataKind, type OpaqueRecord, type PendingSubscriptionRecord, type PrivacyList, type RosterItem, type UserRecord, type UserStart, type VCardRecord } from '../../xep0227/model.js';
import { accountToStore, type ProsodyHostOptions } from '../prosody/accounts.js';
import { ARCHIVE_STORE, OFFLINE_STORE, archiveItemFromRecord, itemStanza, offlineItemFromRecord, type ArchiveItem } from '../prosody/archive.js';
import { blocklistToStore } from '../prosody/blocklist.js';
import { LuaTable, isStanzaValue, type LuaValue } from '../prosody/lua.js';
import { archiveItemFromElement, isProsodyStoreElement, storeFromElement } from '../prosody/opaque.js';
import { PEP_ITEMS_PREFIX, PEP_STORE, defaultPepNode, pepItemToArchive, pepItemsStore, pepNodeToStore } from '../prosody/pep.js';
import { privacyToStore } from '../prosody/privacy.js';
import { privateToStore } from '../prosody/private.js';
import { parseRosterVersion, pendingToStore, rosterItemToStore, rosterMetaToStore, storedRosterVersion } from '../prosody/roster.js';
import { PRIVATE_STORES, TYPED_STORES, typedArchiveKind } from '../prosody/stores.js';
import { bareJid, nowSeconds } from '../prosody/util.js';
import { StoredValueError } from '../prosody/values.js';
import { serializeXmlValue } from '../prosody/stanza.js';
import { vcardToStore } from '../prosody/vcard.js';
import type { FileStore } from './files.js';
import { ListItemError, archiveItemFromList, archiveItemToList } from './list-items.js';
import { LuaSerializeError, serializeDatFile, serializeListItem } from './lua-serialize.js';
import type { FileTransaction, StagedFile } from './transaction.js';

/** keyval stores each kind owns, for `replace`. */
const KIND_STORES: Partial<Record<DataKind, readonly string[]>> = {
  roster: ['roster'],
  vcard: ['vcard'],
  private: ['private'],
  pep: [PEP_STORE],
  blocklist: ['blocklist'],
  privacy: ['privacy'],
};

/** mod_storage_internal's `storage_archive_item_limit` default. */
export const DEFAULT_ARCHIVE_ITEM_LIMIT = 10000;

export interface FilesImportSettings {
  readonly host: ProsodyHostOptions;
  readonly importStores: ReadonlySet<string>;
  readonly archiveItemLimit: number;
}

/**
 * How an archive store takes new items:
 * - `first-wins`: a key already there (stored or added) is a duplicate (MAM);
 * - `same-content`: an item with the same time and stanza as one there is a duplicate (offline, merge);
 * - `append`: every item is added (offline, replace);
 * - `last-wins`: an item replaces any with its key, wherever it is (PEP items, opaque stores).
 */
type ListPolicy = 'first-wins' | 'same-content' | 'append' | 'last-wins';

function itemIdentity(item: ArchiveItem): string {
  const stanza = itemStanza(item.value);
  return `${Math.floor(item.when)}\u0000${stanza ? serializeXmlValue(stanza) : ''}`;
}

/** One `.list` file being rebuilt. */
class ListStage {
  private out: StagedFile | undefined;
  private prepared = false;
  private baseExists = false;
  private baseCount = 0;
  private readonly seen = new Set<string>();
  /** `last-wins`: serialized items by key, in the order their last occurrence came. */
  private readonly latest = new Map<string, string>();
  written = 0;

  constructor(
    private readonly files: FileStore,
    private readonly tx: FileTransaction,
    readonly store: string,
    readonly path: string,
    private readonly keepBase: boolean,
    private readonly policy: ListPolicy,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** Reads what the stored file already holds, as far as the policy needs it. */
  private async prepare(): Promise<void> {
    if (this.prepared) return;
    this.prepared = true;
    this.baseExists = (await this.tx.observe(this.path)) && this.keepBase;
    if (!this.baseExists) return;
    let position = 0;
    for await (const value of this.files.readListValues(this.path, this.signal)) {
      position++;
      this.baseCount++;
      if (this.policy === 'first-wins') this.seen.add(keyOf(value, position));
      else if (this.policy === 'same-content') this.seen.add(this.identityOf(value, position));
    }
  }

  private identityOf(value: LuaValue, position: number): string {
    try {
      return itemIdentity(archiveItemFromList(value, position));
    } catch (err) {
      return this.files.fail(this.path, err);
    }
  }

  private item(item: ArchiveItem): string {
    try {
      return serializeListItem(archiveItemToList(item, { keepEmptyWith: this.store === OFFLINE_STORE || this.store === ARCHIVE_STORE }));
    } catch (err) {
      if (err instanceof ListItemError || err instanceof LuaSerializeError) throw new StorageError('invalid-data', `${this.store} item ${item.key}: ${err.message}`, { cause: err });
      throw err;
    }
  }

  /** False when the item is a duplicate that was not added. */
  async add(item: ArchiveItem): Promise<boolean> {
    await this.prepare();
    const text = this.item(item);
    if (this.policy === 'last-wins') {
      this.latest.delete(item.key);
      this.latest.set(item.key, text);
      return true;
    }
    if (this.policy === 'first-wins' || this.policy === 'same-content') {
      const id = this.policy === 'first-wins' ? item.key : itemIdentity(item);
      if (this.seen.has(id)) return false;
      this.seen.add(id);
    }
    if (!this.out) {
      this.out = await this.tx.stage(this.path);
      // The stored items stay exactly as Prosody wrote them; new ones follow, as appends would.
      if (this.baseExists) await this.out.appendFileContents(this.path);
    }
    await this.out.write(text);
    this.written++;
    return true;
  }

  /** Items the file holds after the import. */
  async finish(): Promise<number> {
    await this.prepare();
    if (this.policy === 'last-wins' && this.latest.size > 0) {
      const out = await this.tx.stage(this.path);
      let kept = 0;
      if (this.baseExists) {
        let position = 0;
        for await (const value of this.files.readListValues(this.path, this.signal)) {
          position++;
          if (this.latest.has(keyOf(value, position))) continue;
          await out.write(serializeListItem(value));
          kept++;
        }
      }
      for (const text of this.latest.values()) await out.write(text);
      this.written = this.latest.size;
      return kept + this.written;
    }
    if (!this.out && !this.keepBase) await this.tx.remove(this.path);
    return (this.baseExists ? this.baseCount : 0) + this.written;
  }
}

function keyOf(value: LuaValue, position: number): string {
  const key = value instanceof LuaTable ? value.get('key') : undefined;
  return typeof key === 'string' ? key : String(position);
}

export class FilesImport {
  private readonly jid: string;
  private readonly counts: Partial<Record<DataKind, number>> = {};
  private readonly skipped: SkippedItem[] = [];
  private readonly warnings: string[] = [];
  private readonly notIncluded = new Map<DataKind, number>();
  private readonly duplicates = new Map<DataKind, number>();

  private rosterItems: Map<string, RosterItem> | undefined;
  private rosterVersion: string | undefined;
  private readonly pending = new Map<string, PendingSubscriptionRecord>();
  private existingRoster: LuaTable | undefined;
  private vcard: VCardRecord | undefined;
  private blocked: Set<string> | undefined;
  private privacy: { defaultList?: string; lists: Map<string, PrivacyList> } | undefined;
  private readonly pepNodes = new Set<string>();
  private readonly pepItemNodes = new Set<string>();

  /** keyval stores: the new content, for every store that will be written (or removed when empty). */
  private readonly tables = new Map<string, LuaTable>();
  /** keyval stores emptied by `replace`. */
  private readonly clearedTables = new Set<string>();
  private readonly lists = new Map<string, ListStage>();
  /** archive stores emptied by `replace`. */
  private readonly clearedLists = new Set<string>();

  constructor(
    private readonly files: FileStore,
    private readonly tx: FileTransaction,
    private readonly ref: UserRef,
    private readonly settings: FilesImportSettings,
    private readonly options: ApplyOptions,
  ) {
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

  private datPath(store: string): string {
    return this.files.path(this.ref.host, store, this.ref.user, 'dat');
  }

  /** The stored table (empty when there is none), noted so that a concurrent change is caught. */
  private async readStored(store: string): Promise<LuaTable | undefined> {
    const path = this.datPath(store);
    await this.tx.observe(path);
    return this.files.readTable(path);
  }

  /** The table a keyval store will hold: loaded on first use, written at the end. */
  private async table(store: string): Promise<LuaTable> {
    let table = this.tables.get(store);
    if (!table) {
      table = (this.clearedTables.has(store) ? undefined : await this.readStored(store)) ?? new LuaTable();
      this.tables.set(store, table);
    }
    return table;
  }

  private list(store: string): ListStage {
    let stage = this.lists.get(store);
    if (!stage) {
      const replace = this.options.mode === 'replace';
      const policy: ListPolicy =
        store === ARCHIVE_STORE ? 'first-wins' : store === OFFLINE_STORE ? (replace ? 'append' : 'same-content') : 'last-wins';
      const path = this.files.path(this.ref.host, store, this.ref.user, 'list');
      stage = new ListStage(this.files, this.tx, store, path, !this.clearedLists.has(store), policy, this.options.signal);
      this.lists.set(store, stage);
    }
    return stage;
  }

  async run(account: UserStart, records: AsyncIterable<UserRecord>): Promise<ApplyReport> {
    const existing = await this.readStored('accounts');
    const exists = existing !== undefined;
    if (!exists && !this.options.createAccount) throw new StorageError('user-not-found', `${this.jid} does not exist`);
    if (!exists || this.includes('credentials')) this.applyAccount(account, existing);

    if (this.includes('roster')) this.existingRoster = await this.readStored('roster');
    if (this.options.mode === 'replace') await this.clear();

    for await (const record of records) {
      this.options.signal?.throwIfAborted();
      await this.add(record);
    }
    this.options.signal?.throwIfAborted();
    await this.finish();
    return this.report(!exists);
  }

  private applyAccount(account: UserStart, existing: LuaTable | undefined): void {
    const result = accountToStore(account, this.settings.host, {
      ...(existing ? { existing } : {}),
      applyCredentials: this.includes('credentials'),
      mode: this.options.mode,
    });
    this.tables.set('accounts', result.data);
    this.warnings.push(...result.warnings);
    this.skipped.push(...result.skipped);
    if (result.credentialsApplied) this.count('credentials');
  }

  /** `replace`: the selected kinds' stores start out empty. */
  private async clear(): Promise<void> {
    for (const [kind, stores] of Object.entries(KIND_STORES) as [DataKind, readonly string[]][]) {
      if (!this.includes(kind)) continue;
      for (const store of stores) this.clearTable(store);
    }
    if (this.includes('archive')) this.clearList(ARCHIVE_STORE);
    if (this.includes('offline')) this.clearList(OFFLINE_STORE);
    const { host, user } = this.ref;
    if (this.includes('pep') || this.includes('other')) {
      for (const store of await this.files.userStores(host, user, 'list')) {
        const pep = store.startsWith(PEP_ITEMS_PREFIX);
        if ((pep && this.includes('pep')) || (!pep && this.includes('other') && this.settings.importStores.has(store))) this.clearList(store);
      }
    }
    if (this.includes('other')) {
      for (const store of await this.files.userStores(host, user, 'dat')) {
        if (this.settings.importStores.has(store)) this.clearTable(store);
      }
    }
  }

  private clearTable(store: string): void {
    this.clearedTables.add(store);
    this.tables.set(store, new LuaTable());
  }

  private clearList(store: string): void {
    this.clearedLists.add(store);
    this.list(store);
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
        (await this.table('private')).set(entry.key, entry.value);
        this.count('private');
        return;
      }
      case 'pep-node':
        (await this.table(PEP_STORE)).set(record.node, pepNodeToStore(record, this.skipped));
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
        await this.list(pepItemsStore(record.node)).add(item);
        return;
      }
      case 'archive': {
        const item = archiveItemFromRecord(record, this.jid);
        if (typeof item === 'string') this.skip('archive', item, record.id);
        else if (await this.list(ARCHIVE_STORE).add(item)) this.count('archive');
        else this.noteDuplicate('archive');
        return;
      }
      case 'offline': {
        const item = offlineItemFromRecord(record);
        if (typeof item === 'string') this.skip('offline', item);
        else if (await this.list(OFFLINE_STORE).add(item)) this.count('offline');
        else this.noteDuplicate('offline');
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
    if (typed || PRIVATE_STORES.has(store) || !this.settings.importStores.has(store)) {
      this.skip('other', 'store is not importable', store);
      return;
    }
    if ('item' in parsed) {
      if (!isStanzaValue(parsed.item.value)) {
        this.skip('other', "Prosody's internal storage keeps only stanzas in archive stores", `${store} ${parsed.item.key}`);
        return;
      }
      await this.list(store).add(parsed.item);
    } else {
      const table = await this.table(store);
      for (const [key, value] of parsed.data.entries()) table.set(key, value);
    }
    this.count('other');
  }

  private noteDuplicate(kind: DataKind): void {
    this.duplicates.set(kind, (this.duplicates.get(kind) ?? 0) + 1);
  }

  private async finish(): Promise<void> {
    for (const stage of this.lists.values()) {
      const total = await stage.finish();
      const limit = this.settings.archiveItemLimit;
      if (total > limit && stage.written > 0) {
        // mod_storage_internal refuses appends at the limit; mod_mam reacts by truncating (mod_mam.lua `archive_truncate`).
        const consequence =
          stage.store === ARCHIVE_STORE
            ? `at the next message it archives, mod_mam truncates the archive to the newest ${Math.floor(limit * 0.99)}`
            : 'Prosody refuses to add anything more to it';
        this.warnings.push(
          `${stage.store} now holds ${total} items, more than Prosody's storage_archive_item_limit (${limit}${limit === DEFAULT_ARCHIVE_ITEM_LIMIT ? ', the default' : ''}): ` +
            `all were written, but ${consequence}; raise storage_archive_item_limit to keep them`,
        );
      }
    }
    await this.writeRoster();
    if (this.vcard) this.tables.set('vcard', vcardToStore(this.vcard));
    if (this.blocked) {
      const existing = this.options.mode === 'merge' ? await this.readStored('blocklist') : undefined;
      this.tables.set('blocklist', blocklistToStore({ kind: 'blocklist', items: [...this.blocked] }, nowSeconds(), existing));
    }
    if (this.privacy) {
      const existing = this.options.mode === 'merge' ? await this.readStored('privacy') : undefined;
      const record = { kind: 'privacy' as const, ...(this.privacy.defaultList !== undefined ? { defaultList: this.privacy.defaultList } : {}), lists: [...this.privacy.lists.values()] };
      this.tables.set('privacy', privacyToStore(record, existing));
    }
    if (this.pepItemNodes.size > 0) {
      // Items are only served for a node Prosody knows: create the node as publishing would have.
      const known = this.tables.get(PEP_STORE) ?? (this.clearedTables.has(PEP_STORE) ? undefined : await this.readStored(PEP_STORE));
      const missing = [...this.pepItemNodes].filter((node) => !this.pepNodes.has(node) && known?.get(node) === undefined);
      if (missing.length > 0) {
        const nodes = known ?? new LuaTable();
        for (const node of missing) nodes.set(node, defaultPepNode(node, this.jid));
        this.tables.set(PEP_STORE, nodes);
      }
    }
    for (const [store, table] of this.tables) {
      const path = this.datPath(store);
      // datamanager.store removes the file of an empty table.
      if (table.isEmpty) {
        await this.tx.remove(path);
        continue;
      }
      let text: string;
      try {
        text = serializeDatFile(table);
      } catch (err) {
        if (err instanceof LuaSerializeError) throw new StorageError('invalid-data', `${store}: ${err.message}`, { cause: err });
        throw err;
      }
      const out = await this.tx.stage(path);
      await out.write(text);
    }
  }

  private async writeRoster(): Promise<void> {
    const existing = this.existingRoster;
    const touched = this.rosterItems !== undefined || this.pending.size > 0;
    // Even an emptied roster needs its version moved on, or a client would keep its cached copy.
    if (!touched && !(this.options.mode === 'replace' && existing)) return;
    const merge = this.options.mode === 'merge';
    const data = new LuaTable();
    if (merge && existing) for (const [key, value] of existing.entries()) data.set(key, value);
    for (const item of this.rosterItems?.values() ?? []) {
      if (item.jid === this.jid || item.jid === '') continue;
      data.set(item.jid, rosterItemToStore(item));
    }
    const pending = new Map<string, LuaValue>();
    const existingMeta = existing?.get(false);
    if (merge && existingMeta instanceof LuaTable) {
      const old = existingMeta.get('pending');
      if (old instanceof LuaTable) for (const [jid, value] of old.hash) pending.set(jid, value);
    }
    for (const [jid, record] of this.pending) pending.set(jid, pendingToStore(record, this.jid));
    const existingVersion = existing ? (storedRosterVersion(existingMeta) ?? 0) : undefined;
    data.set(false, rosterMetaToStore(pending, parseRosterVersion(this.rosterVersion), existingVersion));
    this.tables.set('roster', data);
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
