/**
 * The Lua values Prosody keeps in its stores, modelled closely enough that what xporta writes
 * back reads in Lua exactly as Prosody wrote it.
 *
 * Lua 5.4 has two number subtypes and prints them differently (`10` vs `10.0`); Prosody persists
 * the printed form, so a JS `number` is a Lua integer and a {@link LuaFloat} is a float.
 * A table keeps its string keys, its array part (keys 1..n) and its other keys (false, numbers
 * outside the sequence) apart, because util/json.lua and mod_storage_sql treat each differently.
 * A stanza (util.stanza object) is a Lua table with a metatable that storage serialises as XML,
 * so it is a value of its own here: an {@link XmlElement}.
 */
import type { XmlElement } from '../../records/model.js';

/** A Lua float. Only needed where the value is integral (`1.0`): any non-integral number is one anyway. */
export class LuaFloat {
  constructor(readonly value: number) {}
}

export type LuaValue = string | number | boolean | LuaFloat | LuaTable | XmlElement;

/** Keys other than strings. Tables as keys are possible in Lua but never appear in Prosody's stores. */
export type LuaOtherKey = number | boolean | LuaFloat;
export type LuaKey = string | LuaOtherKey;

/** True for a stanza value (an XML element), false for every other Lua value. */
export function isStanzaValue(value: LuaValue | undefined): value is XmlElement {
  return typeof value === 'object' && !(value instanceof LuaTable) && !(value instanceof LuaFloat);
}

/** Lua integers are JS integers; everything else numeric is a float. */
export function isLuaInteger(value: LuaValue | undefined): value is number {
  return typeof value === 'number' && Number.isInteger(value);
}

/** The numeric value of an integer or float, undefined for anything else. */
export function luaNumber(value: LuaValue | undefined): number | undefined {
  if (typeof value === 'number') return value;
  if (value instanceof LuaFloat) return value.value;
  return undefined;
}

/** Float keys with an integral value are the same key as the integer in Lua (`t[1.0] == t[1]`). */
function normaliseKey(key: LuaKey): LuaKey {
  if (key instanceof LuaFloat && Number.isInteger(key.value)) return key.value;
  return key;
}

function otherKeyId(key: LuaOtherKey): string {
  if (typeof key === 'boolean') return `b:${key}`;
  if (typeof key === 'number') return Number.isInteger(key) ? `i:${key}` : `f:${key}`;
  return `f:${key.value}`;
}

export class LuaTable {
  /** String keys, in insertion order (Lua has none; this one keeps output stable). */
  readonly hash = new Map<string, LuaValue>();
  /** Values at keys 1..n. */
  readonly array: LuaValue[] = [];
  private readonly others = new Map<string, { key: LuaOtherKey; value: LuaValue }>();
  /**
   * Decoded from a JSON array: util/json.lua gives such tables a metatable that makes them encode
   * as an array again (so `[]` stays `[]` rather than becoming `{}`).
   */
  jsonArray = false;

  /** A table from string-keyed members and an optional array part; undefined members are left out. */
  static of(members: Readonly<Record<string, LuaValue | undefined>> = {}, array: readonly LuaValue[] = []): LuaTable {
    const table = new LuaTable();
    for (const [key, value] of Object.entries(members)) if (value !== undefined) table.hash.set(key, value);
    table.array.push(...array);
    return table;
  }

  get(key: LuaKey): LuaValue | undefined {
    key = normaliseKey(key);
    if (typeof key === 'string') return this.hash.get(key);
    if (typeof key === 'number' && Number.isInteger(key) && key >= 1 && key <= this.array.length) return this.array[key - 1];
    return this.others.get(otherKeyId(key))?.value;
  }

  /** Sets a key; `undefined` removes it (Lua's `t[k] = nil`). */
  set(key: LuaKey, value: LuaValue | undefined): this {
    key = normaliseKey(key);
    if (typeof key === 'string') {
      if (value === undefined) this.hash.delete(key);
      else this.hash.set(key, value);
      return this;
    }
    if (typeof key === 'number' && Number.isInteger(key) && key >= 1 && key <= this.array.length + 1) {
      if (value === undefined) {
        if (key <= this.array.length) this.cutArray(key);
        return this;
      }
      if (key <= this.array.length) this.array[key - 1] = value;
      else this.appendArray(value);
      return this;
    }
    const id = otherKeyId(key);
    if (value === undefined) this.others.delete(id);
    else this.others.set(id, { key, value });
    return this;
  }

  /** Non-string keys outside the array part. */
  otherEntries(): { key: LuaOtherKey; value: LuaValue }[] {
    return [...this.others.values()];
  }

  /** True when the table has no keys at all. */
  get isEmpty(): boolean {
    return this.hash.size === 0 && this.array.length === 0 && this.others.size === 0;
  }

  /** Every key/value pair: string keys, then the array part, then the other keys. */
  *entries(): Generator<[LuaKey, LuaValue]> {
    yield* this.hash.entries();
    for (let i = 0; i < this.array.length; i++) yield [i + 1, this.array[i] as LuaValue];
    for (const { key, value } of this.others.values()) yield [key, value];
  }

