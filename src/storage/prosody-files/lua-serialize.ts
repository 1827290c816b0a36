/**
 * Lua source text for a value, byte for byte what Prosody 0.12's util/serialization.lua writes
 * with its default preset (the one util/datamanager.lua uses), so that Prosody reads back exactly
 * what it would have written itself:
 *
 * - tables: `{`, then per entry a newline, one tab per nesting level, the entry and `;`; the last
 *   entry's `;` is followed by a newline and the closing `}` indented one level less; `{}` when
 *   empty. The array part comes first without keys, every other key is bracketed (`["k"] = `,
 *   `[false] = `, `[10] = `). Lua orders the remaining keys by hash; any order reads back the same.
 * - strings: `"`, `'`, `\` and the C escapes `\a\b\f\n\r\t\v` by name, every other byte below 32
 *   and every byte from 127 up as a three-digit decimal escape (`\000`, `\195`). The text is
 *   therefore plain ASCII whatever the data.
 * - numbers: integers `%d`; floats `%.18g` (C rounding: half to even), infinities `(1/0)` and
 *   `(-1/0)`, NaN `(0/0)`. Like Prosody, an integral float such as 2.0 comes out as `2`.
 * - more than 127 nested tables is an error, as it is in Prosody.
 */
import type { XmlElement } from '../../records/model.js';
import { LuaFloat, LuaTable, isStanzaValue, type LuaKey, type LuaValue } from '../prosody/lua.js';
import { toPreserialized } from '../prosody/stanza.js';

export class LuaSerializeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LuaSerializeError';
  }
}

/** util/serialization.lua `maxdepth`. */
export const MAX_TABLE_DEPTH = 127;

const NAMED_ESCAPES: Readonly<Record<number, string>> = {
  0x07: '\\a',
  0x08: '\\b',
  0x0c: '\\f',
  0x0a: '\\n',
  0x0d: '\\r',
  0x09: '\\t',
  0x0b: '\\v',
  0x5c: '\\\\',
  0x22: '\\"',
  0x27: "\\'",
};

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** UTF-8 bytes of a string; a lone surrogate would silently become U+FFFD, so it is refused. */
export function utf8Bytes(value: string): Buffer {
  if (LONE_SURROGATE.test(value)) throw new LuaSerializeError('string contains a lone surrogate (not valid Unicode)');
  return Buffer.from(value, 'utf8');
}

export function serializeLuaString(value: string): string {
  const bytes = utf8Bytes(value);
  let out = '"';
  let runStart = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    const plain = b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x27 && b !== 0x5c;
    if (plain) continue;
    if (i > runStart) out += bytes.toString('latin1', runStart, i);
    out += NAMED_ESCAPES[b] ?? `\\${String(b).padStart(3, '0')}`;
    runStart = i + 1;
  }
  if (bytes.length > runStart) out += bytes.toString('latin1', runStart);
  return `${out}"`;
}

// ---------------------------------------------------------------------------------------------
// Numbers

const TWO_63 = 2 ** 63;

/** The exact value of a finite, non-zero double as `digits × 10^-scale` (digits without sign). */
function exactDecimal(x: number): { digits: string; scale: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(x));
  const bits = view.getBigUint64(0);
  const biasedExp = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  const mantissa = biasedExp === 0 ? fraction : fraction | (1n << 52n);
  const exp = (biasedExp === 0 ? 1 : biasedExp) - 1075;
  if (exp >= 0) return { digits: (mantissa << BigInt(exp)).toString(), scale: 0 };
  // m / 2^k = m·5^k / 10^k: every double has a finite decimal expansion.
  return { digits: (mantissa * 5n ** BigInt(-exp)).toString(), scale: -exp };
}

