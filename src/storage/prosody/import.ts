/**
 * The rules of one import into Prosody's storage, whichever driver holds it (SQL tables or the
 * internal storage files); each backend supplies the storage primitives below:
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
 * The small per-user stores (roster, vCard, blocklist, privacy) are collected and written once at
 * the end, so several records of one kind combine. How archive items are written and de-duplicated
 * (and so when `archive`/`offline` are counted) is the backend's: see {@link ProsodyImport.appendArchiveItem}.
 */
import type { ApplyOptions, UserRef } from '../backend.js';
import type { DataKind, OpaqueRecord, PendingSubscriptionRecord, RosterItem, UserStart, VCardRecord, XmlElement } from '../../records/model.js';
import { AVATAR_DATA_NODE, AVATAR_METADATA_NODE, VCARD4_NODE, vcardTempToPep } from '../../records/vcard-legacy.js';
import { UserImport, type StoredRecord } from '../import/user-import.js';
import { accountToStore, newAccountRoles, type ProsodyHostOptions, type ProsodyVersion } from './accounts.js';
import { ARCHIVE_STORE, OFFLINE_STORE, archiveItemFromRecord, offlineItemFromRecord, type ArchiveItem } from './archive.js';
import { blocklistToStore } from './blocklist.js';
import { LuaTable, type LuaValue } from './lua.js';
import { archiveItemFromElement, isProsodyStoreElement, storeFromElement } from './opaque.js';
import { PEP_ITEMS_PREFIX, PEP_STORE, defaultPepNode, pepItemToArchive, pepItemsStore, pepNodeToStore, vcardLegacyPepNode } from './pep.js';
import { privacyToStore } from './privacy.js';
import { privateToStore } from './private.js';
import { parseRosterVersion, pendingToStore, rosterItemToStore, rosterMetaToStore, storedRosterVersion } from './roster.js';
import { PRIVATE_STORES, TYPED_STORES, typedArchiveKind } from './stores.js';
import { storedBareJid } from '../../lib/jid.js';
import { nowSeconds } from './util.js';
import { StoredValueError } from './values.js';
import { vcardToStore } from './vcard.js';

/** Where mod_vcard_legacy keeps a user's vCard and avatar. */
const VCARD_PEP_NODES: readonly string[] = [VCARD4_NODE, AVATAR_METADATA_NODE, AVATAR_DATA_NODE];

/** keyval stores each kind owns, for `replace`. */
const KIND_STORES: Partial<Record<DataKind, readonly string[]>> = {
  roster: ['roster'],
  vcard: ['vcard'],
  private: ['private'],
  pep: [PEP_STORE],
  blocklist: ['blocklist'],
  privacy: ['privacy'],
};

/** One key of a map store; `undefined` removes it. */
export interface MapEntry {
  readonly key: string;
  readonly value: LuaValue | undefined;
}

export interface ProsodyImportSettings {
  readonly host: ProsodyHostOptions;
  /** The target's generation (configured or detected by the backend); default 0.12. */
  readonly serverVersion?: ProsodyVersion;
  /** The opaque (`other`) stores a document may write. */
  readonly importStores: ReadonlySet<string>;
}

/**
 * One user's import. A subclass implements the storage primitives; every call the import makes
 * goes through them, in the order the records arrive, inside whatever transaction the subclass holds.
 */
export abstract class ProsodyImport extends UserImport {
  /** The `accounts` store as the import found it; undefined when the account does not exist. */
  private existingAccount: LuaTable | undefined;
  private rosterItems: Map<string, RosterItem> | undefined;
  private rosterVersion: string | undefined;
  private readonly pending = new Map<string, PendingSubscriptionRecord>();
  /** The roster before the import (merge), and the version any roster had (both modes). */
  private existingRoster: LuaTable | undefined;
  private vcard: VCardRecord | undefined;
  /** The stored PEP nodes mod_vcard_legacy keeps a vCard in, read before `replace` empties them. */
  private vcardPepNodes: readonly string[] = [];
  private readonly pepNodes = new Set<string>();
  private readonly pepItemNodes = new Set<string>();
  /** The nodes {@link publishVCardToPep} wrote an item to. */
  private readonly vcardNodesPublished = new Set<string>();

