/**
 * Bulk loading of a big archive into SQLite. Keeping prosodyarchive's four indexes up to date
 * costs most of a long import once they outgrow SQLite's page cache, while building them once at
 * the end of the same transaction is cheap. A rebuild costs time in proportion to the whole table,
 * however, so the indexes are dropped only once this import has inserted the transaction's
 * threshold of rows ({@link SqlTransaction.bulkLoad}) and at least as many as the table's other
 * rows, and only for a store that was empty: its duplicates are then this import's own, and can be
 * removed before the unique index is built again.
 *
 * SQLite's DDL is transactional: a rollback (failure, dry run) brings the indexes back, and other
 * connections (Prosody's, prepared with sqlite3_prepare_v2) re-prepare their statements after the
 * schema change is committed. CREATE INDEX sorts in temporary files (better-sqlite3 keeps SQLite's
 * temp_store default), so memory does not grow with the archive.
 */
import type { UserRef } from '../backend.js';
import type { SqlParam, SqlSession, SqlTransaction } from '../sql/dialect.js';
import { createIndexSql, prosodyTables } from './schema.js';

/**
 * One import filling an empty archive store, which may switch to inserting its rows unchecked,
 * without the table's indexes, and build them again at the end.
 */
export interface ArchiveBulkLoad {
  /**
   * Called after each INSERT into the store with the number of rows the import has put there.
   * Resolves to true once rows go in unchecked: the caller must stop looking keys up (the unique
   * index is gone) and leave duplicates to {@link finish}.
   */
  inserted(total: number): Promise<boolean>;
  /**
   * Ends the unchecked loading, if it began: removes each row whose key an earlier row of the store
   * has (the first stays, as a lookup would have kept it), then builds the indexes again. Resolves to
   * the number of rows removed. Must come before any other statement on the table that needs an
   * index, and before the commit; afterwards the load never switches again.
   */
  finish(): Promise<number>;
}

/**
 * Where the transaction is SQLite's and offers bulk loads, a load for the import's first rows of
 * `store`: undefined elsewhere, and when the store already has rows (their keys could only be
 * checked through the unique index). The transaction refuses to commit while the load has the
 * indexes dropped.
 */
export async function startArchiveBulkLoad(tx: SqlTransaction, owner: UserRef, store: string): Promise<ArchiveBulkLoad | undefined> {
  const support = tx.bulkLoad;
  if (support?.dialect !== 'sqlite' || !tx.guardCommit) return undefined;
  const load = await SqliteArchiveBulkLoad.start(tx, owner, store, support.threshold);
  // Prosody would go on without the indexes.
  if (load) tx.guardCommit(() => {
    if (load.unchecked) throw new Error('prosodyarchive’s indexes were not rebuilt: the transaction cannot commit');
  });
  return load;
}

const TABLE = 'prosodyarchive';

interface ArchiveIndex {
  readonly name: string;
  readonly unique: boolean;
  /** The statement xporta's schema (and Prosody) creates it with. */
  readonly create: string;
}

/** Prosody's indexes on the archive table, from schema.ts, so that the rebuilt ones are the same. */
const INDEXES: readonly ArchiveIndex[] = (prosodyTables('SQLite3').find((t) => t.name === TABLE)?.indexes ?? []).map((index) => ({
  name: index.name,
  unique: index.unique === true,
  create: createIndexSql(index, TABLE, 'SQLite3'),
}));

/** How sqlite_master keeps a CREATE INDEX: without IF NOT EXISTS and the semicolon. */
function storedSql(create: string): string {
  return create.replace(' IF NOT EXISTS', '').replace(/;$/, '');
}

/** NaN for anything else, which makes every comparison below false: no switch. */
function integer(value: unknown): number {
  return typeof value === 'number' ? value : typeof value === 'bigint' ? Number(value) : Number.NaN;
}

type State = 'watching' | 'unchecked' | 'done';

