/**
 * Strict readers of column values as the drivers return them (better-sqlite3, pg, mysql2). Each
 * takes the value and the column's qualified name (`table.column`), and throws an `invalid-data`
 * {@link StorageError} naming that column when the value is not of the column's type: a row a
 * server could not have written is reported, never read as an empty string or a zero.
 *
 * Plain functions of their arguments, so that decoding a row allocates nothing beyond its result.
 */
import { StorageError } from '../backend.js';

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  if (Buffer.isBuffer(value)) return 'bytes';
  if (value instanceof Date) return 'a date';
  return typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(String(value)).slice(0, 40)}`;
}

function wrongType(value: unknown, column: string, expected: string): StorageError {
  return new StorageError('invalid-data', `column ${column} holds ${describe(value)}, not ${expected}`);
}

/**
 * A text column. Numbers are written out in decimal (an INTEGER key, PostgreSQL's int8 as
 * mysql2 may return it); bytes are decoded as UTF-8 (MySQL BLOB/binary collations).
 */
export function text(value: unknown, column: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  throw wrongType(value, column, 'text');
}

/** A nullable text column: undefined for NULL. */
export function optionalText(value: unknown, column: string): string | undefined {
  return value === null || value === undefined ? undefined : text(value, column);
}

/** A numeric column of any finite value (SQLite REAL included); decimal strings are read as numbers (pg's int8). */
export function real(value: unknown, column: string): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value !== '' ? Number(value) : typeof value === 'bigint' ? Number(value) : Number.NaN;
  if (!Number.isFinite(n)) throw wrongType(value, column, 'a number');
  return n;
}

/** An integer column within JavaScript's safe integers. */
export function int(value: unknown, column: string): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' && value !== '' ? Number(value) : typeof value === 'bigint' ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw wrongType(value, column, 'an integer');
  return n;
}

/** A nullable integer column (an aggregate over no rows included): undefined for NULL. */
export function optionalInt(value: unknown, column: string): number | undefined {
  return value === null || value === undefined ? undefined : int(value, column);
}

/** A boolean column: PostgreSQL's boolean, or the 1/0 SQLite and MySQL keep. */
export function bool(value: unknown, column: string): boolean {
  switch (value) {
    case true:
    case 1:
    case '1':
    case 't':
    case 'true':
      return true;
    case false:
    case 0:
    case '0':
    case 'f':
    case 'false':
      return false;
  }
  if (typeof value === 'bigint' && (value === 0n || value === 1n)) return value === 1n;
  throw wrongType(value, column, 'a boolean');
}

/** A binary column (BLOB, bytea, VARBINARY). */
export function bytes(value: unknown, column: string): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw wrongType(value, column, 'bytes');
}
