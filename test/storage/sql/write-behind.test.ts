import { describe, expect, it } from 'vitest';
import { WriteBehind } from '../../../src/storage/sql/write-behind.js';

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } {
  let resolve!: () => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('WriteBehind', () => {
  it('lets two writes be in flight and holds the caller back at the third', async () => {
    const writes = new WriteBehind();
    const [a, b, c] = [deferred(), deferred(), deferred()];
    await writes.add(a.promise);
    await writes.add(b.promise);
    let third = false;
    const adding = writes.add(c.promise).then(() => (third = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(third).toBe(false);
    a.resolve();
    await adding;
    expect(third).toBe(true);
    b.resolve();
    c.resolve();
    await writes.settle();
  });

  it('reports the first failure at the next add or settle, never as an unhandled rejection', async () => {
    const writes = new WriteBehind();
    const first = deferred();
    await writes.add(first.promise);
    first.reject(new Error('duplicate key'));
    await new Promise((r) => setTimeout(r, 0));
    await expect(writes.add(Promise.reject(new Error('later')))).rejects.toThrow('duplicate key');
    await expect(writes.settle()).rejects.toThrow('duplicate key');
  });

  it('drains without throwing, for a rollback', async () => {
    const writes = new WriteBehind();
    await writes.add(Promise.reject(new Error('x'))).catch(() => undefined);
    await expect(writes.drain()).resolves.toBeUndefined();
  });
});
