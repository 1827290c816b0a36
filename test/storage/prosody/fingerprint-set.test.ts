import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FingerprintSet } from '../../../src/storage/prosody/fingerprint-set.js';

function exerciseAsSet(set: FingerprintSet, members: number): void {
  const reference = new Set<string>();
  for (let i = 0; i < members; i++) {
    const value = `id-${(i * 7919) % Math.floor(members * 0.75)}-${'é😀'.repeat(i % 3)}`;
    expect(set.add(value)).toBe(!reference.has(value));
    reference.add(value);
  }
  expect(set.size).toBe(reference.size);
  for (const value of reference) expect(set.has(value)).toBe(true);
  expect(set.has('never added')).toBe(false);
  expect(set.has('')).toBe(false);
  expect(set.add('')).toBe(true);
  expect(set.has('')).toBe(true);
  expect(set.add('')).toBe(false);
}

describe('FingerprintSet', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('behaves as a Set of strings through several growths', () => {
    const set = new FingerprintSet();
    exerciseAsSet(set, 20_000);
    expect(set.onDisk).toBe(false);
  });

  it('keeps a hundred thousand members in memory, each table growing on its own', () => {
    const set = new FingerprintSet();
    let added = 0;
    for (let i = 0; i < 100_000; i++) if (set.add(`msg-${i}`)) added++;
    let again = 0;
    for (let i = 0; i < 100_000; i += 7) if (set.add(`msg-${i}`)) again++;
    expect([added, again, set.size]).toEqual([100_000, 0, 100_000]);
    expect(set.has('msg-100000')).toBe(false);
  });

  it('moves to its file past the bound, still behaving as a Set, and removes the file when closed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'xporta-fp-'));
    dirs.push(dir);
    const path = join(dir, 'seen.sqlite');
    let asked = 0;
    const set = new FingerprintSet({
      after: 1000,
      path: () => {
        asked++;
        return path;
      },
    });
    exerciseAsSet(set, 8000);
    expect(set.onDisk).toBe(true);
    expect(asked).toBe(1);
    expect(existsSync(path)).toBe(true);
    set.close();
    expect(existsSync(path)).toBe(false);
    expect(set.size).toBe(0);
  });

  it('moves its tables into one block when bounded and large, still behaving as a Set', () => {
    const set = new FingerprintSet({
      after: 200_000,
      path: () => {
        throw new Error('no file expected');
      },
    });
    exerciseAsSet(set, 60_000);
    for (let i = 0; i < 90_000; i++) set.add(`more-${i}`);
    for (let i = 0; i < 90_000; i += 11) expect(set.add(`more-${i}`)).toBe(false);
    expect(set.onDisk).toBe(false);
  });

  it('stays in memory up to the bound', () => {
    const set = new FingerprintSet({
      after: 1000,
      path: () => {
        throw new Error('no file expected');
      },
    });
    for (let i = 0; i < 1000; i++) set.add(`key-${i}`);
    expect(set.add('key-0')).toBe(false);
    expect(set.onDisk).toBe(false);
  });
});
