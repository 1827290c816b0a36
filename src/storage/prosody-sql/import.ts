/**
 * One import into Prosody's SQL tables, inside a transaction the caller owns: the storage
 * primitives of {@link ProsodyImport} as rows. Keyval changes are written as they come; archive
 * items are written in batches as the records arrive, and de-duplicated per batch (or, once a
 * big MAM archive goes in unchecked where the dialect can bulk-load it, at the end). Where the
 * transaction streams rows (PostgreSQL, MySQL), a MAM archive of more than one batch goes through
 * the database's bulk-load protocol instead, and is de-duplicated set-wise (streamed-archive.ts).
 * Given {@link PendingRows} (an account of a host import group that has no row), every row
 * operation works in memory instead, and none of those paths is taken.
 */
import type { ApplyOptions, UserRef } from '../backend.js';
import type { ProsodyHostOptions, ProsodyVersion } from '../prosody/accounts.js';
import { ARCHIVE_STORE, OFFLINE_STORE, type ArchiveItem } from '../prosody/archive.js';
import { ProsodyImport, type MapEntry } from '../prosody/import.js';
import { LuaTable, type LuaValue } from '../prosody/lua.js';
import { serializeValue } from '../prosody/values.js';
import type { DialectName, SqlTransaction } from '../sql/dialect.js';
import { INSERT_BATCH } from './rows.js';
import { SqlImportRows, type ImportRows } from './import-rows.js';
import type { PendingRows } from './pending-rows.js';
import { startArchiveBulkLoad, type ArchiveBulkLoad } from './sqlite-bulk.js';
import { startStreamedArchive, type StreamedArchiveLoad } from './streamed-archive.js';

/**
 * Items gathered before they go to a streamed load ({@link StreamedArchiveLoad}), which encodes
 * them at once: few enough that they are still young when V8 collects them, where a whole
 * {@link INSERT_BATCH} outlives a collection of the young generation and is copied.
 */
const STREAM_BATCH = 32;

/** Archive rows inserted by one import after which the planner's statistics are refreshed. */
const STATISTICS_REFRESH_AT = [10_000, 100_000];

export class ProsodySqlImport extends ProsodyImport {
  private readonly owner: UserRef;
  /** Items waiting for their INSERT, per archive store. */
  private readonly batches = new Map<string, ArchiveItem[]>();
  private batched = 0;
  /** Items of stores other than MAM held back while MAM may stream (see mayStream), and their number. */
  private readonly held = new Map<string, ArchiveItem[]>();
  private heldCount = 0;
  private offlineSeen: Set<string> | undefined;
  /** Asked for at the first MAM batch; null where the dialect has none or the archive was not empty. */
  private bulkLoad: ArchiveBulkLoad | null | undefined;
  /** MAM rows go in without a lookup; the bulk load removes the duplicates at the end. */
  private unchecked = false;
  /** Asked for at the first MAM batch that is not the last; null where the transaction cannot stream rows. */
  private streamed: StreamedArchiveLoad | null | undefined;
  private readonly opaqueWritten = new Set<string>();
  /** Where the account's rows are read and written: statements on the transaction, or memory. */
  private readonly rows: ImportRows;

  constructor(
    private readonly db: SqlTransaction,
    ref: UserRef,
    host: ProsodyHostOptions,
    options: ApplyOptions,
    importStores: ReadonlySet<string>,
    serverVersion: ProsodyVersion = '0.12',
    /** The database keeps a fractional `when` (SQLite's REAL; PostgreSQL and MySQL have INTEGER). */
    private readonly fractionalTimes = false,
    private readonly dialect: DialectName = 'sqlite',
    /** The account has no row: its rows are kept here instead (pending-rows.ts), and no statement runs. */
    private readonly pendingRows?: PendingRows,
  ) {
    super(ref, { host, importStores, serverVersion }, options);
    this.owner = { host: ref.host, user: ref.user };
    this.rows = pendingRows ?? new SqlImportRows(db, this.owner);
  }

  protected override keepsSubSecondTimes(): boolean {
    return this.fractionalTimes && this.serverVersion === '13';
  }

  protected readStore(store: string): Promise<LuaTable | undefined> {
    return this.rows.readKeyval(store);
  }

