/**
 * One import into Prosody's internal storage files: the storage primitives of
 * {@link ProsodyImport} (whose rules are the same as for SQL) over files instead of rows.
 *
 * Small stores are read whole, changed in memory and written once at the end. Archive stores
 * are streamed: the stored file is copied byte for byte into the new one and the document's items
 * appended after it in the same pass (Prosody itself would rewrite the whole file per item).
 * Everything goes through one {@link FileTransaction}, so nothing is visible before the commit.
 */
import type { ApplyOptions, UserRef } from '../backend.js';
import { StorageError } from '../backend.js';
import { ARCHIVE_STORE, OFFLINE_STORE, type ArchiveItem } from '../prosody/archive.js';
import { ProsodyImport, type MapEntry, type ProsodyImportSettings } from '../prosody/import.js';
import { LuaTable, isStanzaValue, type LuaValue } from '../prosody/lua.js';
import type { FileStore } from './files.js';
import { ListStage, type ListPolicy } from './list-stage.js';
import { LuaSerializeError, serializeDatFile } from './lua-serialize.js';
import type { FileTransaction } from './transaction.js';

/**
 * Keys or identities an archive store's de-duplication keeps in memory (about 11 bytes
 * each, 12 MB at most) before it moves them to a scratch file, so that memory does not grow with
 * the archive. An archive of up to a million messages stays in memory, where looking a key up is
 * several times faster than in the file.
 */
export const DEFAULT_SEEN_IN_MEMORY = 1 << 20;

/** mod_storage_internal's `storage_archive_item_limit` default. */
export const DEFAULT_ARCHIVE_ITEM_LIMIT = 10000;

export interface ProsodyFilesImportSettings extends ProsodyImportSettings {
  readonly archiveItemLimit: number;
  /** See {@link DEFAULT_SEEN_IN_MEMORY}. */
  readonly seenInMemory: number;
}

export class ProsodyFilesImport extends ProsodyImport {
  /** Prosody 13's files keep `when` as a float with µs. */
  protected override keepsSubSecondTimes(): boolean {
    return this.serverVersion === '13';
  }

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
    ref: UserRef,
    private readonly settings: ProsodyFilesImportSettings,
    options: ApplyOptions,
  ) {
    super(ref, settings, options);
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
      stage = new ListStage(this.files, this.tx, store, path, !this.clearedLists.has(store), policy, this.options.signal, this.settings.seenInMemory);
      this.lists.set(store, stage);
    }
    return stage;
  }

  protected readStore(store: string): Promise<LuaTable | undefined> {
    return this.readStored(store);
  }

  protected async writeStore(store: string, data: LuaTable): Promise<void> {
    this.tables.set(store, data);
  }

  protected async setMapKey(store: string, key: string, value: LuaValue): Promise<void> {
    (await this.table(store)).set(key, value);
  }

  protected async mergeStore(store: string, data: LuaTable): Promise<void> {
    const table = await this.table(store);
    for (const [key, value] of data.entries()) table.set(key, value);
  }

  protected async mergeRoster(stored: LuaTable | undefined, entries: readonly MapEntry[], meta: LuaTable): Promise<void> {
    const data = new LuaTable();
    if (stored) for (const [key, value] of stored.entries()) data.set(key, value);
    for (const { key, value } of entries) data.set(key, value);
    data.set(false, meta);
    this.tables.set('roster', data);
  }

  protected async addMissingMapKeys(store: string, keys: readonly string[], create: (key: string) => LuaValue): Promise<void> {
    const known = this.tables.get(store) ?? (this.clearedTables.has(store) ? undefined : await this.readStored(store));
    const missing = keys.filter((key) => known?.get(key) === undefined);
    if (missing.length > 0) {
      const table = known ?? new LuaTable();
      for (const key of missing) table.set(key, create(key));
      this.tables.set(store, table);
    }
  }

  /** `replace`: the store starts out empty. */
  protected async clearStore(store: string): Promise<void> {
    this.clearedTables.add(store);
    this.tables.set(store, new LuaTable());
  }

  /** `replace`: the list is rebuilt without its stored items (and removed if nothing is added). */
  protected async clearArchive(store: string): Promise<void> {
    this.clearedLists.add(store);
    this.list(store);
  }

  protected listStores(archive: boolean): Promise<readonly string[]> {
    return this.files.userStores(this.ref.host, this.ref.user, archive ? 'list' : 'dat');
  }

  protected override rejectOpaqueItem(item: ArchiveItem): string | undefined {
    return isStanzaValue(item.value) ? undefined : "Prosody's internal storage keeps only stanzas in archive stores";
  }

  protected async appendArchiveItem(store: string, item: ArchiveItem): Promise<void> {
    const adding = this.list(store).add(item);
    const added = typeof adding === 'boolean' ? adding : await adding;
    const kind = store === ARCHIVE_STORE ? 'archive' : store === OFFLINE_STORE ? 'offline' : undefined;
    if (kind === undefined) return;
    if (added) this.tally.count(kind);
    else this.tally.noteDuplicates(kind, 1);
  }

  /** Releases every archive store's de-duplication, whether the import finished or failed. */
  close(): void {
    for (const stage of this.lists.values()) stage.close();
  }

  protected async finishArchives(): Promise<void> {
    for (const stage of this.lists.values()) {
      const total = await stage.finish();
      const limit = this.settings.archiveItemLimit;
      if (total > limit && stage.written > 0) {
        // mod_storage_internal refuses appends at the limit; mod_mam reacts by truncating (mod_mam.lua `archive_truncate`).
        const consequence =
          stage.store === ARCHIVE_STORE
            ? `at the next message it archives, mod_mam truncates the archive to the newest ${Math.floor(limit * 0.99)}`
            : 'Prosody refuses to add anything more to it';
        this.tally.warnings.push(
          `${stage.store} now holds ${total} items, more than Prosody's storage_archive_item_limit (${limit}${limit === DEFAULT_ARCHIVE_ITEM_LIMIT ? ', the default' : ''}): ` +
            `all were written, but ${consequence}; raise storage_archive_item_limit to keep them`,
        );
      }
    }
  }

  protected async finishStores(): Promise<void> {
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
}
