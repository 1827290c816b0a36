/**
 * Accounts of a host import group that the store holds no row of. Their import needs no
 * statement of its own: what it would read back is only what it wrote itself, so its rows are
 * kept in memory ({@link PendingRows}, with the semantics of the statements of rows.ts), and the
 * whole group's go in at its end with a few multi-row INSERTs ({@link PendingGroup.flush}) before
 * the group's commit. An account that fails has written nothing, so it needs no savepoint.
 *
 * Which accounts have no row is asked once per group, inside the group's transaction
 * ({@link PendingGroup.lookUp}): on SQLite the transaction holds the write lock from its start, so
 * no row can appear meanwhile; elsewhere a row another writer adds for such an account before the
 * flush is beside the imported ones, as it would be beside an account imported alone at READ
 * COMMITTED, and a conflict with it (the archive's unique key) fails the flush, which the caller
 * treats as a group that cannot commit (its accounts applied again one by one).
 */
import { StorageError, type UserRef } from '../backend.js';
import type { ArchiveItem } from '../prosody/archive.js';
import { mergeKeyval, splitKeyval } from '../prosody/keyval.js';
import type { LuaTable, LuaValue } from '../prosody/lua.js';
import { compareStrings } from '../prosody/util.js';
import { deserializeValue, serializeValue, StoredValueError } from '../prosody/values.js';
import { text } from '../sql/columns.js';
import { sendWrite, valuesPlaceholders, type SqlParam, type SqlSession } from '../sql/dialect.js';
import type { ImportRows } from './import-rows.js';
import { INSERT_BATCH } from './rows.js';

interface Stored {
  readonly type: string;
  readonly value: string;
}

interface StoredItem {
  readonly key: string;
  readonly when: number;
  readonly with: string;
  readonly stored: Stored;
}

function decode(stored: Stored, where: string): LuaValue {
  try {
    return deserializeValue(stored.type, stored.value);
  } catch (err) {
    if (err instanceof StoredValueError) throw new StorageError('invalid-data', `${where}: ${err.message}`, { cause: err });
    throw err;
  }
}

/**
 * An account's rows held in memory, serialized as they would be stored (so a value that cannot
 * be stored fails where its INSERT would, and what is read back is a copy, as from the database).
 */
export class PendingRows implements ImportRows {
  private readonly keyval = new Map<string, Map<string, Stored>>();
  private readonly archive = new Map<string, StoredItem[]>();

  readKeyval(store: string): Promise<LuaTable | undefined> {
    const rows = this.keyval.get(store);
    if (!rows || rows.size === 0) return Promise.resolve(undefined);
    const entries = [...rows].map(([key, stored]) => ({ key, value: decode(stored, `${store}/${key}`) })).sort((a, b) => compareStrings(a.key, b.key));
    return Promise.resolve(mergeKeyval(entries));
  }

  writeKeyval(store: string, data: LuaTable): Promise<void> {
    this.keyval.delete(store);
    this.insert(store, splitKeyval(data));
    return Promise.resolve();
  }

  writeMapKeys(store: string, entries: readonly { key: string; value: LuaValue | undefined }[]): Promise<void> {
    for (const { key } of entries) {
      if (key === '') throw new StorageError('invalid-data', 'a map key must not be empty');
    }
    const rows = this.keyval.get(store);
    for (const { key } of entries) rows?.delete(key);
    this.insert(
      store,
      entries.filter((e): e is { key: string; value: LuaValue } => e.value !== undefined),
    );
    return Promise.resolve();
  }

  writeMapExtra(store: string, extra: LuaTable): Promise<void> {
    this.keyval.get(store)?.delete('');
    if (!extra.isEmpty) this.insert(store, [{ key: '', value: extra }]);
    return Promise.resolve();
  }

  mapKeyExists(store: string, key: string): Promise<boolean> {
    return Promise.resolve(this.keyval.get(store)?.has(key) === true);
  }

  deleteStore(store: string): Promise<void> {
    this.keyval.delete(store);
    return Promise.resolve();
  }

  listStores(archive: boolean): Promise<string[]> {
    const stores = archive ? [...this.archive].filter(([, items]) => items.length > 0) : [...this.keyval].filter(([, rows]) => rows.size > 0);
    return Promise.resolve(stores.map(([store]) => store).sort(compareStrings));
  }

  deleteArchiveStore(store: string): Promise<void> {
    this.archive.delete(store);
    return Promise.resolve();
  }

  existingArchiveKeys(store: string, keys: readonly string[]): Promise<Set<string>> {
    const items = this.archive.get(store) ?? [];
    const wanted = new Set(keys);
    return Promise.resolve(new Set(items.filter((item) => wanted.has(item.key)).map((item) => item.key)));
  }

  deleteArchiveKeys(store: string, keys: readonly string[]): Promise<void> {
    const items = this.archive.get(store);
    if (items) {
      const gone = new Set(keys);
      this.archive.set(
        store,
        items.filter((item) => !gone.has(item.key)),
      );
    }
    return Promise.resolve();
  }

