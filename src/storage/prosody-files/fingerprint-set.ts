/**
 * A set of strings kept as 128-bit SHA-256 fingerprints in one typed array: 16 bytes a member at
 * full load, where a Set of a million archive ids (with the strings) held about 220 MB.
 * A false match needs a SHA-256 collision in its first 128 bits.
 */
import { createHash } from 'node:crypto';

/** 32-bit words per slot. */
const WORDS = 4;
const INITIAL_SLOTS = 1024;

export class FingerprintSet {
  private slots = new Uint32Array(INITIAL_SLOTS * WORDS);
  private capacity = INITIAL_SLOTS;
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(value: string): boolean {
    return this.find(fingerprint(value)) < 0;
  }

  /** Adds `value`; false when it was a member already. */
  add(value: string): boolean {
    const print = fingerprint(value);
    const slot = this.find(print);
    if (slot < 0) return false;
    this.slots.set(print, slot * WORDS);
    if (++this.count * 2 > this.capacity) this.grow();
    return true;
  }

  /** The empty slot where `print` belongs, or -1 when it is there already (linear probing). */
  private find(print: Uint32Array): number {
    const mask = this.capacity - 1;
    const slots = this.slots;
    for (let slot = (print[0] as number) & mask; ; slot = (slot + 1) & mask) {
      const at = slot * WORDS;
      if (slots[at] === 0 && slots[at + 1] === 0 && slots[at + 2] === 0 && slots[at + 3] === 0) return slot;
      if (slots[at] === print[0] && slots[at + 1] === print[1] && slots[at + 2] === print[2] && slots[at + 3] === print[3]) return -1;
    }
  }

  private grow(): void {
    const old = this.slots;
    this.capacity *= 2;
    this.slots = new Uint32Array(this.capacity * WORDS);
    for (let at = 0; at < old.length; at += WORDS) {
      const print = old.subarray(at, at + WORDS);
      if (print.some((word) => word !== 0)) this.slots.set(print, this.find(print) * WORDS);
    }
  }
}

function fingerprint(value: string): Uint32Array {
  const digest = createHash('sha256').update(value, 'utf8').digest();
  const print = new Uint32Array(digest.buffer, digest.byteOffset, WORDS).slice();
  // All-zero marks an empty slot; a digest starting with 128 zero bits is not going to happen,
  // but it must still not be lost.
  if (print.every((word) => word === 0)) print[0] = 1;
  return print;
}