  protected writeStore(store: string, data: LuaTable): Promise<void> {
    return this.rows.writeKeyval(store, data);
  }

  protected setMapKey(store: string, key: string, value: LuaValue): Promise<void> {
    return this.rows.writeMapKeys(store, [{ key, value }]);
  }

  protected async mergeStore(store: string, data: LuaTable): Promise<void> {
    // `replace` emptied the store: only a second record for it has anything to merge with.
    if (this.options.mode === 'merge' || this.opaqueWritten.has(store)) {
      const current = await this.rows.readKeyval(store);
      if (current) {
        for (const [key, value] of data.entries()) current.set(key, value);
        data = current;
      }
    }
    await this.rows.writeKeyval(store, data);
    this.opaqueWritten.add(store);
  }

  protected async mergeRoster(stored: LuaTable | undefined, entries: readonly MapEntry[], meta: LuaTable): Promise<void> {
    await this.rows.writeMapKeys('roster', entries);
    const extra = new LuaTable();
    if (stored) for (const [key, value] of stored.entries()) if (typeof key !== 'string') extra.set(key, value);
    extra.set(false, meta);
    await this.rows.writeMapExtra('roster', extra);
  }

  protected async addMissingMapKeys(store: string, keys: readonly string[], create: (key: string) => LuaValue): Promise<void> {
    for (const key of keys) {
      if (await this.rows.mapKeyExists(store, key)) continue;
      await this.rows.writeMapKeys(store, [{ key, value: create(key) }]);
    }
  }

  protected clearStore(store: string): Promise<void> {
    return this.rows.deleteStore(store);
  }

  protected clearArchive(store: string): Promise<void> {
    return this.rows.deleteArchiveStore(store);
  }

  protected listStores(archive: boolean): Promise<readonly string[]> {
    return this.rows.listStores(archive);
  }

  protected async appendArchiveItem(store: string, item: ArchiveItem): Promise<void> {
    let batch = this.batches.get(store);
    if (!batch) {
      batch = [];
      this.batches.set(store, batch);
    }
    batch.push(item);
    if (++this.batched >= (this.streamed ? STREAM_BATCH : INSERT_BATCH)) await this.flush(false);
  }

  protected async finishArchives(): Promise<void> {
    await this.flush(true);
    await this.endUnchecked();
  }

  /** Every other write went out as it came. */
  protected async finishStores(): Promise<void> {}

  /** `last`: no more items follow (a single batch is not worth a bulk load). */
  private async flush(last: boolean): Promise<void> {
    let others = 0;
    for (const [store, items] of this.batches) if (store !== ARCHIVE_STORE) others += items.length;
    const hold = !last && this.mayStream() && this.heldCount + others <= INSERT_BATCH;
    for (const [store, items] of this.batches) {
      if (store === ARCHIVE_STORE) {
        if (this.streamed === undefined && !last && !this.pendingRows) this.streamed = (await startStreamedArchive(this.db, this.dialect, this.owner, ARCHIVE_STORE)) ?? null;
        if (this.streamed) await this.streamArchive(this.streamed, items);
        else await this.flushArchive(items);
        continue;
      }
      if (hold) {
        const held = this.held.get(store);
        if (held) held.push(...items);
        else this.held.set(store, items);
        this.heldCount += items.length;
        continue;
      }
      const held = this.held.get(store);
      this.held.delete(store);
      await this.flushOther(store, held ? [...held, ...items] : items);
    }
    this.batches.clear();
    this.batched = 0;
    if (hold) return;
    for (const [store, items] of this.held) await this.flushOther(store, items);
    this.held.clear();
    this.heldCount = 0;
  }

  /**
   * Whether MAM items go, or may yet go, through a streamed load ({@link startStreamedArchive}).
   * The items of the other archive stores (PEP items, offline messages) are then held back, up to
   * {@link INSERT_BATCH} of them, and written after the stream. Their keys sort after MAM's in
   * PostgreSQL's (host, user, store, …) indexes ("offline" and "pep_…" after "archive"): rows of
   * theirs written first would put every MAM row just before them, where the account's rows are
   * the last of an index (a new database, the last account), instead of at the index's right
   * edge, costing each row a descent from the root and each full page a split in halves, which
   * leaves the indexes on sort_id and when twice their size. Each of their statements would
   * also end the stream, and the next MAM item open another.
   */
  private mayStream(): boolean {
    return this.streamed !== null && !this.pendingRows && this.dialect !== 'sqlite';
  }

