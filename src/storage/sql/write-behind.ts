/**
 * Writes sent ahead on a connection that executes statements in order (pg, mysql2, the SQLite
 * worker): the caller prepares its next statement while the database executes the last one,
 * instead of waiting idle for each INSERT.
 */
import type { RowStream, SqlParam, SqlRow, SqlTransaction } from './dialect.js';

/** A {@link RowStream} its transaction can stop before a rollback. */
export interface AbortableRowStream extends RowStream {
  /** Makes the database discard the rows received; the load then fails. */
  abort(reason: Error): void;
}

/** Writes in flight at most: each is one multi-row INSERT of a few hundred KB. */
const MAX_OUTSTANDING = 2;

export class WriteBehind {
  private readonly outstanding: Promise<void>[] = [];
  private failure: { readonly error: unknown } | undefined;

  /** Tracks a write just sent; resolves once at most {@link MAX_OUTSTANDING} are in flight. */
  async add(write: Promise<unknown>): Promise<void> {
    // Tracked before anything can throw, so that its rejection is always handled.
    this.outstanding.push(
      write.then(
        () => undefined,
        (error: unknown) => {
          this.failure ??= { error };
        },
      ),
    );
    while (this.outstanding.length > MAX_OUTSTANDING) await this.outstanding.shift();
    this.throwIfFailed();
  }

  /** Waits for every write in flight; throws the first one's failure. */
  async settle(): Promise<void> {
    await Promise.all(this.outstanding.splice(0));
    this.throwIfFailed();
  }

  /** Waits for every write in flight, whatever their outcome (before a rollback). */
  async drain(): Promise<void> {
    await Promise.all(this.outstanding.splice(0));
  }

  /** Waits for every write in flight and forgets their failure: what they did is being rolled back. */
  async forget(): Promise<void> {
    await this.drain();
    this.failure = undefined;
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}

/** A statement's outcome, as every dialect can give it. */
export interface Executed {
  readonly rows: SqlRow[];
  readonly changes: number;
}

/**
 * A transaction on one connection, with writes sent ahead. Every other statement first waits for
 * the writes before it, so that a failed write is reported as itself, not as what followed it.
 */
export abstract class PipelinedTransaction implements SqlTransaction {
  private readonly writes = new WriteBehind();
  private readonly commitGuards: (() => void)[] = [];
  private ended = false;
  /** The bulk load the connection is busy with (see SqlTransaction.streamRows). */
  private rowStream: AbortableRowStream | undefined;

  /** Sends one statement on the transaction's connection. */
  protected abstract execute(sql: string, params: readonly SqlParam[]): Promise<Executed>;

  /** Commits or rolls back, and gives the connection back. */
  protected abstract end(commit: boolean): Promise<void>;

  async query(sql: string, params: readonly SqlParam[] = []): Promise<SqlRow[]> {
    await this.settle();
    return (await this.execute(sql, params)).rows;
  }

  async run(sql: string, params: readonly SqlParam[] = []): Promise<number> {
    await this.settle();
    return (await this.execute(sql, params)).changes;
  }

  async write(sql: string, params: readonly SqlParam[]): Promise<void> {
    if (this.rowStream) await this.endRowStream();
    return this.writes.add(this.execute(sql, params));
  }

  /** For statements a dialect sends outside query and run: the writes before them done, a bulk load ended. */
  protected async settle(): Promise<void> {
    await this.writes.settle();
    await this.endRowStream();
  }

  /** Makes `stream` the connection's bulk load until it ends; call after {@link settle}. */
  protected track(stream: AbortableRowStream): void {
    this.rowStream = stream;
  }

  private async endRowStream(): Promise<void> {
    const stream = this.rowStream;
    if (!stream) return;
    this.rowStream = undefined;
    await stream.end();
  }

  async savepoint(name: string): Promise<void> {
    await this.run(`SAVEPOINT ${savepointName(name)}`);
  }

  async rollbackToSavepoint(name: string): Promise<void> {
    // A write that failed after the savepoint is undone with it: it must not fail what follows.
    await this.writes.forget();
    await this.execute(`ROLLBACK TO SAVEPOINT ${savepointName(name)}`, []);
  }

  async releaseSavepoint(name: string): Promise<void> {
    await this.run(`RELEASE SAVEPOINT ${savepointName(name)}`);
  }

  guardCommit(check: () => void): void {
    this.commitGuards.push(check);
  }

  async commit(): Promise<void> {
    await this.settle();
    for (const check of this.commitGuards) check();
    await this.finish(true);
  }

  async rollback(): Promise<void> {
    await this.writes.drain();
    const stream = this.rowStream;
    this.rowStream = undefined;
    if (stream) {
      stream.abort(new Error('the transaction was rolled back during a bulk load'));
      await stream.end().catch(() => undefined);
    }
    await this.finish(false);
  }

  private async finish(commit: boolean): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.end(commit);
  }
}

/** A savepoint's name as SQL: xporta names them itself, from letters, digits and `_` only. */
function savepointName(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not a savepoint name: ${name}`);
  return name;
}
