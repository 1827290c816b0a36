/**
 * A set of strings kept as 96-bit SHA-256 fingerprints: in one typed array (12 bytes a member
 * at full load, where a Set of a million archive ids with the strings held about 220 MB) up to a
 * bound, and past it in a SQLite file, so that de-duplicating an archive of any size takes the
 * same memory. A false match needs a SHA-256 collision in its first 96 bits: among a million
 * members, a chance of about 1 in 10^17.
 */
import { hash } from 'node:crypto';
import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ensurePrivateFile } from '../../lib/private-files.js';

/** 32-bit words per slot. */
const WORDS = 3;
const INITIAL_SLOTS = 1024;

/** Where members go once there are many. */
export interface FingerprintSpill {
  /** Members kept in memory; the next one moves the set to the file. */
  readonly after: number;
  /** The file's path, asked for when it is first needed; {@link FingerprintSet.close} removes it. */
  readonly path: () => string;
}

export class FingerprintSet {
  private slots = new Uint32Array(INITIAL_SLOTS * WORDS);
  private capacity = INITIAL_SLOTS;
  private count = 0;
  private spilled: SpilledPrints | undefined;
  /** The fingerprint being looked up; {@link insert} copies it. */
  private readonly scratch = new Uint32Array(WORDS);

  constructor(private readonly spill?: FingerprintSpill) {}

  get size(): number {
    return this.count;
  }

  /** Whether the members are in the file now. */
  get onDisk(): boolean {
    return this.spilled !== undefined;
  }

  has(value: string): boolean {
    const print = fingerprint(value, this.scratch);
    return this.spilled ? this.spilled.has(print) : this.find(print) >= 0;
  }

  /** Adds `value`; false when it was a member already. */
  add(value: string): boolean {
    const print = fingerprint(value, this.scratch);
    if (this.spilled) {
      if (!this.spilled.add(print)) return false;
      this.count++;
      return true;
    }
    if (this.find(print) >= 0) return false;
    if (this.spill && this.count >= this.spill.after) {
      this.moveToDisk(this.spill.path());
      return this.add(value);
    }
    this.insert(print);
    if (++this.count * 2 > this.capacity) this.grow();
    return true;
  }

  /** Frees the memory or closes and removes the file. The set is empty afterwards. */
  close(): void {
    this.spilled?.close();
    this.spilled = undefined;
    this.slots = new Uint32Array(INITIAL_SLOTS * WORDS);
    this.capacity = INITIAL_SLOTS;
    this.count = 0;
  }

  /** The slot holding `print`, or -1 (linear probing). */
  private find(print: Uint32Array): number {
    const mask = this.capacity - 1;
    const slots = this.slots;
    for (let slot = (print[0] as number) & mask; ; slot = (slot + 1) & mask) {
      const at = slot * WORDS;
      if (slots[at] === print[0] && slots[at + 1] === print[1] && slots[at + 2] === print[2]) return slot;
      if (slots[at] === 0 && slots[at + 1] === 0 && slots[at + 2] === 0) return -1;
    }
  }

  private insert(print: Uint32Array): void {
    const mask = this.capacity - 1;
    const slots = this.slots;
    let slot = (print[0] as number) & mask;
    while (slots[slot * WORDS] !== 0 || slots[slot * WORDS + 1] !== 0 || slots[slot * WORDS + 2] !== 0) slot = (slot + 1) & mask;
    slots.set(print, slot * WORDS);
  }

  /** Calls `each` with every member, in a view that is only valid during the call. */
  private forEachMember(slots: Uint32Array, each: (print: Uint32Array) => void): void {
    for (let at = 0; at < slots.length; at += WORDS) {
      if (slots[at] !== 0 || slots[at + 1] !== 0 || slots[at + 2] !== 0) each(slots.subarray(at, at + WORDS));
    }
  }

  private grow(): void {
    const old = this.slots;
    this.capacity *= 2;
    this.slots = new Uint32Array(this.capacity * WORDS);
    this.forEachMember(old, (print) => this.insert(print));
  }

  private moveToDisk(path: string): void {
    const spilled = new SpilledPrints(path);
    try {
      this.forEachMember(this.slots, (print) => spilled.add(print));
    } catch (err) {
      spilled.close();
      throw err;
    }
    this.spilled = spilled;
    this.slots = new Uint32Array(0);
    this.capacity = 0;
  }
}

/**
 * Fingerprints in a SQLite table of their own: one B-tree with a bounded page cache, in a file
 * no other connection opens, never committed (it is removed, not kept).
 */
class SpilledPrints {
  private readonly db: Database.Database;
  private readonly insertPrint: Database.Statement<[Buffer]>;
  private readonly selectPrint: Database.Statement<[Buffer], unknown>;

  constructor(private readonly path: string) {
    // Private before SQLite opens it: fingerprints are derived from the account's records.
    ensurePrivateFile(path);
    this.db = new Database(path);
    try {
      // Nothing here has to survive a crash: no journal, no syncs, no other reader.
      this.db.pragma('journal_mode = OFF');
      this.db.pragma('synchronous = OFF');
      this.db.pragma('locking_mode = EXCLUSIVE');
      this.db.pragma(`cache_size = -${SPILL_CACHE_KIB}`);
      this.db.exec('CREATE TABLE print (print BLOB PRIMARY KEY) WITHOUT ROWID');
      this.db.exec('BEGIN');
      this.insertPrint = this.db.prepare('INSERT OR IGNORE INTO print (print) VALUES (?)');
      this.selectPrint = this.db.prepare('SELECT 1 FROM print WHERE print = ?');
    } catch (err) {
      this.close();
      throw err;
    }
  }

  add(print: Uint32Array): boolean {
    return this.insertPrint.run(bytesOf(print)).changes > 0;
  }

  has(print: Uint32Array): boolean {
    return this.selectPrint.get(bytesOf(print)) !== undefined;
  }

  close(): void {
    if (this.db.open) this.db.close();
    rmSync(this.path, { force: true });
  }
}

/** The page cache of a spilled set, KiB: large enough that a million members take seconds, not minutes. */
const SPILL_CACHE_KIB = 8192;

function bytesOf(print: Uint32Array): Buffer {
  return Buffer.from(print.buffer, print.byteOffset, print.byteLength);
}

/** The first 96 bits of `value`'s SHA-256, written into `into` (which is returned). */
function fingerprint(value: string, into: Uint32Array): Uint32Array {
  const digest = hash('sha256', value, 'buffer');
  into[0] = digest.readUInt32LE(0);
  into[1] = digest.readUInt32LE(4);
  into[2] = digest.readUInt32LE(8);
  // All-zero marks an empty slot; a digest starting with 96 zero bits is not going to happen,
  // but it must still not be lost.
  if (into[0] === 0 && into[1] === 0 && into[2] === 0) into[0] = 1;
  return into;
}
