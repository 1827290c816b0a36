/**
 * Where an export finds an account's rows: its own statements ({@link queriedRows}), or a run of a
 * host's accounts read set-wise ({@link loadHostRows}), a few statements for all of them instead
 * of a dozen per account. Both answer with the same entries and pages, so the records built from
 * them, and the document, are the same.
 */
import type { DataKind } from '../../records/model.js';
import type { UserRef } from '../backend.js';
import type { KeyvalEntry } from '../prosody/keyval.js';
import { ARCHIVE_STORE, OFFLINE_STORE } from '../prosody/archive.js';
import { PEP_ITEMS_PREFIX } from '../prosody/pep.js';
import { compareStrings } from '../prosody/util.js';
import { int, text } from '../sql/columns.js';
import { queryArrays, type SqlParam, type SqlSession } from '../sql/dialect.js';
import { archiveRowOf, entriesOf, listStores, readArchivePages, readEntries, type ArchiveRow } from './rows.js';

export interface AccountRows {
  /** A keyval/map store's entries sorted by key, undefined when it has no rows (see readEntries). */
  entries(store: string): Promise<KeyvalEntry[] | undefined>;
  /**
   * The account's stores in one of the two tables, sorted. Of the archive table, those a read of
   * the kinds the rows were loaded for looks at (all of them when `other` is among them).
   */
  stores(archive: boolean): Promise<string[]>;
  /** An archive store in `sort_id` order, a page (up to the page size) at a time. */
  archivePages(store: string, signal: AbortSignal | undefined): AsyncIterable<ArchiveRow[]>;
}

/** The account's rows, each asked for with statements of its own. */
export function queriedRows(db: SqlSession, owner: UserRef, pageSize: number): AccountRows {
  return {
    entries: (store) => readEntries(db, owner, store),
    stores: (archive) => listStores(db, owner, archive),
    archivePages: (store, signal) => readArchivePages(db, owner, store, pageSize, signal),
  };
}

/** Archive rows fetched by one statement at most; a host's accounts are grouped below it. */
const ARCHIVE_ROWS_PER_FETCH = 20_000;
/** An account with more archive rows than this is read page by page, with statements of its own. */
const PAGED_ACCOUNT_ROWS = 2_000;

/**
 * The archive stores a read of `include` looks at, as a condition on `"store"` (empty: all of
 * them), or undefined when it reads none. The LIKE may match more than the `pep_` prefix where
 * the collation ignores case: rows are picked out by exact store names afterwards.
 */
function archiveStoreCondition(include: ReadonlySet<DataKind>): string | undefined {
  if (include.has('other')) return '';
  const named = [...(include.has('archive') ? [ARCHIVE_STORE] : []), ...(include.has('offline') ? [OFFLINE_STORE] : [])];
  const parts = [...(named.length > 0 ? [`"store" IN (${named.map((s) => `'${s}'`).join(', ')})`] : []), ...(include.has('pep') ? [`"store" LIKE '${PEP_ITEMS_PREFIX.replace('_', '!_')}%' ESCAPE '!'`] : [])];
  return parts.length === 0 ? undefined : ` AND (${parts.join(' OR ')})`;
}

/**
 * `users` as the parameters of an IN list, padded (with the last one again) to a power of two:
 * a few statement shapes for every run, which the dialects keep prepared.
 */
function userList(users: readonly string[]): { marks: string; params: string[] } {
  let slots = 1;
  while (slots < users.length) slots *= 2;
  const params = users.slice();
  while (params.length < slots) params.push(users[users.length - 1] as string);
  return { marks: params.map(() => '?').join(','), params };
}

/** Rows grouped by their first column (user), then their second (store), in the order they came. */
function groupByUserAndStore(rows: readonly unknown[][], into: Map<string, Map<string, unknown[][]>>, userColumn: string, storeColumn: string): void {
  for (const row of rows) {
    const user = text(row[0], userColumn);
    const store = text(row[1], storeColumn);
    let stores = into.get(user);
    if (!stores) into.set(user, (stores = new Map()));
    let list = stores.get(store);
    if (!list) stores.set(store, (list = []));
    list.push(row.slice(2));
  }
}

/** A loaded store's rows as pages of up to `pageSize`, decoded a page at a time as the paged read decodes them. */
async function* pagesOf(rows: readonly unknown[][], store: string, pageSize: number, signal: AbortSignal | undefined): AsyncGenerator<ArchiveRow[]> {
  for (let start = 0; start < rows.length; start += pageSize) {
    signal?.throwIfAborted();
    yield rows.slice(start, start + pageSize).map((row) => archiveRowOf(row, store));
  }
}

