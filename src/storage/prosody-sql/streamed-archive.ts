/**
 * A MAM archive loaded through the database's bulk-load protocol ({@link SqlTransaction.streamRows}:
 * PostgreSQL's COPY, MySQL's LOAD DATA) rather than INSERT batches. What counts as a duplicate is
 * the same as for the INSERT path: an item whose key (its archive id) the store already has, or
 * an earlier item of the same import has; the first one stays, and the rows keep document order.
 *
 * Two phases:
 * - Direct, while the load knows every key the store holds: the store was empty when the load
 *   began (a new account, a replace, a merge into an account without an archive), and every
 *   key since then went in through this load. The keys are kept in memory as fingerprints
 *   ({@link FingerprintSet}, about 11 bytes a key, up to {@link KNOWN_KEYS}); a repeated
 *   key is dropped before it is sent, and the rest streams straight into the archive table with
 *   nothing to check afterwards.
 * - Checked, from the start when the store had rows, or once the load has seen more keys than it
 *   keeps: the duplicate check is done once, set-wise, at the end of each round instead of a
 *   lookup per batch.
 *   - PostgreSQL, where `prosodyarchive_index` is unique (a duplicate would fail the load): the
 *     rows go into a temporary staging table; the repeated keys and (when the store has rows) the
 *     stored ones are deleted from it, each in one statement, and the rest goes into the archive
 *     in one INSERT … SELECT, after every row of the direct phase. Not `ON CONFLICT DO NOTHING`,
 *     whose speculative insertion costs several times a plain INSERT per row.
 *   - MySQL, where Prosody leaves that index non-unique: the rows go straight into the archive,
 *     and one DELETE then removes each of this round's rows whose key an earlier row of the store
 *     has (a window over the store's rows by key).
 *
 * A row Prosody itself archives for the account while the import runs is not among the known
 * keys; its key is a fresh id of the server's, which no document item shares.
 *
 * Everything happens inside the import's transaction: a failure or a dry run leaves nothing.
 */
import type { UserRef } from '../backend.js';
import type { ArchiveItem } from '../prosody/archive.js';
import { FingerprintSet } from '../prosody/fingerprint-set.js';
import { serializeValue } from '../prosody/values.js';
import { optionalInt } from '../sql/columns.js';
import type { RowStream, SqlParam, SqlTransaction } from '../sql/dialect.js';

const TABLE = 'prosodyarchive';
const COLUMNS = ['host', 'user', 'store', 'when', 'with', 'key', 'type', 'value'];
const LIST = COLUMNS.map((c) => `"${c}"`).join(', ');
const STAGING = 'xporta_archive_staging';

/** Keys a load keeps in memory for its direct phase: about 12 MB of fingerprints at most. */
export const KNOWN_KEYS = 1 << 20;

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

/**
 * A load into `store` where the transaction can stream rows; undefined otherwise. `knownKeys`:
 * how many keys the direct phase may keep (tests lower it to cross into the checked phase).
 */
export async function startStreamedArchive(
  tx: SqlTransaction,
  dialect: 'postgresql' | 'mysql' | 'sqlite',
  owner: UserRef,
  store: string,
  knownKeys = KNOWN_KEYS,
): Promise<StreamedArchiveLoad | undefined> {
  if (!tx.streamRows || !tx.createStagingTable || dialect === 'sqlite') return undefined;
  const load = dialect === 'postgresql' ? new StagedLoad(tx, owner, store, knownKeys) : new DirectLoad(tx, owner, store, knownKeys);
  await load.begin();
  if (tx.guardCommit) {
    tx.guardCommit(() => {
      if (load.pending) throw new Error('archive rows were streamed but not checked for duplicates: the transaction cannot commit');
    });
  }
  return load;
}

type Stored = { readonly type: string; readonly value: string };

abstract class RoundLoad implements StreamedArchiveLoad {
  private stream: RowStream | undefined;
  private streamTarget: string | undefined;
  /** The keys of every row the store holds, while this load knows them all (the direct phase). */
  private known: FingerprintSet | undefined;
  /** Rows of the checked phase added and not yet checked. */
  protected added = 0;
  /** Direct-phase rows sent and repeated keys dropped in this round. */
  private sent = 0;
  private dropped = 0;
  private seq = 0;

  constructor(
    protected readonly tx: SqlTransaction,
    protected readonly owner: UserRef,
    protected readonly store: string,
    private readonly knownKeys: number,
  ) {}

  /** Rows added and not yet checked. */
  get pending(): boolean {
    return this.added > 0;
  }