  protected constructor(
    ref: UserRef,
    private readonly importSettings: ProsodyImportSettings,
    options: ApplyOptions,
  ) {
    super(ref, options);
  }

  // --- Storage primitives ---

  /** A keyval store's table; undefined (or, in SQL, possibly empty) when nothing is stored. */
  protected abstract readStore(store: string): Promise<LuaTable | undefined>;
  /** Replaces a keyval store's whole content. */
  protected abstract writeStore(store: string, data: LuaTable): Promise<void>;
  /** Sets one key of a map store, keeping its other keys. */
  protected abstract setMapKey(store: string, key: string, value: LuaValue): Promise<void>;
  /** Sets each key of `data` in a keyval store, keeping the keys it does not name (opaque stores). */
  protected abstract mergeStore(store: string, data: LuaTable): Promise<void>;
  /**
   * `merge` of the roster: `stored` (what the store held when the import began) with the contacts
   * in `entries` set and its `false` key (the roster's metadata) replaced by `meta`.
   */
  protected abstract mergeRoster(stored: LuaTable | undefined, entries: readonly MapEntry[], meta: LuaTable): Promise<void>;
  /**
   * Sets each of `keys` that the map store does not hold yet to `create(key)`. Called whenever the
   * import has PEP items, even with no keys left to check.
   */
  protected abstract addMissingMapKeys(store: string, keys: readonly string[], create: (key: string) => LuaValue): Promise<void>;
  /** `replace`: empties a keyval store. */
  protected abstract clearStore(store: string): Promise<void>;
  /** `replace`: empties an archive store. */
  protected abstract clearArchive(store: string): Promise<void>;
  /** The user's archive (`true`) or keyval (`false`) stores that hold anything. */
  protected abstract listStores(archive: boolean): Promise<readonly string[]>;
  /**
   * Adds an item to an archive store, by the rules above for that store. The backend counts
   * `archive` and `offline` items (and their duplicates) itself, in {@link tally}, when it knows
   * whether they were written; PEP and opaque items are counted as they arrive.
   */
  protected abstract appendArchiveItem(store: string, item: ArchiveItem): Promise<void>;
  /** Writes what archive items are still waiting; called once, before the small stores are written. */
  protected abstract finishArchives(): Promise<void>;
  /** Called last: writes what the primitives above only collected. */
  protected abstract finishStores(): Promise<void>;
  /**
   * Whether archive and offline times keep their fraction: Prosody 13 stores µs where the storage
   * can hold them (SQLite's REAL, the files' floats); 0.12 needs whole seconds.
   */
  protected keepsSubSecondTimes(): boolean {
    return false;
  }

  /** The target's generation. */
  protected get serverVersion(): ProsodyVersion {
    return this.importSettings.serverVersion ?? '0.12';
  }

  /** Why an opaque archive item cannot be kept in this storage; undefined when it can. */
  protected rejectOpaqueItem(_item: ArchiveItem): string | undefined {
    return undefined;
  }

  // --- The import ---

  protected async accountExists(): Promise<boolean> {
    const existing = await this.readStore('accounts');
    if (existing === undefined || existing.isEmpty) return false;
    this.existingAccount = existing;
    return true;
  }

  protected async begin(account: UserStart, exists: boolean): Promise<void> {
    if (!exists || this.includes('credentials')) await this.applyAccount(account, this.existingAccount);
    if (!exists && this.importSettings.serverVersion === '13') {
      // What Prosody 13 gives an account an admin creates; the document's roles are never taken.
      const roles = newAccountRoles(this.importSettings.host);
      if (roles) await this.writeStore('account_roles', roles);
    }

    if (this.includes('roster')) {
      const roster = await this.readStore('roster');
      if (roster && !roster.isEmpty) this.existingRoster = roster;
    }
    if (this.includes('vcard')) this.vcardPepNodes = await this.storedVCardPepNodes();
    if (this.options.mode === 'replace') await this.clear();
  }

  /** The PEP nodes mod_vcard_legacy keeps a vCard in that the account has in storage now. */
  private async storedVCardPepNodes(): Promise<string[]> {
    const pep = await this.readStore(PEP_STORE);
    if (!pep) return [];
    return VCARD_PEP_NODES.filter((node) => pep.get(node) !== undefined);
  }

