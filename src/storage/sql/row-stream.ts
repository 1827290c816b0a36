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

/** Characters from which a string is handed to the UTF-8 encoder whole rather than copied unit by unit. */
const LONG_FIELD = 64;
const TAB = 0x09;
const LF = 0x0a;
const BACKSLASH = 0x5c;
/** The letter after the backslash that stands for each escaped ASCII code, 0 for the others. */
const ESCAPE_LETTER = new Uint8Array(128);
ESCAPE_LETTER[BACKSLASH] = BACKSLASH;
ESCAPE_LETTER[TAB] = 0x74; // t
ESCAPE_LETTER[LF] = 0x6e; // n
ESCAPE_LETTER[0x0d] = 0x72; // r

/**
 * Writes `value` as a field of the text format into `chunk` at `at`, which has room for it;
 * returns where it ends. Short ASCII strings and non-negative integers (a row's keys, names and
 * times) are copied byte by byte, with no string made for them; the rest goes through
 * {@link field} and the UTF-8 encoder.
 */
function writeField(value: SqlParam, chunk: Buffer, at: number): number {
  if (typeof value === 'string') {
    if (value.length >= LONG_FIELD) return at + chunk.write(field(value), at, 'utf8');
    let k = at;
    for (let i = 0; i < value.length; i++) {
      const c = value.charCodeAt(i);
      if (c >= 0x80) return at + chunk.write(field(value), at, 'utf8');
      const letter = ESCAPE_LETTER[c] as number;
      if (letter !== 0) {
        chunk[k++] = BACKSLASH;
        chunk[k++] = letter;
      } else {
        chunk[k++] = c;
      }
    }
    return k;
  }
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) {
    let end = at + 1;
    for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) end++;
    let rest = value;
    for (let k = end - 1; k >= at; k--) {
      chunk[k] = 0x30 + (rest % 10);
      rest = Math.floor(rest / 10);
    }
    return end;
  }
  return at + chunk.write(field(value), at, 'latin1');
}

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
      let most = Math.max(row.length, 1);
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

  /** Writes `row`'s line into `chunk` at `at`; returns where it ends. */
  private encode(row: readonly SqlParam[], chunk: Buffer, at: number): number {
    if (row.length === 0) {
      chunk[at] = LF;
      return at + 1;
    }
    for (let i = 0; i < row.length; i++) {
      at = writeField(row[i] ?? null, chunk, at);
      chunk[at++] = i + 1 < row.length ? TAB : LF;
    }
    return at;
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
