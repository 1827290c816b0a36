/**
 * withDeadlines, the stream every request body is read through: what counts as idle, and that a
 * deadline never surfaces as an unhandled error.
 */
import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { Problem } from '../../src/http/problem.js';
import { withDeadlines } from '../../src/http/upload.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('withDeadlines', () => {
  it('fails with 408 when the source sends nothing for idleMs while a chunk is wanted', async () => {
    const source = new PassThrough();
    source.write('<a>');
    const out = withDeadlines(source, { idleMs: 100, totalMs: 10_000 }, 'the upload');
    const chunks: Buffer[] = [];
    const error = await new Promise<unknown>((resolve) => {
      out.on('data', (c: Buffer) => chunks.push(c)).on('error', resolve);
    });
    expect(Buffer.concat(chunks).toString()).toBe('<a>');
    expect(error).toBeInstanceOf(Problem);
    expect((error as Problem).status).toBe(408);
    expect(source.isPaused()).toBe(true);
    expect(source.destroyed).toBe(false);
  });

  it('does not count time spent waiting for a slow reader', async () => {
    const source = new PassThrough();
    const out = withDeadlines(source, { idleMs: 100, totalMs: 10_000 }, 'the upload');
    const slowReader = new Writable({
      highWaterMark: 1,
      write(_chunk, _enc, callback) {
        setTimeout(callback, 250);
      },
    });
    const done = pipeline(out, slowReader);
    for (let i = 0; i < 3; i++) source.write(Buffer.alloc(64 * 1024));
    source.end();
    await expect(done).resolves.toBeUndefined();
  });

  it('fails with 408 after totalMs however steadily the source trickles', async () => {
    const source = new PassThrough();
    const out = withDeadlines(source, { idleMs: 100, totalMs: 300 }, 'the upload');
    const timer = setInterval(() => source.write('x'), 30);
    const error = await new Promise<unknown>((resolve) => out.on('data', () => undefined).on('error', resolve));
    clearInterval(timer);
    expect((error as Problem).detail).toMatch(/longer than 300 ms/);
  });

  it('turns a source error into 400', async () => {
    const source = new PassThrough();
    const out = withDeadlines(source, { idleMs: 1000, totalMs: 1000 }, 'the upload');
    const error = new Promise<unknown>((resolve) => out.on('data', () => undefined).on('error', resolve));
    source.destroy(new Error('aborted'));
    expect((await error) as Problem).toMatchObject({ status: 400 });
  });

  it('raises no unhandled error when its reader stopped listening before a deadline passed', async () => {
    const source = new PassThrough();
    source.write(Buffer.alloc(1024));
    const out = withDeadlines(source, { idleMs: 50, totalMs: 50 }, 'the body');
    // As Fastify's body parser does at its size limit: take a chunk, then drop every listener.
    const onData = (): void => {
      out.off('data', onData);
      out.off('error', onError);
    };
    const onError = (): void => undefined;
    out.on('data', onData).on('error', onError);
    await sleep(200);
    expect(out.destroyed).toBe(true);
    expect((out.errored as Problem | null)?.status).toBe(408);
  });

  it('starts no clock for a body nobody reads', async () => {
    const source = new PassThrough();
    const out = withDeadlines(source, { idleMs: 50, totalMs: 50 }, 'the body');
    await sleep(150);
    expect(out.destroyed).toBe(false);
    out.destroy();
  });
});