  /**
   * mod_vcard_legacy serves the vCard from PEP and, at each login, moves a vcard-temp vCard from the
   * `vcard` store into PEP, unless the user's PEP service already has a vcard4 or avatar node: then
   * it deletes the vcard-temp vCard unread. A running Prosody keeps each user's PEP service, with
   * its node list, in memory (mod_pep's service cache), while the items are read from storage on
   * every query. So where the account had these nodes (mod_vcard_legacy has moved its vCard before),
   * writing the `vcard` store alone loses the vCard at the next login: the import also writes what
   * mod_vcard_legacy would have published, for each of these nodes the document does not bring
   * itself. The stored items then match the cached nodes, and a restarted Prosody loads both.
   */
  private async publishVCardToPep(): Promise<void> {
    if (!this.vcard || this.vcardPepNodes.length === 0) return;
    const documentHas = (node: string): boolean => this.pepNodes.has(node) || this.pepItemNodes.has(node);
    const { vcard4, avatar } = vcardTempToPep(this.vcard.vcard);
    const when = nowSeconds();
    const publish = async (node: string, key: string, value: XmlElement): Promise<void> => {
      this.vcardNodesPublished.add(node);
      this.pepItemNodes.add(node);
      await this.appendArchiveItem(pepItemsStore(node), { key, when, with: '', value });
    };
    if (!documentHas(VCARD4_NODE)) await publish(VCARD4_NODE, 'current', vcard4);
    if (avatar && !documentHas(AVATAR_METADATA_NODE) && !documentHas(AVATAR_DATA_NODE)) {
      await publish(AVATAR_DATA_NODE, avatar.id, avatar.data);
      await publish(AVATAR_METADATA_NODE, avatar.id, avatar.metadata);
    }
  }

  private async applyAccount(account: UserStart, existing: LuaTable | undefined): Promise<void> {
    const result = accountToStore(account, this.importSettings.host, {
      ...(existing ? { existing } : {}),
      applyCredentials: this.includes('credentials'),
      mode: this.options.mode,
      ...(this.importSettings.serverVersion ? { serverVersion: this.importSettings.serverVersion } : {}),
    });
    await this.writeStore('accounts', result.data);
    this.tally.warnings.push(...result.warnings);
    this.tally.skipped.push(...result.skipped);
    if (result.credentialsApplied) this.tally.count('credentials');
  }

  /** `replace`: the selected kinds' stores emptied before anything is written. */
  private async clear(): Promise<void> {
    const { importStores } = this.importSettings;
    for (const [kind, stores] of Object.entries(KIND_STORES) as [DataKind, readonly string[]][]) {
      if (!this.includes(kind)) continue;
      for (const store of stores) await this.clearStore(store);
    }
    if (this.includes('archive')) await this.clearArchive(ARCHIVE_STORE);
    if (this.includes('offline')) await this.clearArchive(OFFLINE_STORE);
    if (this.includes('pep') || this.includes('other')) {
      for (const store of await this.listStores(true)) {
        const pep = store.startsWith(PEP_ITEMS_PREFIX);
        if ((pep && this.includes('pep')) || (!pep && this.includes('other') && importStores.has(store))) await this.clearArchive(store);
      }
    }
    if (this.includes('other')) {
      for (const store of await this.listStores(false)) {
        if (importStores.has(store)) await this.clearStore(store);
      }
    }
  }

