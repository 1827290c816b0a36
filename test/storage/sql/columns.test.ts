/** The strict column readers every SQL backend decodes rows with (src/storage/sql/columns.ts). */
import { describe, expect, it } from 'vitest';
import { StorageError } from '../../../src/storage/backend.js';
import { bool, bytes, int, optionalInt, optionalText, real, text } from '../../../src/storage/sql/columns.js';

function failure(read: () => unknown): StorageError {
  try {
    read();
  } catch (err) {
    expect(err).toBeInstanceOf(StorageError);
    return err as StorageError;
  }
  throw new Error('no failure');
}

describe('SQL column readers', () => {
  it('read text as the drivers return it', () => {
    expect(text('héllo', 't.c')).toBe('héllo');
    expect(text('', 't.c')).toBe('');
    expect(text(42, 't.c')).toBe('42');
    expect(text(1700000000000001n, 't.c')).toBe('1700000000000001');
    expect(text(Buffer.from('bÿtes'), 't.c')).toBe('bÿtes');
    expect(optionalText(null, 't.c')).toBeUndefined();
    expect(optionalText('x', 't.c')).toBe('x');
  });

  it('read numbers from numbers, bigints and decimal strings', () => {
    expect(int(7, 't.c')).toBe(7);
    expect(int('1700000000000001', 't.c')).toBe(1700000000000001);
    expect(int(12n, 't.c')).toBe(12);
    expect(real(1.5, 't.c')).toBe(1.5);
    expect(real('1.25', 't.c')).toBe(1.25);
    expect(optionalInt(null, 't.c')).toBeUndefined();
    expect(optionalInt('3', 't.c')).toBe(3);
  });

  it('read booleans as PostgreSQL, SQLite and MySQL keep them', () => {
    for (const yes of [true, 1, '1', 't', 'true', 1n]) expect(bool(yes, 't.c')).toBe(true);
    for (const no of [false, 0, '0', 'f', 'false', 0n]) expect(bool(no, 't.c')).toBe(false);
  });

  it('read bytes from Buffers and typed arrays', () => {
    expect(bytes(Buffer.from([1, 2]), 't.c')).toEqual(Buffer.from([1, 2]));
    expect(bytes(new Uint8Array([3]), 't.c')).toEqual(Buffer.from([3]));
  });

  it('fail as invalid-data naming the table and column on a wrong type', () => {
    const cases: [() => unknown, RegExp][] = [
      [() => text(null, 'rosterusers.jid'), /column rosterusers\.jid holds NULL, not text/],
      [() => text({}, 'rosterusers.jid'), /rosterusers\.jid holds an object, not text/],
      [() => text(true, 'rosterusers.jid'), /rosterusers\.jid holds boolean "true", not text/],
      [() => int('abc', 'archive.id'), /archive\.id holds string "abc", not an integer/],
      [() => int(1.5, 'archive.id'), /archive\.id holds number "1.5", not an integer/],
      [() => int('', 'archive.id'), /archive\.id holds string "", not an integer/],
      [() => int(null, 'archive.id'), /archive\.id holds NULL, not an integer/],
      [() => optionalInt('x', 'archive.id'), /archive\.id/],
      [() => real(Number.NaN, 'prosodyarchive.when'), /prosodyarchive\.when holds number "NaN", not a number/],
      [() => real(undefined, 'prosodyarchive.when'), /prosodyarchive\.when holds NULL/],
      [() => bool('yes', 'privacy_list_data.match_all'), /privacy_list_data\.match_all holds string "yes", not a boolean/],
      [() => bool(2, 'privacy_list_data.match_all'), /not a boolean/],
      [() => bytes('text', 'blobs.data'), /blobs\.data holds string "text", not bytes/],
      [() => text(new Date(0), 'spool.created_at'), /spool\.created_at holds a date, not text/],
    ];
    for (const [read, message] of cases) {
      const err = failure(read);
      expect(err.code).toBe('invalid-data');
      expect(err.message).toMatch(message);
    }
  });
});
