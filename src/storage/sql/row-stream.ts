/**
 * Rows as the text both bulk-load protocols read (PostgreSQL's COPY text format and MySQL's
 * LOAD DATA with its default FIELDS/LINES options): one line per row, tab between columns,
 * backslash escapes for backslash, tab, newline and carriage return, `\N` for NULL.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { SqlParam } from './dialect.js';
import type { AbortableRowStream } from './write-behind.js';

/** A bulk load the database completed with other values than it was given (MySQL's LOCAL turns data errors into warnings). */
export class BulkLoadWarningError extends Error {}

const SPECIAL = /[\\\t\n\r]/;
const SPECIALS = /[\\\t\n\r]/g;
const ESCAPES: Readonly<Record<string, string>> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function field(value: SqlParam): string {
  if (value === null) return '\\N';
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`not a number a database column can hold: ${value}`);
    return String(value);
  }
  return SPECIAL.test(value) ? value.replace(SPECIALS, (c) => ESCAPES[c] ?? c) : value;
}

/** `rows` as lines of the bulk-load text format, each ending in a newline. */
export function rowsAsText(rows: readonly (readonly SqlParam[])[]): string {
  let out = '';
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) {
      if (i > 0) out += '\t';
      out += field(row[i] ?? null);
    }
    out += '\n';
  }
  return out;
}

/**
 * A {@link RowStream} over a writable that carries the text to the database. `ready` waits
 * while the connection's own buffer is full where the writable does not say so itself;
 * `done` settles with the database's answer once the writable has ended.
 */
export class TextRowStream implements AbortableRowStream {
  private failure: { readonly error: unknown } | undefined;
  /** Rejects with the first failure of the writable or of the load. */
  private readonly failed: Promise<never>;
  private ending: Promise<number> | undefined;

  constructor(
    private readonly sink: Writable,
    private readonly done: Promise<number>,
    private readonly ready: () => Promise<void> = () => Promise.resolve(),
  ) {
    let fail: (error: unknown) => void = () => undefined;
    this.failed = new Promise<never>((_, reject) => {
      fail = reject;
    });
    this.failed.catch(() => undefined);
    const onFailure = (error: unknown): void => {
      if (this.failure) return;
      this.failure = { error };
      fail(error);
    };
    // Kept until the end: an error with nobody waiting would otherwise end the process.
    sink.on('error', onFailure);
    done.catch(onFailure);
  }

  async write(rows: readonly (readonly SqlParam[])[]): Promise<void> {
    this.throwIfFailed();
    if (this.ending) throw new Error('rows written after the end of the stream');
    if (rows.length === 0) return;
    if (!this.sink.write(rowsAsText(rows))) await Promise.race([once(this.sink, 'drain'), this.failed]);
    await Promise.race([this.ready(), this.failed]);
    this.throwIfFailed();
  }

  end(): Promise<number> {
    this.ending ??= (async () => {
      this.throwIfFailed();
      this.sink.end();
      return this.done;
    })();
    return this.ending;
  }

  get ended(): boolean {
    return this.ending !== undefined;
  }

  /** Stops the load: the database discards what it received, and the transaction is to be rolled back. */
  abort(reason: Error): void {
    this.failure ??= { error: reason };
    this.sink.destroy(reason);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}
