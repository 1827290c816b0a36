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

/** One row as a line of the bulk-load text format, ending in a newline. */
function rowText(row: readonly SqlParam[]): string {
  let line = row.length > 0 ? field(row[0] ?? null) : '';
  for (let i = 1; i < row.length; i++) line += '\t' + field(row[i] ?? null);
  return line + '\n';
}

/** `rows` as lines of the bulk-load text format, each ending in a newline. */
export function rowsAsText(rows: readonly (readonly SqlParam[])[]): string {
  let out = '';
  for (const row of rows) out += rowText(row);
  return out;
}

/**
 * Bytes a stream gathers before it hands them to the writable: the rows are encoded into one
 * buffer outside V8's heap, not joined into a string the writable encodes again, and the
 * connection gets few large writes.
 */
export const TEXT_CHUNK_BYTES = 256 * 1024;

/** Characters from which a field is written into the chunk on its own. */
const LONG_FIELD = 64;

/**
 * A {@link RowStream} over a writable that carries the text to the database. `ready` waits
 * while the connection's own buffer is full where the writable does not say so itself;
 * `done` settles with the database's answer once the writable has ended. Rows are sent in
 * chunks of about `chunkBytes`: a write may resolve with its rows still held here, and
 * {@link end} sends them.
 */
export class TextRowStream implements AbortableRowStream {
  private failure: { readonly error: unknown } | undefined;
  /** Rejects with the first failure of the writable or of the load. */
  private readonly failed: Promise<never>;
  private ending: Promise<number> | undefined;
  /** The chunk being filled, and how many of its bytes are. */
  private chunk: Buffer | undefined;
  private used = 0;

  constructor(
    private readonly sink: Writable,
    private readonly done: Promise<number>,
    private readonly ready: () => Promise<void> = () => Promise.resolve(),
    private readonly chunkBytes = TEXT_CHUNK_BYTES,
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
    for (const row of rows) {
      // The line's bytes at most: UTF-8 takes at most 3 bytes per UTF-16 unit, an escape 2 for
      // the unit it replaces, a number or NULL fewer than 32; one separator per field.
      let most = row.length;
      for (const value of row) most += typeof value === 'string' ? value.length * 3 : 32;
      if (most > this.chunkBytes) {
        await this.send();
        await this.sendBytes(Buffer.from(rowText(row), 'utf8'));
        continue;
      }
      if (this.used + most > this.chunkBytes) await this.send();
      this.chunk ??= Buffer.allocUnsafeSlow(this.chunkBytes);
      this.used = this.encode(row, this.chunk, this.used);
    }
    this.throwIfFailed();
  }

  /**
   * Writes `row`'s line into `chunk` at `at`; returns where it ends. Short fields are joined and
   * written together; a long one (a stanza) is written as it is, not copied into a joined string
   * first.
   */
  private encode(row: readonly SqlParam[], chunk: Buffer, at: number): number {
    let pending = '';
    for (let i = 0; i < row.length; i++) {
      const text = field(row[i] ?? null);
      const separator = i + 1 < row.length ? '\t' : '\n';
      if (text.length < LONG_FIELD) {
        pending += text + separator;
        continue;
      }
      if (pending !== '') at += chunk.write(pending, at, 'utf8');
      pending = separator;
      at += chunk.write(text, at, 'utf8');
    }
    if (row.length === 0) pending = '\n';
    return at + chunk.write(pending, at, 'utf8');
  }

  /** Hands the chunk filled so far to the writable. */
  private async send(): Promise<void> {
    const chunk = this.chunk;
    const used = this.used;
    this.chunk = undefined;
    this.used = 0;
    if (chunk && used > 0) await this.sendBytes(chunk.subarray(0, used));
  }

  /** Writes `bytes` and waits until the writable and the connection can take more. */
  private async sendBytes(bytes: Buffer): Promise<void> {
    if (!this.sink.write(bytes)) await Promise.race([once(this.sink, 'drain'), this.failed]);
    await Promise.race([this.ready(), this.failed]);
    this.throwIfFailed();
  }

  end(): Promise<number> {
    this.ending ??= (async () => {
      this.throwIfFailed();
      await this.send();
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
    this.chunk = undefined;
    this.used = 0;
    this.sink.destroy(reason);
  }

  private throwIfFailed(): void {
    if (this.failure) throw this.failure.error;
  }
}