/**
 * The rows of `users` (accounts of `host`) for an export of `include`, read set-wise on `db`: one
 * statement for their keyval rows, one counting their archive rows per store, and one per group
 * of accounts whose archives together hold up to {@link ARCHIVE_ROWS_PER_FETCH} rows. An account
 * with more than {@link PAGED_ACCOUNT_ROWS} is read page by page later, as alone, so memory stays
 * bounded by the run's keyval rows and one group's archive rows. Values are decoded only when
 * read, as the per-account reads decode them.
 */
export async function loadHostRows(db: SqlSession, host: string, users: readonly string[], include: ReadonlySet<DataKind>, pageSize: number): Promise<Map<string, AccountRows>> {
  const result = new Map<string, AccountRows>();
  if (users.length === 0) return result;
  const { marks, params } = userList(users);
  const keyval = new Map<string, Map<string, unknown[][]>>();
  groupByUserAndStore(
    await queryArrays(db, `SELECT "user", "store", "key", "type", "value" FROM "prosody" WHERE "host" = ? AND "user" IN (${marks})`, [host, ...params]),
    keyval,
    'prosody.user',
    'prosody.store',
  );

  const condition = archiveStoreCondition(include);
  const archive = new Map<string, Map<string, unknown[][]>>();
  const archiveStores = new Map<string, string[]>();
  const paged = new Set<string>();
  if (condition !== undefined) {
    const counts = await queryArrays(
      db,
      `SELECT "user", "store", count(*) AS "n" FROM "prosodyarchive" WHERE "host" = ? AND "user" IN (${marks})${condition} GROUP BY "user", "store"`,
      [host, ...params],
    );
    const sizes = new Map<string, number>();
    for (const [user, store, n] of counts) {
      const name = text(user, 'prosodyarchive.user');
      const stores = archiveStores.get(name) ?? [];
      stores.push(text(store, 'prosodyarchive.store'));
      archiveStores.set(name, stores);
      sizes.set(name, (sizes.get(name) ?? 0) + int(n, 'count'));
    }
    for (const stores of archiveStores.values()) stores.sort(compareStrings);
    let group: string[] = [];
    let groupRows = 0;
    const fetchGroup = async (): Promise<void> => {
      if (group.length === 0) return;
      const list = userList(group);
      const rows = await queryArrays(
        db,
        `SELECT "user", "store", "sort_id", "key", "when", "with", "type", "value" FROM "prosodyarchive" WHERE "host" = ? AND "user" IN (${list.marks})${condition} ORDER BY "sort_id"`,
        [host, ...list.params] as SqlParam[],
      );
      groupByUserAndStore(rows, archive, 'prosodyarchive.user', 'prosodyarchive.store');
      group = [];
      groupRows = 0;
    };
    for (const user of users) {
      const size = sizes.get(user) ?? 0;
      if (size === 0) continue;
      if (size > PAGED_ACCOUNT_ROWS) {
        paged.add(user);
        continue;
      }
      if (groupRows + size > ARCHIVE_ROWS_PER_FETCH) await fetchGroup();
      group.push(user);
      groupRows += size;
    }
    await fetchGroup();
  }

  const storeSelected = (store: string): boolean =>
    include.has('other') || (include.has('archive') && store === ARCHIVE_STORE) || (include.has('offline') && store === OFFLINE_STORE) || (include.has('pep') && store.startsWith(PEP_ITEMS_PREFIX));
  for (const user of users) {
    const owner: UserRef = { host, user };
    const stores = keyval.get(user);
    const loaded = archive.get(user);
    result.set(user, {
      entries: (store) => Promise.resolve(entriesOf(stores?.get(store) ?? [], store)),
      stores: (isArchive) => (isArchive ? (condition !== undefined ? Promise.resolve(archiveStores.get(user) ?? []) : listStores(db, owner, true)) : Promise.resolve([...(stores?.keys() ?? [])].sort(compareStrings))),
      archivePages: (store, signal) =>
        paged.has(user) || condition === undefined || !storeSelected(store) ? readArchivePages(db, owner, store, pageSize, signal) : pagesOf(loaded?.get(store) ?? [], store, pageSize, signal),
    });
  }
  return result;
}
