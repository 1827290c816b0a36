/**
 * A set of strings kept as 74-bit SHA-256 fingerprints (see {@link fingerprint}): in memory (about 11 bytes
 * a member, where a Set of a million archive ids with the strings held about 220 MB) up to a bound,
 * and past it in a SQLite file, so that de-duplicating an archive of any size takes the same
 * memory. A false match needs two members' hashes to agree on those 74 bits: among a million
 * members, a chance of about 1 in 4·10^10.
 *
 * In memory, the fingerprint's first 10 bits choose one of 1,024 small open-addressing tables and
 * the next 64 are stored in it. Each table grows on its own, by half, up to 80% full: the memory
 * follows the member count closely (no doubling of one large array, which for a moment held both
 * the old and the new copy), and the bits that chose the table need not be stored.
 */
import { hash } from 'node:crypto';
import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { ensurePrivateFile } from '../../lib/private-files.js';

/** 32-bit words a table slot holds. */
const WORDS = 2;
const TABLE_BITS = 10;
const TABLES = 1 << TABLE_BITS;
const INITIAL_SLOTS = 8;
/** A table grows once more than this share of its slots is taken. */
const MAX_LOAD = 0.8;
/**
 * A bounded set moves its tables into one block sized for the bound once it holds this share of
 * it. Tables growing one by one up to a million members take (with what the allocator keeps of
 * their earlier sizes) about three times the memory of the block; a set that stays small never
 * allocates it.
 */
const BLOCK_FROM_SHARE = 1 / 8;
/** Members a table of the block is sized for, relative to an even share of the bound: room for the spread. */
const BLOCK_SLACK = 1.15;

/** Where members go once there are many. */
export interface FingerprintSpill {
  /** Members kept in memory; the next one moves the set to the file. */
  readonly after: number;
  /** The file's path, asked for when it is first needed; {@link FingerprintSet.close} removes it. */
  readonly path: () => string;
}

export class FingerprintSet {
  /** Created at their first member. */
  private tables: (Uint32Array | undefined)[] = new Array<Uint32Array | undefined>(TABLES);
  /** Members per table. */
  private counts = new Uint32Array(TABLES);
  private count = 0;
  private spilled: SpilledPrints | undefined;
  /** Whether the tables are views of one block (see {@link BLOCK_FROM_SHARE}). */
  private inBlock = false;
  /** The fingerprint being looked up: the table's index, then the two stored words. */
  private readonly scratch = new Uint32Array(3);

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
    if (this.spilled) return this.spilled.has(print);
    const table = this.tables[print[0] as number];
    return table !== undefined && find(table, print) >= 0;
  }

  /** Adds `value`; false when it was a member already. */
  add(value: string): boolean {
    const print = fingerprint(value, this.scratch);
    if (this.spilled) {
      if (!this.spilled.add(print)) return false;
      this.count++;
      return true;
    }
    const index = print[0] as number;
    let table = this.tables[index];
    if (table === undefined) {
      table = new Uint32Array(INITIAL_SLOTS * WORDS);
      this.tables[index] = table;
    } else if (find(table, print) >= 0) return false;
    if (this.spill && this.count >= this.spill.after) {
      this.moveToDisk(this.spill.path());
      return this.add(value);
    }
    insert(table, print);
    this.count++;
    const members = (this.counts[index] as number) + 1;
    this.counts[index] = members;
    // A table of the block that fills up grows on its own, out of the block.
    if (members > (table.length / WORDS) * MAX_LOAD) this.tables[index] = grown(table);
    if (!this.inBlock && this.spill && this.count >= Math.max(TABLES * INITIAL_SLOTS, this.spill.after * BLOCK_FROM_SHARE)) this.moveToBlock(this.spill.after);
    return true;
  }

  /** Every table re-made as a view of one block, each sized for an even share of `bound` members. */
  private moveToBlock(bound: number): void {
    this.inBlock = true;
    const slots = Math.ceil(((bound / TABLES) * BLOCK_SLACK) / MAX_LOAD);
    const block = new Uint32Array(slots * WORDS * TABLES);
    const print = new Uint32Array(3);
    for (let index = 0; index < TABLES; index++) {
      const view = block.subarray(index * slots * WORDS, (index + 1) * slots * WORDS);
      const table = this.tables[index];
      if (table !== undefined && (this.counts[index] as number) > slots * MAX_LOAD) continue;
      if (table !== undefined) {
        forEachMember(table, (word1, word2) => {
          print[1] = word1;
          print[2] = word2;
          insert(view, print);
        });
      }
      this.tables[index] = view;
    }
  }

  /** Frees the memory or closes and removes the file. The set is empty afterwards. */
  close(): void {
    this.spilled?.close();
    this.spilled = undefined;
    this.inBlock = false;
    this.tables = new Array<Uint32Array | undefined>(TABLES);
    this.counts = new Uint32Array(TABLES);
    this.count = 0;
  }

  private moveToDisk(path: string): void {
    const spilled = new SpilledPrints(path);
    try {
      const print = new Uint32Array(3);
      this.tables.forEach((table, index) => {
        if (table === undefined) return;
        print[0] = index;
        forEachMember(table, (word1, word2) => {
          print[1] = word1;
          print[2] = word2;
          spilled.add(print);
        });
      });
    } catch (err) {
      spilled.close();
      throw err;
    }
    this.spilled = spilled;
    this.tables = new Array<Uint32Array | undefined>(TABLES);
    this.counts = new Uint32Array(TABLES);
  }
}