  private appendArray(value: LuaValue): void {
    this.array.push(value);
    // Keys n+2, n+3, … that were outside the sequence now continue it.
    for (;;) {
      const next = this.others.get(otherKeyId(this.array.length + 1));
      if (!next) break;
      this.others.delete(otherKeyId(this.array.length + 1));
      this.array.push(next.value);
    }
  }

  private cutArray(key: number): void {
    // A hole ends the sequence: what follows it is no longer part of the array.
    const tail = this.array.splice(key - 1);
    tail.slice(1).forEach((value, i) => this.others.set(otherKeyId(key + 1 + i), { key: key + 1 + i, value }));
  }
}

// ---------------------------------------------------------------------------------------------
// Numbers as Lua 5.4 prints and reads them

/** `tostring(n)`: integers in decimal, floats as `%.14g` with `.0` added when they look integral. */
export function luaNumberToString(value: number | LuaFloat): string {
  if (typeof value === 'number' && Number.isInteger(value)) return String(value);
  const x = typeof value === 'number' ? value : value.value;
  if (Number.isNaN(x)) return x < 0 ? '-nan' : 'nan';
  if (!Number.isFinite(x)) return x < 0 ? '-inf' : 'inf';
  const formatted = formatG14(x);
  return /^-?\d+$/.test(formatted) ? `${formatted}.0` : formatted;
}

/** C's `%.14g`, rounding the exact binary value half to even as glibc's printf does. */
function formatG14(x: number): string {
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const sign = x < 0 ? '-' : '';
  const { digits, exp10 } = exactDecimal(Math.abs(x));
  let exp = digits.length - 1 + exp10;
  let head = digits.slice(0, 14);
  const rest = digits.slice(14);
  if (rest !== '') {
    const firstRest = rest.charCodeAt(0) - 48;
    const tie = firstRest === 5 && /^50*$/.test(rest);
    const lastOdd = (head.charCodeAt(head.length - 1) - 48) % 2 === 1;
    if (firstRest > 5 || (firstRest === 5 && (!tie || lastOdd))) {
      head = (BigInt(head) + 1n).toString();
      if (head.length > 14) {
        head = head.slice(0, 14);
        exp += 1;
      }
    }
  }
  if (exp < -4 || exp >= 14) {
    const mantissa = stripZeros(`${head[0]}.${head.slice(1)}`);
    return `${sign}${mantissa}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp < 0) return `${sign}${stripZeros(`0.${'0'.repeat(-exp - 1)}${head}`)}`;
  const padded = head.padEnd(exp + 1, '0');
  const fraction = padded.slice(exp + 1);
  return `${sign}${padded.slice(0, exp + 1)}${fraction === '' ? '' : stripZeros(`.${fraction}`)}`;
}

/** The exact value of a positive finite double as `digits × 10^exp10`. */
function exactDecimal(x: number): { digits: string; exp10: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const biased = Number((bits >> 52n) & 0x7ffn);
  let mantissa = bits & ((1n << 52n) - 1n);
  let exp2 = -1074;
  if (biased !== 0) {
    mantissa |= 1n << 52n;
    exp2 = biased - 1075;
  }
  if (exp2 >= 0) return { digits: (mantissa << BigInt(exp2)).toString(), exp10: 0 };
  // m·2^-k = m·5^k / 10^k
  return { digits: (mantissa * 5n ** BigInt(-exp2)).toString(), exp10: exp2 };
}

/** Trailing zeros of a fraction, and the point when nothing is left after it. */
function stripZeros(s: string): string {
  return s.replace(/\.?0+$/, '');
}

const DECIMAL_INTEGER = /^[ \t\n\r\f\v]*(-?)(\d+)[ \t\n\r\f\v]*$/;
const HEX_INTEGER = /^[ \t\n\r\f\v]*(-?)0[xX]([0-9a-fA-F]+)[ \t\n\r\f\v]*$/;
const DECIMAL_FLOAT = /^[ \t\n\r\f\v]*-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[ \t\n\r\f\v]*$/;

/**
 * `tonumber(s)` for the numerals Prosody writes: an integer when the numeral has no fraction or
 * exponent and fits 64 bits, otherwise a float. Undefined when Lua would return nil.
 */
export function parseLuaNumber(text: string): number | LuaFloat | undefined {
  const int = DECIMAL_INTEGER.exec(text);
  if (int) {
    const big = BigInt(`${int[1]}${int[2]}`);
    if (big >= -(2n ** 63n) && big < 2n ** 63n) return Number(big);
    return new LuaFloat(Number(big));
  }
  const hex = HEX_INTEGER.exec(text);
  if (hex) return Number(BigInt.asIntN(64, BigInt(`0x${hex[2]}`))) * (hex[1] ? -1 : 1);
  if (DECIMAL_FLOAT.test(text)) return new LuaFloat(Number(text.trim()));
  return undefined;
}
