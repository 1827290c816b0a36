import { describe, expect, it } from 'vitest';
import { concatAsync, takingTurns, tapAsync } from '../../src/lib/async-iter.js';

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}

async function* numbers(from: number, to: number, log?: string[]): AsyncGenerator<number> {
  try {
    for (let n = from; n <= to; n++) yield n;
  } finally {
    log?.push(`closed ${from}`);
  }
}

describe('concatAsync', () => {
  it('gives the items of sync and async parts in order, skipping empty ones', async () => {
    const joined = concatAsync<number>(
      () => [1],
      () => numbers(2, 4),
      () => [],
      () => numbers(5, 4),
      () => [5, 6],
      () => numbers(7, 7),
    );
    expect(await collect(joined)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('makes each part only once the one before it has ended', async () => {
    const log: string[] = [];
    const joined = concatAsync<number>(
      () => {
        log.push('first made');
        return numbers(1, 2, log);
      },
      () => {
        log.push('second made');
        return [3];
      },
    );
    const iterator = joined[Symbol.asyncIterator]();
    expect(log).toEqual([]);
    await iterator.next();
    await iterator.next();
    expect(log).toEqual(['first made']);
    expect(await iterator.next()).toEqual({ done: false, value: 3 });
    expect(log).toEqual(['first made', 'closed 1', 'second made']);
    expect((await iterator.next()).done).toBe(true);
  });

  it('stops the current part when the consumer stops early, and makes no more', async () => {
    const log: string[] = [];
    let laterMade = false;
    const joined = concatAsync<number>(
      () => numbers(1, 10, log),
      () => {
        laterMade = true;
        return [99];
      },
    );
    for await (const n of joined) if (n === 2) break;
    expect(log).toEqual(['closed 1']);
    expect(laterMade).toBe(false);
  });

  it('rejects with a part’s error', async () => {
    async function* failing(): AsyncGenerator<number> {
      yield 1;
      throw new Error('storage gone');
    }
    await expect(collect(concatAsync<number>(() => [0], failing, () => [2]))).rejects.toThrow('storage gone');
  });
});

describe('tapAsync', () => {
  it('sees every item and ends once at the end', async () => {
    const seen: number[] = [];
    let ends = 0;
    const tapped = tapAsync(numbers(1, 3), (n) => seen.push(n), () => ends++);
    expect(await collect(tapped)).toEqual([1, 2, 3]);
    expect(seen).toEqual([1, 2, 3]);
    expect(ends).toBe(1);
  });

  it('ends once when the consumer stops early, after closing the source', async () => {
    const log: string[] = [];
    let ends = 0;
    const tapped = tapAsync(numbers(1, 10, log), () => undefined, () => {
      ends++;
      log.push('end');
    });
    for await (const n of tapped) if (n === 2) break;
    expect(log).toEqual(['closed 1', 'end']);
    expect(ends).toBe(1);
  });

  it('ends once when the source fails', async () => {
    async function* failing(): AsyncGenerator<number> {
      yield 1;
      throw new Error('bad document');
    }
    let ends = 0;
    await expect(collect(tapAsync(failing(), () => undefined, () => ends++))).rejects.toThrow('bad document');
    expect(ends).toBe(1);
  });
});

describe('takingTurns', () => {
  it('lets the event loop run while a producer of ready items goes on, and keeps every item in order', async () => {
    let turnAt: number | undefined;
    let passed = 0;
    setImmediate(() => (turnAt = passed));
    const out: number[] = [];
    for await (const n of takingTurns(numbers(1, 100), 0)) {
      out.push(n);
      passed++;
    }
    expect(out).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(turnAt).toBeDefined();
    expect(turnAt).toBeLessThan(100);
  });

  it('without it, the same producer keeps the event loop from running until it ends', async () => {
    let turnAt: number | undefined;
    let passed = 0;
    setImmediate(() => (turnAt = passed));
    for await (const n of numbers(1, 100)) passed += n > 0 ? 1 : 0;
    expect(turnAt).toBeUndefined();
  });

  it('closes the source when the consumer stops early', async () => {
    const log: string[] = [];
    for await (const n of takingTurns(numbers(1, 10, log), 0)) if (n === 3) break;
    expect(log).toEqual(['closed 1']);
  });
});