class SqliteArchiveBulkLoad implements ArchiveBulkLoad {
  private state: State = 'watching';
  /** Row count at which the table is looked at again: a table too big now may not be later. */
  private nextCheck: number;

  private constructor(
    private readonly db: SqlSession,
    private readonly owner: UserRef,
    private readonly store: string,
    threshold: number,
  ) {
    this.nextCheck = Math.max(1, threshold);
  }

  /** Undefined when the store has rows: their keys could only be checked through the unique index. */
  static async start(db: SqlSession, owner: UserRef, store: string, threshold: number): Promise<SqliteArchiveBulkLoad | undefined> {
    const rows = await db.query(`SELECT 1 AS "present" FROM "${TABLE}" WHERE "host" = ? AND "user" = ? AND "store" = ? LIMIT 1`, [owner.host, owner.user, store]);
    return rows.length > 0 ? undefined : new SqliteArchiveBulkLoad(db, owner, store, threshold);
  }

  /** True while the indexes are gone: the transaction must not commit so. */
  get unchecked(): boolean {
    return this.state === 'unchecked';
  }

  async inserted(total: number): Promise<boolean> {
    if (this.state !== 'watching' || total < this.nextCheck) return this.unchecked;
    // Doubling bounds the checks (a count is as slow as the table is big) to a few per import.
    this.nextCheck = total * 2;
    if (!(await this.fewOtherRows(total))) return false;
    if (!(await this.indexesAreProsodys())) {
      this.state = 'done';
      return false;
    }
    for (const index of INDEXES) await this.db.run(`DROP INDEX "${index.name}"`);
    this.state = 'unchecked';
    return true;
  }

  async finish(): Promise<number> {
    if (this.state !== 'unchecked') {
      this.state = 'done';
      return 0;
    }
    let removed = 0;
    for (const index of INDEXES) {
      try {
        await this.db.run(index.create);
      } catch (err) {
        // Only this store's rows went in unchecked: a violation is a key the document repeats.
        // Looked for only then, as the search costs about as much as building the index.
        if (!index.unique || !isUniqueViolation(err)) throw err;
        removed = await this.removeDuplicates();
        await this.db.run(index.create);
      }
    }
    this.state = 'done';
    return removed;
  }

  /** Whether the table's other rows are no more than `inserted`: max(sort_id) bounds their number, else count them. */
  private async fewOtherRows(inserted: number): Promise<boolean> {
    const [last] = await this.db.query(`SELECT max("sort_id") AS "last" FROM "${TABLE}"`);
    if (integer(last?.last) - inserted <= inserted) return true;
    // Deleted rows (an earlier import replaced) leave max(sort_id) high.
    const [all] = await this.db.query(`SELECT count(*) AS "rows" FROM "${TABLE}"`);
    return integer(all?.rows) - inserted <= inserted;
  }

  /** Exactly Prosody's four indexes, or the rebuilt ones would differ from what was there. */
  private async indexesAreProsodys(): Promise<boolean> {
    const rows = await this.db.query(`SELECT "name", "sql" FROM sqlite_master WHERE "type" = 'index' AND "tbl_name" = ?`, [TABLE]);
    const present = new Map(rows.map((row) => [row.name, row.sql]));
    return INDEXES.every((index) => present.get(index.name) === storedSql(index.create));
  }

  /** Every row of the store whose key a row with a lower sort_id has: what a lookup before each INSERT would have skipped. */
  private removeDuplicates(): Promise<number> {
    const params: SqlParam[] = [this.owner.host, this.owner.user, this.store];
    return this.db.run(
      `DELETE FROM "${TABLE}" WHERE "sort_id" IN (SELECT "sort_id" FROM (SELECT "sort_id", row_number() OVER (PARTITION BY "key" ORDER BY "sort_id") AS "n" FROM "${TABLE}" WHERE "host" = ? AND "user" = ? AND "store" = ?) WHERE "n" > 1)`,
      params,
    );
  }
}

function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'SQLITE_CONSTRAINT_UNIQUE';
}