  protected async add(record: StoredRecord): Promise<void> {
    switch (record.kind) {
      case 'roster':
        this.rosterItems ??= new Map();
        for (const item of record.items) this.rosterItems.set(item.jid, item);
        if (record.version !== undefined) this.rosterVersion = record.version;
        this.tally.count('roster');
        return;
      case 'pending-subscription':
        this.pending.set(storedBareJid(record.from), record);
        this.tally.count('roster');
        return;
      case 'vcard':
        this.vcard = record;
        this.tally.count('vcard');
        return;
      case 'private': {
        const entry = privateToStore(record);
        if (!entry) {
          this.tally.skip('private', 'an element without children: Prosody stores nothing', `${record.element.name}:${record.element.xmlns}`);
          return;
        }
        await this.setMapKey('private', entry.key, entry.value);
        this.tally.count('private');
        return;
      }
      case 'pep-node':
        await this.setMapKey(PEP_STORE, record.node, pepNodeToStore(record, this.tally.skipped, this.serverVersion));
        this.pepNodes.add(record.node);
        this.tally.count('pep');
        return;
      case 'pep-item': {
        const item = pepItemToArchive(record);
        if (typeof item === 'string') {
          this.tally.skip('pep', item, `${record.node} ${record.id}`);
          return;
        }
        this.pepItemNodes.add(record.node);
        this.tally.count('pep');
        await this.appendArchiveItem(pepItemsStore(record.node), item);
        return;
      }
      case 'archive': {
        const item = archiveItemFromRecord(record, this.jid, this.keepsSubSecondTimes());
        if (typeof item === 'string') this.tally.skip('archive', item, record.id);
        else await this.appendArchiveItem(ARCHIVE_STORE, item);
        return;
      }
      case 'offline': {
        const item = offlineItemFromRecord(record, this.jid, this.keepsSubSecondTimes());
        if (typeof item === 'string') this.tally.skip('offline', item);
        else await this.appendArchiveItem(OFFLINE_STORE, item);
        return;
      }
      case 'opaque':
        await this.addOpaque(record);
        return;
    }
  }

  private async addOpaque(record: OpaqueRecord): Promise<void> {
    const el = record.element;
    if (!isProsodyStoreElement(el)) {
      this.tally.skip('other', 'no Prosody store holds this element', `{${el.xmlns}}${el.name}`);
      return;
    }
    let parsed: { store: string; data: LuaTable } | { store: string; item: ArchiveItem };
    try {
      parsed = el.name === 'store' ? storeFromElement(el) : archiveItemFromElement(el);
    } catch (err) {
      if (!(err instanceof StoredValueError)) throw err;
      this.tally.skip('other', `invalid store data: ${err.message}`, el.attrs.name ?? el.attrs.store);
      return;
    }
    const { store } = parsed;
    const archive = 'item' in parsed;
    const typed = archive ? typedArchiveKind(store) !== undefined : TYPED_STORES.has(store);
    if (typed || PRIVATE_STORES.has(store) || !this.importSettings.importStores.has(store)) {
      this.tally.skip('other', 'store is not importable', store);
      return;
    }
    if ('item' in parsed) {
      const rejection = this.rejectOpaqueItem(parsed.item);
      if (rejection !== undefined) {
        this.tally.skip('other', rejection, `${store} ${parsed.item.key}`);
        return;
      }
      await this.appendArchiveItem(store, parsed.item);
    } else {
      await this.mergeStore(store, parsed.data);
    }
    this.tally.count('other');
  }

  protected async finish(): Promise<void> {
    await this.publishVCardToPep();
    await this.finishArchives();
    await this.writeRoster();
    if (this.vcard) await this.writeStore('vcard', vcardToStore(this.vcard));
    if (this.blocked) {
      const existing = this.options.mode === 'merge' ? await this.readStore('blocklist') : undefined;
      await this.writeStore('blocklist', blocklistToStore({ kind: 'blocklist', items: [...this.blocked] }, nowSeconds(), existing));
    }
    if (this.privacy) {
      const existing = this.options.mode === 'merge' ? await this.readStore('privacy') : undefined;
      await this.writeStore('privacy', privacyToStore(this.privacy.toRecord(), existing));
    }
    if (this.pepItemNodes.size > 0) {
      // Items are only served for a node Prosody knows: create the node as publishing would have.
      const undeclared = [...this.pepItemNodes].filter((node) => !this.pepNodes.has(node));
      await this.addMissingMapKeys(PEP_STORE, undeclared, (node) =>
        this.vcardNodesPublished.has(node) ? vcardLegacyPepNode(node) : defaultPepNode(node, this.jid),
      );
    }
    await this.finishStores();
  }

  private async writeRoster(): Promise<void> {
    const existing = this.existingRoster;
    const touched = this.rosterItems !== undefined || this.pending.size > 0;
    // Even an emptied roster needs its version moved on, or a client would keep its cached copy.
    if (!touched && !(this.options.mode === 'replace' && existing)) return;
    const merge = this.options.mode === 'merge';
    const entries: MapEntry[] = [];
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
      await this.mergeRoster(existing, entries, meta);
    } else {
      const data = new LuaTable();
      for (const { key, value } of entries) data.set(key, value);
      data.set(false, meta);
      await this.writeStore('roster', data);
    }
  }
}
