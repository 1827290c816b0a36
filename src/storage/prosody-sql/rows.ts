/**
 * mod_storage_sql's row operations on the `prosody` and `prosodyarchive` tables, over any
 * {@link SqlSession}: the pool for reads, a transaction for writes.
 */
import type { ArchiveItem } from '../prosody/archive.js';
import { mergeKeyval, splitKeyval, type KeyvalEntry } from '../prosody/keyval.js';
import type { LuaTable, LuaValue } from '../prosody/lua.js';
import { deserializeValue, serializeValue, StoredValueError } from '../prosody/values.js';
import { StorageError, type UserRef } from '../backend.js';
import { compareStrings } from '../prosody/util.js';
import { real, text } from '../sql/columns.js';
import { queryArrays, sendWrite, valuesPlaceholders, type SqlParam, type SqlSession } from '../sql/dialect.js';

export interface ArchiveRow extends ArchiveItem {
  readonly sortId: number;
}

/** Rows per INSERT statement. */
export const INSERT_BATCH = 500;

function decode(type: string, value: string, where: string): LuaValue {
  try {
    return deserializeValue(type, value);
  } catch (err) {
    if (err instanceof StoredValueError) throw new StorageError('invalid-data', `${where}: ${err.message}`, { cause: err });
    throw err;
  }
}

/** Runs `fn` on slices of at most {@link INSERT_BATCH} keys, keeping statements within parameter limits. */
async function inChunks(keys: readonly string[], fn: (chunk: readonly string[], marks: string) => Promise<void>): Promise<void> {
  for (let i = 0; i < keys.length; i += INSERT_BATCH) {
    const chunk = keys.slice(i, i + INSERT_BATCH);
    await fn(chunk, chunk.map(() => '?').join(','));
  }
}

/** The entries of a keyval/map store, undefined when it has no rows. */
export async function readEntries(db: SqlSession, owner: UserRef, store: string): Promise<KeyvalEntry[] | undefined> {
  const rows = await queryArrays(db, `SELECT "key", "type", "value" FROM "prosody" WHERE "host" = ? AND "user" = ? AND "store" = ?`, [owner.host, owner.user, store]);
  return entriesOf(rows, store);
}

/** A store's rows as `[key, type, value]` arrays → its entries sorted by key; undefined for none. */
export function entriesOf(rows: readonly (readonly unknown[])[], store: string): KeyvalEntry[] | undefined {
  if (rows.length === 0) return undefined;
  // Sorted here rather than by the database, whose collation would differ between dialects.
  return rows
    .map(([key, type, value]) => {
      const keyText = text(key, 'prosody.key');
      return { key: keyText, value: decode(text(type, 'prosody.type'), text(value, 'prosody.value'), `${store}/${keyText}`) };
    })
    .sort((a, b) => compareStrings(a.key, b.key));
}

/** `keyval_store_get`: undefined when the store has no rows for the user. */
export async function readKeyval(db: SqlSession, owner: UserRef, store: string): Promise<LuaTable | undefined> {
  const entries = await readEntries(db, owner, store);
  return entries && mergeKeyval(entries);
}

async function insertEntries(db: SqlSession, owner: UserRef, store: string, entries: readonly KeyvalEntry[]): Promise<void> {
  for (let i = 0; i < entries.length; i += INSERT_BATCH) {
    const batch = entries.slice(i, i + INSERT_BATCH);
    const params: SqlParam[] = [];
    for (const { key, value } of batch) {
      const stored = serializeValue(value);
      params.push(owner.host, owner.user, store, key, stored.type, stored.value);
    }
    await sendWrite(db, `INSERT INTO "prosody" ("host", "user", "store", "key", "type", "value") VALUES ${valuesPlaceholders(batch.length, 6)}`, params);
  }
}

export async function deleteStore(db: SqlSession, owner: UserRef, store: string): Promise<void> {
  await db.run(`DELETE FROM "prosody" WHERE "host" = ? AND "user" = ? AND "store" = ?`, [owner.host, owner.user, store]);
}

/** `keyval_store_set`: the store's rows replaced by the table's (none for an empty table). */
export async function writeKeyval(db: SqlSession, owner: UserRef, store: string, data: LuaTable): Promise<void> {
  await deleteStore(db, owner, store);
  await insertEntries(db, owner, store, splitKeyval(data));
}

/** `map_store:set_keys` for string keys: each key's row replaced, or removed for undefined. */
export async function writeMapKeys(db: SqlSession, owner: UserRef, store: string, entries: readonly { key: string; value: LuaValue | undefined }[]): Promise<void> {
  for (const { key } of entries) {
    if (key === '') throw new StorageError('invalid-data', 'a map key must not be empty');
  }
  await inChunks(
    entries.map((e) => e.key),
    (chunk, marks) =>
      db.run(`DELETE FROM "prosody" WHERE "host" = ? AND "user" = ? AND "store" = ? AND "key" IN (${marks})`, [owner.host, owner.user, store, ...chunk]).then(() => undefined),
  );
  const present = entries.filter((e): e is KeyvalEntry => e.value !== undefined);
  await insertEntries(db, owner, store, present);
}

