/**
 * The `archive` rows of one import into ejabberd, written a batch at a time. ejabberd's MAM id is
 * the archive time in µs, so no two of a user's messages may share one: a message whose time is
 * taken moves to the next free microsecond. Which times are taken is asked of the database, a
 * batch's worth at a time, rather than remembered (a set of every time written grows with the
 * archive) or asked per message (one query and one INSERT per message leave both the caller and
 * the database idle most of the time).
 *
 * The rows that were in the table before the import are told from the ones it wrote by their
 * `id` (every schema has one, increasing): at most the highest id when the first batch is written.
 * In a merge, a message stored before at the time it asks for (or past taken ones, a neighbour)
 * with the same XML is a duplicate, as is any stored at its time when its id is ejabberd's own.
 */
import type { UserRef } from '../backend.js';
import type { SqlParam, SqlSession } from '../sql/dialect.js';
import { int, optionalInt, text } from '../sql/columns.js';
import type { Tables } from './tables.js';

/** A plausible µs-since-epoch MAM id as ejabberd makes them (after 2001, before 2286). */
export const MICROS_ID = /^\d{16}$/;

/** Messages per batch: one INSERT, and one query for the times they ask for. */
const ARCHIVE_BATCH = 500;

/** What a message's `values` hold, in order, after the owner's columns. */
const ARCHIVE_COLUMNS = ['timestamp', 'peer', 'bare_peer', 'xml', 'txt', 'kind', 'nick'];

/** Microseconds looked at in one query when a message has to move past a taken time. */
const TIME_WINDOW = 64;

/** One message for the `archive` table. */
export interface ArchiveMessage {
  /** The document's archive id: a µs time (ejabberd's own) is kept, anything else is not. */
  readonly id: string;
  /** The time the message asks for, in µs. */
  readonly micros: number;
  readonly xml: string;
  readonly peer: string;
  readonly barePeer: string;
  readonly txt: string;
  readonly kind: 'chat' | 'groupchat';
  /** What ejabberd 24.12 keeps in `origin_id`: the `<origin-id/>` id, else the message id, else ''. */
  readonly originId: string;
}

/** What is stored at one time. */
interface TimeUse {
  /** A row this import wrote. */
  ours: boolean;
  /** The XML of the rows that were there before (in `replace`, none are). */
  readonly before: string[];
}

export class EjabberdArchiveWriter {
  private readonly pending: ArchiveMessage[] = [];
  /** Rows with a higher id were written by this import. */
  private lastIdBefore: number | undefined;
  written = 0;
  duplicates = 0;

  constructor(
    private readonly db: SqlSession,
    private readonly t: Tables,
    private readonly ref: UserRef,
    /** `merge`: a message already stored at its time with the same XML (or ejabberd's own id) is not written again. */
    private readonly merge: boolean,
    /** The table has 24.12's `origin_id` column (NOT NULL without default on PostgreSQL and MySQL). */
    private readonly originIdColumn = false,
  ) {}

  async add(row: ArchiveMessage): Promise<void> {
    this.pending.push(row);
    if (this.pending.length >= ARCHIVE_BATCH) await this.flush();
  }

  /** Writes what is pending; call before the transaction ends. */
  async flush(): Promise<void> {
    const batch = this.pending.splice(0);
    if (batch.length === 0) return;
    this.lastIdBefore ??= await this.highestId();
    const uses = new Map<number, TimeUse>();
    await this.lookUp(uses, [...new Set(batch.map((row) => row.micros))]);
    // Times given to earlier messages of this batch (or found to hold their duplicate).
    const claimed = new Set<number>();
    const values: SqlParam[][] = [];
    for (const row of batch) {
      let micros = row.micros;
      let duplicate = false;
      for (;;) {
        const use = uses.get(micros) ?? (await this.lookUpFrom(uses, micros));
        const taken = claimed.has(micros) || use.ours;
        if (this.merge && !taken && use.before.length > 0 && (MICROS_ID.test(row.id) || use.before.includes(row.xml))) {
          duplicate = true;
          break;
        }
        if (!taken && use.before.length === 0) break;
        micros++;
      }
      claimed.add(micros);
      if (duplicate) {
        this.duplicates++;
        continue;
      }
      const value: SqlParam[] = [micros, row.peer, row.barePeer, row.xml, row.txt, row.kind, ''];
      if (this.originIdColumn) value.push(row.originId);
      values.push(value);
    }
    const columns = this.originIdColumn ? [...ARCHIVE_COLUMNS, 'origin_id'] : ARCHIVE_COLUMNS;
    // Sent ahead where the session can: the next batch is read meanwhile.
    if (values.length > 0) await this.t.insertRows(this.db, this.ref, 'archive', columns, values);
    this.written += values.length;
  }

  private async highestId(): Promise<number> {
    const rows = await this.db.query(`SELECT MAX("id") AS "last" FROM "archive"`);
    return optionalInt(rows[0]?.last, 'archive.id') ?? 0;
  }

  private note(uses: Map<number, TimeUse>, rows: readonly Readonly<Record<string, unknown>>[]): void {
    for (const r of rows) {
      const use = uses.get(int(r.timestamp, 'archive.timestamp'));
      if (!use) continue;
      if (int(r.id, 'archive.id') > (this.lastIdBefore ?? 0)) use.ours = true;
      else use.before.push(text(r.xml, 'archive.xml'));
    }
  }

  /** What a lookup reads: the XML only where a merge compares it. */
  private get columns(): string[] {
    return this.merge ? ['timestamp', 'id', 'xml'] : ['timestamp', 'id'];
  }

  /** Fills in `uses` for each of `times`, none of which it holds yet. */
  private async lookUp(uses: Map<number, TimeUse>, times: readonly number[]): Promise<void> {
    for (let i = 0; i < times.length; i += ARCHIVE_BATCH) {
      const chunk = times.slice(i, i + ARCHIVE_BATCH);
      for (const time of chunk) uses.set(time, { ours: false, before: [] });
      const marks = chunk.map(() => '?').join(', ');
      this.note(uses, await this.t.select(this.db, this.ref, 'archive', this.columns, ` AND "timestamp" IN (${marks})`, chunk));
    }
  }

  /**
   * Fills in `uses` for the {@link TIME_WINDOW} µs from `from` on, in one query; returns `from`'s.
   * Messages of one second all ask for its first µs, so the next ones are wanted soon.
   */
  private async lookUpFrom(uses: Map<number, TimeUse>, from: number): Promise<TimeUse> {
    const end = from + TIME_WINDOW;
    // Only times not known yet: the rows of the others were noted by an earlier query.
    const fresh = new Map<number, TimeUse>();
    for (let time = from; time < end; time++) if (!uses.has(time)) fresh.set(time, { ours: false, before: [] });
    this.note(fresh, await this.t.select(this.db, this.ref, 'archive', this.columns, ` AND "timestamp" >= ? AND "timestamp" < ?`, [from, end]));
    for (const [time, use] of fresh) uses.set(time, use);
    return uses.get(from) as TimeUse;
  }

}
