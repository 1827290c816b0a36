import { describe, expect, it } from 'vitest';
import { FingerprintSet } from '../../src/storage/prosody-files/fingerprint-set.js';

describe('FingerprintSet', () => {
  it('behaves as a Set of strings through several growths', () => {
    const set = new FingerprintSet();
    const reference = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const value = `id-${(i * 7919) % 15_000}-${'é😀'.repeat(i % 3)}`;
      expect(set.add(value)).toBe(!reference.has(value));
      reference.add(value);
    }
    expect(set.size).toBe(reference.size);
    for (const value of reference) expect(set.has(value)).toBe(true);
    expect(set.has('never added')).toBe(false);
    expect(set.has('')).toBe(false);
    expect(set.add('')).toBe(true);
    expect(set.has('')).toBe(true);
  });
});
