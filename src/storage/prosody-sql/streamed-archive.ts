/**
 * A MAM archive loaded through the database's bulk-load protocol ({@link SqlTransaction.streamRows}:
 * PostgreSQL's COPY, MySQL's LOAD DATA) rather than INSERT batches, with the duplicate check done
 * once, set-wise, at the end instead of a lookup per batch. What counts as a duplicate is the
 * same: an item whose key (its archive id) the store already has, or an earlier item of the same
 * import has; the first one stays.
 *
 * - PostgreSQL, where `prosodyarchive_index` is unique (a duplicate would fail the load): the rows
 *   go into a temporary staging table; the repeated keys and (when the store has rows) the stored
 *   ones are deleted from it, each in one statement, and the rest goes into the archive in one
 *   INSERT … SELECT. Not `ON CONFLICT DO NOTHING`, whose speculative insertion costs several times
 *   a plain INSERT per row.
 * - MySQL, where Prosody leaves that index non-unique: the rows go straight into the archive, and
 *   one DELETE then removes each of this load's rows whose key an earlier row of the store has
 *   (a window over the store's rows by key).
 *
 * Everything happens inside the import's transaction: a failure or a dry run leaves nothing.
 */
import type { UserRef } from '../backend.js';
import type { ArchiveItem } from '../prosody/archive.js';
import { serializeValue } from '../prosody/values.js';
import { optionalInt } from '../sql/columns.js';
import type { RowStream, SqlParam, SqlTransaction } from '../sql/dialect.js';

const TABLE = 'prosodyarchive';
const COLUMNS = ['host', 'user', 'store', 'when', 'with', 'key', 'type', 'value'];
const LIST = COLUMNS.map((c) => `"${c}"`).join(', ');
const STAGING = 'xporta_archive_staging';

/** What a {@link StreamedArchiveLoad.finish} did with the rows added since the last one. */
export interface StreamedArchiveResult {
  readonly inserted: number;
  readonly duplicates: number;
}

export interface StreamedArchiveLoad {
  /** Streams items to the database, in order; resolves once it can take more. */
  add(items: readonly ArchiveItem[]): Promise<void>;
  /**
   * Ends the stream and removes the duplicates among the rows added since the last call. Must come
   * before any statement that reads the store, and before the commit; items added afterwards
   * start a new round.
   */
  finish(): Promise<StreamedArchiveResult>;
}

/** A load into `store` where the transaction can stream rows; undefined otherwise. */
export async function startStreamedArchive(tx: SqlTransaction, dialect: 'postgresql' | 'mysql' | 'sqlite', owner: UserRef, store: string): Promise<StreamedArchiveLoad | undefined> {
  if (!tx.streamRows || !tx.createStagingTable || dialect === 'sqlite') return undefined;
  const load = dialect === 'postgresql' ? await StagedLoad.start(tx, owner, store) : await DirectLoad.start(tx, owner, store);
  if (load && tx.guardCommit) {
    tx.guardCommit(() => {
      if (load.pending) throw new Error('archive rows were streamed but not checked for duplicates: the transaction cannot commit');
    });
  }
  return load;
}

abstract class RoundLoad implements StreamedArchiveLoad {
  private stream: RowStream | undefined;
  protected added = 0;

  protected constructor(
    protected readonly tx: SqlTransaction,
    protected readonly owner: UserRef,
    protected readonly store: string,
  ) {}

  /** Rows added and not yet checked. */
  get pending(): boolean {
    return this.added > 0;
  }

  protected abstract readonly target: string;
  protected abstract readonly columns: readonly string[];
  protected abstract row(item: ArchiveItem, seq: number, stored: { readonly type: string; readonly value: string }): SqlParam[];

  private seq = 0;

  async add(items: readonly ArchiveItem[]): Promise<void> {
    if (items.length === 0) return;
    const rows: SqlParam[][] = [];
    for (const item of items) rows.push(this.row(item, this.seq++, serializeValue(item.value)));
    // Another statement of the transaction may have ended the stream: open the next one.
    if (!this.stream || this.stream.ended) this.stream = await this.open();
    this.added += rows.length;
    await (this.stream as RowStream).write(rows);
  }

  private open(): Promise<RowStream> {
    return (this.tx.streamRows as NonNullable<SqlTransaction['streamRows']>)(this.target, this.columns);
  }

  async finish(): Promise<StreamedArchiveResult> {
    if (this.stream && !this.stream.ended) await this.stream.end();
    if (this.added === 0) return { inserted: 0, duplicates: 0 };
    const added = this.added;
    const duplicates = await this.removeDuplicates();
    this.added = 0;
    return { inserted: added - duplicates, duplicates };
  }