  /** Chooses the phase the load starts in. */
  async begin(): Promise<void> {
    const rows = await this.tx.query(`SELECT 1 AS "present" FROM "${TABLE}" WHERE "host" = ? AND "user" = ? AND "store" = ? LIMIT 1`, [
      this.owner.host,
      this.owner.user,
      this.store,
    ]);
    if (rows.length === 0 && this.knownKeys > 0) this.known = new FingerprintSet();
    else await this.startChecking();
  }

  /** Prepares the checked phase (which may start after rows went in directly). */
  protected abstract startChecking(): Promise<void>;
  /** Where the checked phase streams its rows, with which columns. */
  protected abstract readonly checkedTarget: string;
  protected abstract readonly checkedColumns: readonly string[];
  protected abstract checkedRow(item: ArchiveItem, seq: number, stored: Stored): SqlParam[];

  async add(items: readonly ArchiveItem[]): Promise<void> {
    let i = 0;
    const known = this.known;
    if (known) {
      const rows: SqlParam[][] = [];
      for (; i < items.length; i++) {
        if (known.size >= this.knownKeys) break;
        const item = items[i] as ArchiveItem;
        if (!known.add(item.key)) {
          this.dropped++;
          continue;
        }
        const stored = serializeValue(item.value);
        rows.push([this.owner.host, this.owner.user, this.store, item.when, item.with, item.key, stored.type, stored.value]);
      }
      this.sent += rows.length;
      await this.send(TABLE, COLUMNS, rows);
      if (i === items.length) return;
      // Past what the load keeps in memory: the store's keys are checked by the database from here on.
      known.close();
      this.known = undefined;
      await this.startChecking();
    }
    const rows: SqlParam[][] = [];
    for (; i < items.length; i++) {
      const item = items[i] as ArchiveItem;
      rows.push(this.checkedRow(item, this.seq++, serializeValue(item.value)));
    }
    this.added += rows.length;
    await this.send(this.checkedTarget, this.checkedColumns, rows);
  }

  private async send(target: string, columns: readonly string[], rows: readonly SqlParam[][]): Promise<void> {
    if (rows.length === 0) return;
    if (this.stream && !this.stream.ended && this.streamTarget !== target) await this.stream.end();
    // Another statement of the transaction may have ended the stream: open the next one.
    if (!this.stream || this.stream.ended) {
      this.stream = await (this.tx.streamRows as NonNullable<SqlTransaction['streamRows']>)(target, columns);
      this.streamTarget = target;
    }
    await this.stream.write(rows);
  }

  async finish(): Promise<StreamedArchiveResult> {
    if (this.stream && !this.stream.ended) await this.stream.end();
    const direct = { inserted: this.sent, duplicates: this.dropped };
    this.sent = 0;
    this.dropped = 0;
    if (this.added === 0) return direct;
    const added = this.added;
    const duplicates = await this.removeDuplicates();
    this.added = 0;
    return { inserted: direct.inserted + added - duplicates, duplicates: direct.duplicates + duplicates };
  }

  /** Settles the checked round's rows; resolves to how many of them were duplicates. */
  protected abstract removeDuplicates(): Promise<number>;
}

/** PostgreSQL: the checked phase COPYs into a staging table, duplicates deleted from it, the rest inserted in document order. */
class StagedLoad extends RoundLoad {
  protected readonly checkedTarget = STAGING;
  protected readonly checkedColumns = [...COLUMNS, 'seq'];

  protected async startChecking(): Promise<void> {
    await (this.tx.createStagingTable as NonNullable<SqlTransaction['createStagingTable']>)(STAGING, TABLE, COLUMNS);
  }

  protected checkedRow(item: ArchiveItem, seq: number, stored: Stored): SqlParam[] {
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

/** MySQL: LOAD DATA into the archive; in the checked phase, one DELETE of the round's rows whose key an earlier row has. */
class DirectLoad extends RoundLoad {
  protected readonly checkedTarget = TABLE;
  protected readonly checkedColumns = COLUMNS;
  /** The highest sort_id before this round: higher ones in the store are the round's. */
  private before = 0;

  protected startChecking(): Promise<void> {
    return this.mark();
  }

  private async mark(): Promise<void> {
    const [row] = await this.tx.query(`SELECT max("sort_id") AS "last" FROM "${TABLE}"`);
    this.before = optionalInt(row?.last, `${TABLE}.sort_id`) ?? 0;
  }

  protected checkedRow(item: ArchiveItem, _seq: number, stored: Stored): SqlParam[] {
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