/** `map_store:set_keys` for non-string keys: the `""` row replaced by `extra` (removed when empty). */
export async function writeMapExtra(db: SqlSession, owner: UserRef, store: string, extra: LuaTable): Promise<void> {
  await db.run(`DELETE FROM "prosody" WHERE "host" = ? AND "user" = ? AND "store" = ? AND "key" = ''`, [owner.host, owner.user, store]);
  if (!extra.isEmpty) await insertEntries(db, owner, store, [{ key: '', value: extra }]);
}

export async function mapKeyExists(db: SqlSession, owner: UserRef, store: string, key: string): Promise<boolean> {
  const rows = await db.query(`SELECT 1 AS "present" FROM "prosody" WHERE "host" = ? AND "user" = ? AND "store" = ? AND "key" = ? LIMIT 1`, [
    owner.host,
    owner.user,
    store,
    key,
  ]);
  return rows.length > 0;
}

/** The user's stores in one of the two tables, sorted. */
export async function listStores(db: SqlSession, owner: UserRef, archive: boolean): Promise<string[]> {
  const table = archive ? 'prosodyarchive' : 'prosody';
  const rows = await db.query(`SELECT DISTINCT "store" FROM "${table}" WHERE "host" = ? AND "user" = ?`, [owner.host, owner.user]);
  const column = `${table}.store`;
  return rows.map((r) => text(r.store, column)).sort(compareStrings);
}

/** One page of an archive store in `sort_id` order, after `afterSortId` (keyset pagination). */
export async function readArchivePage(db: SqlSession, owner: UserRef, store: string, afterSortId: number, limit: number): Promise<ArchiveRow[]> {
  const rows = await queryArrays(
    db,
    `SELECT "sort_id", "key", "when", "with", "type", "value" FROM "prosodyarchive" WHERE "host" = ? AND "user" = ? AND "store" = ? AND "sort_id" > ? ORDER BY "sort_id" LIMIT ${limit}`,
    [owner.host, owner.user, store, afterSortId],
  );
  return rows.map((row) => archiveRowOf(row, store));
}

/** A `[sort_id, key, when, with, type, value]` row of an archive store as its item. */
export function archiveRowOf(row: readonly unknown[], store: string): ArchiveRow {
  const [sortId, key, when, withJid, type, value] = row;
  const keyText = text(key, 'prosodyarchive.key');
  return {
    sortId: real(sortId, 'prosodyarchive.sort_id'),
    key: keyText,
    when: real(when, 'prosodyarchive.when'),
    with: text(withJid, 'prosodyarchive.with'),
    value: decode(text(type, 'prosodyarchive.type'), text(value, 'prosodyarchive.value'), `${store}/${keyText}`),
  };
}

/**
 * A whole archive store in `sort_id` order, page by page, with no connection held between pages.
 * Pages rather than rows: each step of an async generator costs, and a store may hold millions of
 * rows, so consumers loop over each page themselves.
 */
export async function* readArchivePages(db: SqlSession, owner: UserRef, store: string, pageSize: number, signal?: AbortSignal): AsyncGenerator<ArchiveRow[]> {
  let after = -1;
  for (;;) {
    signal?.throwIfAborted();
    const page = await readArchivePage(db, owner, store, after, pageSize);
    if (page.length > 0) yield page;
    const last = page[page.length - 1];
    if (!last || page.length < pageSize) return;
    after = last.sortId;
  }
}

export async function deleteArchiveStore(db: SqlSession, owner: UserRef, store: string): Promise<void> {
  await db.run(`DELETE FROM "prosodyarchive" WHERE "host" = ? AND "user" = ? AND "store" = ?`, [owner.host, owner.user, store]);
}

/** Of `keys`, those the store already has. */
export async function existingArchiveKeys(db: SqlSession, owner: UserRef, store: string, keys: readonly string[]): Promise<Set<string>> {
  const found = new Set<string>();
  await inChunks(keys, async (chunk, marks) => {
    const rows = await db.query(`SELECT "key" FROM "prosodyarchive" WHERE "host" = ? AND "user" = ? AND "store" = ? AND "key" IN (${marks})`, [
      owner.host,
      owner.user,
      store,
      ...chunk,
    ]);
    for (const row of rows) found.add(text(row.key, 'prosodyarchive.key'));
  });
  return found;
}

export async function deleteArchiveKeys(db: SqlSession, owner: UserRef, store: string, keys: readonly string[]): Promise<void> {
  await inChunks(keys, async (chunk, marks) => {
    await db.run(`DELETE FROM "prosodyarchive" WHERE "host" = ? AND "user" = ? AND "store" = ? AND "key" IN (${marks})`, [owner.host, owner.user, store, ...chunk]);
  });
}

/** Appends items in order (multi-row INSERT); `when` as given (whole seconds except from a Prosody 13 SQLite import). */
export async function insertArchiveItems(db: SqlSession, owner: UserRef, store: string, items: readonly ArchiveItem[]): Promise<void> {
  for (let i = 0; i < items.length; i += INSERT_BATCH) {
    const batch = items.slice(i, i + INSERT_BATCH);
    const params: SqlParam[] = [];
    for (const item of batch) {
      const stored = serializeValue(item.value);
      params.push(owner.host, owner.user, store, item.when, item.with, item.key, stored.type, stored.value);
    }
    await sendWrite(db, `INSERT INTO "prosodyarchive" ("host", "user", "store", "when", "with", "key", "type", "value") VALUES ${valuesPlaceholders(batch.length, 8)}`, params);
  }
}