  /** Settles the round's rows; resolves to how many of them were duplicates. */
  protected abstract removeDuplicates(): Promise<number>;
}

/** PostgreSQL: COPY into a staging table, duplicates deleted from it, the rest inserted in document order. */
class StagedLoad extends RoundLoad {
  protected readonly target = STAGING;
  protected readonly columns = [...COLUMNS, 'seq'];

  static async start(tx: SqlTransaction, owner: UserRef, store: string): Promise<StagedLoad> {
    await (tx.createStagingTable as NonNullable<SqlTransaction['createStagingTable']>)(STAGING, TABLE, COLUMNS);
    return new StagedLoad(tx, owner, store);
  }

  protected row(item: ArchiveItem, seq: number, stored: { readonly type: string; readonly value: string }): SqlParam[] {
    return [this.owner.host, this.owner.user, this.store, item.when, item.with, item.key, stored.type, stored.value, seq];
  }

  protected async removeDuplicates(): Promise<number> {
    const owner: SqlParam[] = [this.owner.host, this.owner.user, this.store];
    // A key the document repeats: every copy but the first (sorts the keys only, not the rows).
    let duplicates = await this.tx.run(
      `DELETE FROM "${STAGING}" WHERE "seq" IN (SELECT "seq" FROM (SELECT "seq", row_number() OVER (PARTITION BY "key" ORDER BY "seq") AS "n" FROM "${STAGING}") AS "d" WHERE "d"."n" > 1)`,
    );
    // A key the store has (none after a replace: the store was emptied in this transaction).
    const stored = await this.tx.query(`SELECT 1 AS "present" FROM "${TABLE}" WHERE "host" = ? AND "user" = ? AND "store" = ? LIMIT 1`, owner);
    if (stored.length > 0) {
      duplicates += await this.tx.run(
        `DELETE FROM "${STAGING}" USING "${TABLE}" AS "a" WHERE "a"."host" = ? AND "a"."user" = ? AND "a"."store" = ? AND "a"."key" = "${STAGING}"."key"`,
        owner,
      );
    }
    // Without ORDER BY: a temporary table is never scanned in parallel nor from the middle (no
    // synchronized scans on local buffers), so a scan returns the rows in the order COPY wrote
    // them, and sort_id follows the document, as a sort of every row would make it.
    await this.tx.run(`INSERT INTO "${TABLE}" (${LIST}) SELECT ${LIST} FROM "${STAGING}"`);
    await this.tx.run(`TRUNCATE "${STAGING}"`);
    return duplicates;
  }
}

/** MySQL: LOAD DATA into the archive, then one DELETE of the rows whose key an earlier row has. */
class DirectLoad extends RoundLoad {
  protected readonly target = TABLE;
  protected readonly columns = COLUMNS;
  /** The highest sort_id before this round: higher ones in the store are the round's. */
  private before = 0;

  static async start(tx: SqlTransaction, owner: UserRef, store: string): Promise<DirectLoad> {
    const load = new DirectLoad(tx, owner, store);
    await load.mark();
    return load;
  }

  private async mark(): Promise<void> {
    const [row] = await this.tx.query(`SELECT max("sort_id") AS "last" FROM "${TABLE}"`);
    this.before = optionalInt(row?.last, `${TABLE}.sort_id`) ?? 0;
  }

  protected row(item: ArchiveItem, _seq: number, stored: { readonly type: string; readonly value: string }): SqlParam[] {
    return [this.owner.host, this.owner.user, this.store, item.when, item.with, item.key, stored.type, stored.value];
  }

  protected async removeDuplicates(): Promise<number> {
    const params: SqlParam[] = [this.owner.host, this.owner.user, this.store, this.before];
    // One pass over the store's rows, sorted by key: a join looking each row's key up costs a plan
    // the statistics of a table just filled in the same transaction may get quadratic.
    const removed = await this.tx.run(
      `DELETE FROM "${TABLE}" WHERE "sort_id" IN (SELECT "sort_id" FROM (SELECT "sort_id", row_number() OVER (PARTITION BY "key" ORDER BY "sort_id") AS "n" FROM "${TABLE}" WHERE "host" = ? AND "user" = ? AND "store" = ?) AS "d" WHERE "d"."n" > 1 AND "d"."sort_id" > ?)`,
      params,
    );
    await this.mark();
    return removed;
  }
}