/** The slot `print` starts probing at: its first stored word scaled to the table's size. */
function home(print: Uint32Array, slots: number): number {
  return Math.min(slots - 1, Math.floor(((print[1] as number) / 0x1_0000_0000) * slots));
}

/** The slot holding `print`, or -1 (linear probing). */
function find(table: Uint32Array, print: Uint32Array): number {
  const slots = table.length / WORDS;
  const a = print[1] as number;
  const b = print[2] as number;
  for (let slot = home(print, slots); ; slot = slot + 1 === slots ? 0 : slot + 1) {
    const at = slot * WORDS;
    const x = table[at] as number;
    const y = table[at + 1] as number;
    if (x === a && y === b) return slot;
    if (x === 0 && y === 0) return -1;
  }
}

/** Stores `print` in `table`'s first free slot from its home on (there is always one). */
function insert(table: Uint32Array, print: Uint32Array): void {
  const slots = table.length / WORDS;
  let slot = home(print, slots);
  while (table[slot * WORDS] !== 0 || table[slot * WORDS + 1] !== 0) slot = slot + 1 === slots ? 0 : slot + 1;
  table[slot * WORDS] = print[1] as number;
  table[slot * WORDS + 1] = print[2] as number;
}

function forEachMember(table: Uint32Array, each: (word1: number, word2: number) => void): void {
  for (let at = 0; at < table.length; at += WORDS) {
    const x = table[at] as number;
    const y = table[at + 1] as number;
    if (x !== 0 || y !== 0) each(x, y);
  }
}

/** `table`'s members in a table half as large again. */
function grown(table: Uint32Array): Uint32Array {
  const next = new Uint32Array(Math.ceil((table.length / WORDS) * 1.5) * WORDS);
  const print = new Uint32Array(3);
  forEachMember(table, (word1, word2) => {
    print[1] = word1;
    print[2] = word2;
    insert(next, print);
  });
  return next;
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

/**
 * `value`'s fingerprint written into `into` (which is returned): the index of its table (the first
 * 10 bits of its SHA-256), then the next 64 bits as two words. An all-zero pair of words marks an
 * empty slot; a digest with 64 zero bits there is not going to happen, but it must not be lost.
 * A cryptographic digest, so that no one can make strings that are taken for one another short of
 * the birthday bound of the 74 bits kept.
 */
function fingerprint(value: string, into: Uint32Array): Uint32Array {
  // The digest as a string of byte-valued characters: a Buffer per digest (an ArrayBuffer made
  // outside V8's heap) costs several times the hash itself.
  const digest = hash('sha256', value, 'binary');
  const first = word(digest, 0);
  const second = word(digest, 4);
  into[0] = first >>> (32 - TABLE_BITS);
  into[1] = ((first << TABLE_BITS) | (second >>> (32 - TABLE_BITS))) >>> 0;
  into[2] = ((second << TABLE_BITS) | (word(digest, 8) >>> (32 - TABLE_BITS))) >>> 0;
  if (into[1] === 0 && into[2] === 0) into[1] = 1;
  return into;
}

/** The big-endian 32-bit word at `at` of a digest given as `binary` (latin1) text. */
function word(digest: string, at: number): number {
  return ((digest.charCodeAt(at) << 24) | (digest.charCodeAt(at + 1) << 16) | (digest.charCodeAt(at + 2) << 8) | digest.charCodeAt(at + 3)) >>> 0;
}