/** C's `printf("%.<precision>g", x)` for a finite double, rounding half to even as glibc does. */
export function formatG(x: number, precision: number): string {
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  const sign = x < 0 ? '-' : '';
  const { digits, scale } = exactDecimal(x);
  let exponent = digits.length - 1 - scale;
  let significant: string;
  if (digits.length <= precision) {
    significant = digits.padEnd(precision, '0');
  } else {
    let head = BigInt(digits.slice(0, precision));
    const rest = digits.slice(precision);
    const first = rest.charCodeAt(0) - 48;
    const tailNonZero = /[1-9]/.test(rest.slice(1));
    if (first > 5 || (first === 5 && (tailNonZero || head % 2n === 1n))) head += 1n;
    significant = head.toString();
    if (significant.length > precision) {
      significant = significant.slice(0, precision);
      exponent += 1;
    }
  }
  if (exponent < -4 || exponent >= precision) {
    const mantissa = stripFraction(`${significant[0]}.${significant.slice(1)}`);
    const expSign = exponent < 0 ? '-' : '+';
    return `${sign}${mantissa}e${expSign}${String(Math.abs(exponent)).padStart(2, '0')}`;
  }
  let fixed: string;
  if (exponent >= 0) fixed = `${significant.slice(0, exponent + 1)}.${significant.slice(exponent + 1)}`;
  else fixed = `0.${'0'.repeat(-exponent - 1)}${significant}`;
  return `${sign}${stripFraction(fixed)}`;
}

function stripFraction(s: string): string {
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

/** util/serialization.lua `types.number`. */
export function serializeLuaNumber(value: number | LuaFloat): string {
  const float = value instanceof LuaFloat;
  const x = float ? value.value : value;
  // A JS integer beyond 64 bits could only have been a float in Lua.
  if (!float && Number.isSafeInteger(x)) return String(x);
  if (!float && Number.isInteger(x) && x >= -TWO_63 && x < TWO_63) return BigInt(x).toString();
  if (x === Infinity) return '(1/0)';
  if (x === -Infinity) return '(-1/0)';
  if (Number.isNaN(x)) return '(0/0)';
  return formatG(x, 18);
}

// ---------------------------------------------------------------------------------------------
// Values

function serializeKey(key: LuaKey): string {
  if (typeof key === 'string') return serializeLuaString(key);
  if (typeof key === 'boolean') return key ? 'true' : 'false';
  const n = key instanceof LuaFloat ? key.value : key;
  if (Number.isNaN(n)) throw new LuaSerializeError('NaN cannot be a table key');
  return serializeLuaNumber(key);
}

class Writer {
  readonly out: string[] = [];
  private readonly open = new Set<LuaTable>();

  value(value: LuaValue, depth: number): void {
    if (typeof value === 'string') this.out.push(serializeLuaString(value));
    else if (typeof value === 'boolean') this.out.push(value ? 'true' : 'false');
    else if (typeof value === 'number' || value instanceof LuaFloat) this.out.push(serializeLuaNumber(value));
    else if (value instanceof LuaTable) this.table(value, depth);
    // A stanza object is stored as st.preserialize makes it (util.stanza's __freeze).
    else if (isStanzaValue(value)) this.table(toPreserialized(value as XmlElement), depth);
    else throw new LuaSerializeError(`cannot serialize ${typeof value}`);
  }

  private table(t: LuaTable, depth: number): void {
    if (depth > MAX_TABLE_DEPTH) throw new LuaSerializeError("Can't serialize table: max table depth reached");
    if (this.open.has(t)) throw new LuaSerializeError("Can't serialize table: table contains itself");
    this.open.add(t);
    this.out.push('{');
    const indent = '\t'.repeat(depth);
    let any = false;
    for (const v of t.array) {
      this.out.push('\n', indent);
      this.value(v, depth + 1);
      this.out.push(';');
      any = true;
    }
    const keyed: [LuaKey, LuaValue][] = [...t.hash.entries(), ...t.otherEntries().map((e): [LuaKey, LuaValue] => [e.key, e.value])];
    for (const [k, v] of keyed) {
      this.out.push('\n', indent, '[', serializeKey(k), '] = ');
      this.value(v, depth + 1);
      this.out.push(';');
      any = true;
    }
    if (any) this.out.push('\n', '\t'.repeat(depth - 1));
    this.out.push('}');
    this.open.delete(t);
  }
}

/** `serialize(value)` with the default preset. */
export function serializeLua(value: LuaValue): string {
  const writer = new Writer();
  writer.value(value, 1);
  return writer.out.join('');
}

/** A keyval store file (`.dat`): util/datamanager.lua `store`. */
export function serializeDatFile(value: LuaValue): string {
  return `return ${serializeLua(value)};\n`;
}

/** One archive item of a `.list` file: util/datamanager.lua `list_append`. */
export function serializeListItem(value: LuaValue): string {
  return `item(${serializeLua(value)});\n`;
}
