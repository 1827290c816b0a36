/**
 * One account's rows in Prosody's two tables, as an import sees them: the row operations of
 * rows.ts bound to the account. {@link SqlImportRows} runs them on the import's transaction;
 * pending-rows.ts keeps them in memory for an account the store has no row of.
 */
import type { UserRef } from '../backend.js';
import type { ArchiveItem } from '../prosody/archive.js';
import type { LuaTable, LuaValue } from '../prosody/lua.js';
import type { SqlSession } from '../sql/dialect.js';
import {
  deleteArchiveKeys,
  deleteArchiveStore,
  deleteStore,
  existingArchiveKeys,
  insertArchiveItems,
  listStores,
  mapKeyExists,
  readArchivePages,
  readKeyval,
  writeKeyval,
  writeMapExtra,
  writeMapKeys,
} from './rows.js';

/** The semantics of each operation are those of the rows.ts function of the same name. */
export interface ImportRows {
  readKeyval(store: string): Promise<LuaTable | undefined>;
  writeKeyval(store: string, data: LuaTable): Promise<void>;
  writeMapKeys(store: string, entries: readonly { key: string; value: LuaValue | undefined }[]): Promise<void>;
  writeMapExtra(store: string, extra: LuaTable): Promise<void>;
  mapKeyExists(store: string, key: string): Promise<boolean>;
  deleteStore(store: string): Promise<void>;
  listStores(archive: boolean): Promise<string[]>;
  deleteArchiveStore(store: string): Promise<void>;
  existingArchiveKeys(store: string, keys: readonly string[]): Promise<Set<string>>;
  deleteArchiveKeys(store: string, keys: readonly string[]): Promise<void>;
  insertArchiveItems(store: string, items: readonly ArchiveItem[]): Promise<void>;
  /** The store's items in insertion (`sort_id`) order, page by page. */
  readArchivePages(store: string, pageSize: number): AsyncIterable<readonly ArchiveItem[]>;
}

/** The operations as statements on `db`. */
export class SqlImportRows implements ImportRows {
  constructor(
    private readonly db: SqlSession,
    private readonly owner: UserRef,
  ) {}

  readKeyval(store: string): Promise<LuaTable | undefined> {
    return readKeyval(this.db, this.owner, store);
  }
  writeKeyval(store: string, data: LuaTable): Promise<void> {
    return writeKeyval(this.db, this.owner, store, data);
  }
  writeMapKeys(store: string, entries: readonly { key: string; value: LuaValue | undefined }[]): Promise<void> {
    return writeMapKeys(this.db, this.owner, store, entries);
  }
  writeMapExtra(store: string, extra: LuaTable): Promise<void> {
    return writeMapExtra(this.db, this.owner, store, extra);
  }
  mapKeyExists(store: string, key: string): Promise<boolean> {
    return mapKeyExists(this.db, this.owner, store, key);
  }
  deleteStore(store: string): Promise<void> {
    return deleteStore(this.db, this.owner, store);
  }
  listStores(archive: boolean): Promise<string[]> {
    return listStores(this.db, this.owner, archive);
  }
  deleteArchiveStore(store: string): Promise<void> {
    return deleteArchiveStore(this.db, this.owner, store);
  }
  existingArchiveKeys(store: string, keys: readonly string[]): Promise<Set<string>> {
    return existingArchiveKeys(this.db, this.owner, store, keys);
  }
  deleteArchiveKeys(store: string, keys: readonly string[]): Promise<void> {
    return deleteArchiveKeys(this.db, this.owner, store, keys);
  }
  insertArchiveItems(store: string, items: readonly ArchiveItem[]): Promise<void> {
    return insertArchiveItems(this.db, this.owner, store, items);
  }
  readArchivePages(store: string, pageSize: number): AsyncIterable<readonly ArchiveItem[]> {
    return readArchivePages(this.db, this.owner, store, pageSize);
  }
}
