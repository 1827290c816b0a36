import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rowsAsText, TextRowStream } from '../../../src/storage/sql/row-stream.js';

describe('rowsAsText', () => {
  it('writes one line per row, tab-separated, escaping what the loaders read as syntax', () => {
    expect(rowsAsText([['a', 1, null], ['tab\there', 'line\nbreak\r', 'back\\slash \\N']])).toBe('a\t1\t\\N\ntab\\there\tline\\nbreak\\r\tback\\\\slash \\\\N\n');
  });

  it('keeps other characters as they are', () => {
    expect(rowsAsText([['Grüße 🎻 <a/> "q" \'s\'', -1.5]])).toBe('Grüße 🎻 <a/> "q" \'s\'\t-1.5\n');
  });

  it('refuses a number no column can hold', () => {
    expect(() => rowsAsText([[Number.NaN]])).toThrow(RangeError);
  });
});

describe('TextRowStream', () => {
  it('sends the rows and resolves end to the count the database gives', async () => {
    const sink = new PassThrough();
    const chunks: string[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c.toString()));
    let finish: (n: number) => void = () => undefined;
    const stream = new TextRowStream(sink, new Promise<number>((resolve) => (finish = resolve)));
    await stream.write([['x', 1]]);
    await stream.write([['y', 2]]);
    expect(stream.ended).toBe(false);
    const ended = stream.end();
    expect(stream.ended).toBe(true);
    finish(2);
    expect(await ended).toBe(2);
    expect(chunks.join('')).toBe('x\t1\ny\t2\n');
    await expect(stream.write([['z', 3]])).rejects.toThrow(/after the end/);
  });

  it('sends the rows in chunks of about the size it is given, a row larger than a chunk on its own, in order', async () => {
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    const stream = new TextRowStream(sink, Promise.resolve(0), undefined, 64);
    const rows: string[][] = [];
    for (let i = 0; i < 20; i++) rows.push([`row ${i} Grüße 🎻`, i % 7 === 0 ? 'x'.repeat(100) : 'short']);
    await stream.write(rows.slice(0, 9));
    await stream.write(rows.slice(9));
    await stream.end();
    expect(Buffer.concat(chunks).toString('utf8')).toBe(rowsAsText(rows));
    expect(chunks.length).toBeGreaterThan(3);
    for (const chunk of chunks) expect(chunk.length <= 64 || chunk.toString('utf8').split('\n').length === 2).toBe(true);
  });

  it('encodes any row as rowsAsText writes it, in chunks of any size', async () => {
    const text = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc.stringMatching(/^[a-z\\\t\n\r0-9 N-]{0,90}$/),
    );
    const value = fc.oneof(text, fc.constant(null), fc.integer(), fc.nat({ max: Number.MAX_SAFE_INTEGER }), fc.double({ noNaN: true, noDefaultInfinity: true }));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(value, { maxLength: 9 }), { maxLength: 30 }), fc.integer({ min: 16, max: 4096 }), async (rows, size) => {
        const sink = new PassThrough();
        const chunks: Buffer[] = [];
        sink.on('data', (c: Buffer) => chunks.push(c));
        const stream = new TextRowStream(sink, Promise.resolve(0), undefined, size);
        await stream.write(rows);
        await stream.end();
        expect(Buffer.concat(chunks).toString('utf8')).toBe(Buffer.from(rowsAsText(rows), 'utf8').toString('utf8'));
      }),
      { numRuns: 300 },
    );
  });

  it('fails the next write and the end with the load’s failure', async () => {
    const sink = new PassThrough();
    sink.resume();
    let fail: (err: Error) => void = () => undefined;
    const stream = new TextRowStream(sink, new Promise<number>((_, reject) => (fail = reject)));
    await stream.write([['x']]);
    const failure = new Error('invalid input syntax');
    fail(failure);
    await new Promise((resolve) => setImmediate(resolve));
    await expect(stream.write([['y']])).rejects.toBe(failure);
    await expect(stream.end()).rejects.toBe(failure);
  });

  it('a write waiting for the database to drain fails when the load fails', async () => {
    const sink = new PassThrough({ highWaterMark: 4 });
    let fail: (err: Error) => void = () => undefined;
    const stream = new TextRowStream(sink, new Promise<number>((_, reject) => (fail = reject)), undefined, 1);
    const waiting = stream.write([['a long enough row']]);
    const failure = new Error('connection lost');
    fail(failure);
    await expect(waiting).rejects.toBe(failure);
  });
});