  /** A batch of a store other than MAM. */
  private async flushOther(store: string, items: ArchiveItem[]): Promise<void> {
    // These look rows up by key (offline, on merge, reads its store): the indexes come back
    // first, and MAM goes on with lookups, as a document seldom returns to it after another store.
    await this.endUnchecked();
    if (store === OFFLINE_STORE) await this.flushOffline(items);
    else await this.flushReplacing(store, items);
  }

  private archiveRowsInserted = 0;

  /** Counted as they go; the duplicates come off at the end (see endUnchecked). */
  private async streamArchive(load: StreamedArchiveLoad, items: ArchiveItem[]): Promise<void> {
    await load.add(items);
    this.tally.count('archive', items.length);
  }

  /** MAM: an id already archived (or seen earlier in the document) is the same message. */
  private async flushArchive(items: ArchiveItem[]): Promise<void> {
    if (this.bulkLoad === undefined) this.bulkLoad = this.pendingRows ? null : ((await startArchiveBulkLoad(this.db, this.owner, ARCHIVE_STORE)) ?? null);
    const fresh = this.unchecked ? items : await this.unseen(items);
    await this.rows.insertArchiveItems(ARCHIVE_STORE, fresh);
    this.tally.count('archive', fresh.length);
    const before = this.archiveRowsInserted;
    this.archiveRowsInserted += fresh.length;
    // Each tenfold growth of this import's rows is worth new planner statistics (see refreshStatistics).
    if (!this.pendingRows && STATISTICS_REFRESH_AT.some((n) => before < n && this.archiveRowsInserted >= n)) {
      await this.db.refreshStatistics?.('prosodyarchive');
    }
    if (this.bulkLoad && !this.unchecked) this.unchecked = await this.bulkLoad.inserted(this.archiveRowsInserted);
  }

  private async unseen(items: ArchiveItem[]): Promise<ArchiveItem[]> {
    const seen = await this.rows.existingArchiveKeys(ARCHIVE_STORE, [...new Set(items.map((i) => i.key))]);
    const fresh: ArchiveItem[] = [];
    for (const item of items) {
      if (seen.has(item.key)) continue;
      seen.add(item.key);
      fresh.push(item);
    }
    this.tally.noteDuplicates('archive', items.length - fresh.length);
    return fresh;
  }

  /** The indexes back, and the duplicates that went in unchecked out of the store and the counts. */
  private async endUnchecked(): Promise<void> {
    if (this.streamed) {
      const { duplicates } = await this.streamed.finish();
      this.tally.count('archive', -duplicates);
      this.tally.noteDuplicates('archive', duplicates);
    }
    if (!this.unchecked || !this.bulkLoad) return;
    this.unchecked = false;
    const removed = await this.bulkLoad.finish();
    this.archiveRowsInserted -= removed;
    this.tally.count('archive', -removed);
    this.tally.noteDuplicates('archive', removed);
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
      this.tally.noteDuplicates('offline', items.length - fresh.length);
    }
    await this.rows.insertArchiveItems(OFFLINE_STORE, fresh);
    this.tally.count('offline', fresh.length);
  }

  private async storedOffline(): Promise<Set<string>> {
    const seen = new Set<string>();
    for await (const page of this.rows.readArchivePages(OFFLINE_STORE, 1000)) for (const row of page) seen.add(offlineIdentity(row.when, row.value));
    return seen;
  }

  /** archive_store:append semantics: an item with the same key replaces the stored one. */
  private async flushReplacing(store: string, items: ArchiveItem[]): Promise<void> {
    const last = new Map<string, ArchiveItem>();
    for (const item of items) {
      last.delete(item.key);
      last.set(item.key, item);
    }
    await this.rows.deleteArchiveKeys(store, [...last.keys()]);
    await this.rows.insertArchiveItems(store, [...last.values()]);
  }
}

function offlineIdentity(when: number, value: LuaValue): string {
  const stored = serializeValue(value);
  return `${when}\u0000${stored.type}\u0000${stored.value}`;
}