  insertArchiveItems(store: string, items: readonly ArchiveItem[]): Promise<void> {
    let list = this.archive.get(store);
    if (!list) {
      list = [];
      this.archive.set(store, list);
    }
    for (const item of items) {
      // The table's unique key (host, user, store, key), as the INSERT would meet it.
      if (list.some((kept) => kept.key === item.key)) throw new StorageError('invalid-data', `${store}: the key ${item.key} is stored twice`);
      list.push({ key: item.key, when: item.when, with: item.with, stored: serializeValue(item.value) });
    }
    return Promise.resolve();
  }

  async *readArchivePages(store: string, pageSize: number): AsyncGenerator<readonly ArchiveItem[]> {
    const items = this.archive.get(store) ?? [];
    for (let i = 0; i < items.length; i += pageSize) {
      yield items.slice(i, i + pageSize).map((item) => ({ key: item.key, when: item.when, with: item.with, value: decode(item.stored, `${store}/${item.key}`) }));
    }
  }

  private insert(store: string, entries: readonly { key: string; value: LuaValue }[]): void {
    if (entries.length === 0) return;
    let rows = this.keyval.get(store);
    if (!rows) {
      rows = new Map();
      this.keyval.set(store, rows);
    }
    for (const { key, value } of entries) rows.set(key, serializeValue(value));
  }

  /** The rows as the INSERTs' parameters: `prosody` rows of 6 columns, `prosodyarchive` rows of 8. */
  appendTo(owner: UserRef, prosody: SqlParam[], archive: SqlParam[]): void {
    for (const [store, rows] of this.keyval) for (const [key, stored] of rows) prosody.push(owner.host, owner.user, store, key, stored.type, stored.value);
    for (const [store, items] of this.archive) {
      for (const item of items) archive.push(owner.host, owner.user, store, item.when, item.with, item.key, item.stored.type, item.stored.value);
    }
  }
}

/** A MySQL collation may compare case- and trailing-space-insensitively: such a match counts as a row of the account. */
function looseName(user: string): string {
  return user.toLowerCase().trimEnd();
}

/** The accounts of one group that had no row when it began, and the rows of those imported since. */
export class PendingGroup {
  private readonly prosody: SqlParam[] = [];
  private readonly archive: SqlParam[] = [];

  private constructor(
    private readonly host: string,
    /** Names of the accounts not imported yet that have no row. */
    private readonly fresh: Set<string>,
  ) {}

  /** Of `users` on `host`, asks `db` (the group's transaction) which have no row in either table. */
  static async lookUp(db: SqlSession, host: string, users: readonly string[]): Promise<PendingGroup> {
    const present = new Set<string>();
    for (let i = 0; i < users.length; i += INSERT_BATCH) {
      const chunk = users.slice(i, i + INSERT_BATCH);
      const marks = chunk.map(() => '?').join(',');
      for (const table of ['prosody', 'prosodyarchive']) {
        const rows = await db.query(`SELECT DISTINCT "user" FROM "${table}" WHERE "host" = ? AND "user" IN (${marks})`, [host, ...chunk]);
        for (const row of rows) present.add(looseName(text(row.user, `${table}.user`)));
      }
    }
    return new PendingGroup(host, new Set(users.filter((user) => !present.has(looseName(user)))));
  }

  /** Whether the account had no row when the group began and has not been imported since. */
  has(ref: UserRef): boolean {
    return ref.host === this.host && this.fresh.has(ref.user);
  }

  /** Rows in memory for the account, or undefined when it must be imported with statements. */
  rowsFor(ref: UserRef): PendingRows | undefined {
    return this.has(ref) ? new PendingRows() : undefined;
  }

  /** Keeps an account's rows for the flush; the account has rows from now on. */
  keep(ref: UserRef, rows: PendingRows): void {
    this.fresh.delete(ref.user);
    rows.appendTo(ref, this.prosody, this.archive);
  }

  /** INSERTs the kept rows on the group's transaction (archive rows in the order they were kept). */
  async flush(db: SqlSession): Promise<void> {
    await insertRows(db, `INSERT INTO "prosody" ("host", "user", "store", "key", "type", "value") VALUES `, 6, this.prosody);
    await insertRows(db, `INSERT INTO "prosodyarchive" ("host", "user", "store", "when", "with", "key", "type", "value") VALUES `, 8, this.archive);
    this.prosody.length = 0;
    this.archive.length = 0;
  }
}

async function insertRows(db: SqlSession, insert: string, width: number, params: readonly SqlParam[]): Promise<void> {
  const perStatement = INSERT_BATCH * width;
  for (let i = 0; i < params.length; i += perStatement) {
    const chunk = params.slice(i, i + perStatement);
    await sendWrite(db, insert + valuesPlaceholders(chunk.length / width, width), chunk);
  }
}
