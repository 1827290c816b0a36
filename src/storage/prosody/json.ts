/**
 * Prosody's JSON dialect (util/json.lua), which is how mod_storage_sql stores every table.
 *
 * Plain JSON cannot carry Lua tables with non-string keys or with both an array part and string
 * keys, so util/json.lua adds two members: `"__hash":[k1,v1,k2,v2,…]` for the non-string keys and
 * `"__array":[…]` for the array part beside string keys. A table with only an array part is a
 * JSON array, an empty table is `{}`. Strings are written byte for byte except `"`, `\` and the
 * C0 controls (`\b \f \n \r \t`, the rest as upper-case `\u00XX`).
 */
import { LuaFloat, LuaTable, isStanzaValue, luaNumberToString, parseLuaNumber, type LuaValue } from './lua.js';
import { toPreserialized } from './stanza.js';

export class ProsodyJsonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProsodyJsonError';
  }
}

const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  '\\': '\\\\',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

function encodeString(value: string): string {
  // eslint-disable-next-line no-control-regex
  const escaped = value.replace(/["\\\u0000-\u001f]/g, (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`);
  return `"${escaped}"`;
}

function encodeNumber(value: number | LuaFloat): string {
  const text = luaNumberToString(value);
  // util/json.lua would write `inf`/`nan`, which its own decoder then refuses: fail here instead.
  if (/n/.test(text)) throw new ProsodyJsonError(`${text} cannot be stored as JSON`);
  return text;
}

function encodeValue(value: LuaValue, out: string[]): void {
  if (typeof value === 'string') out.push(encodeString(value));
  else if (typeof value === 'number' || value instanceof LuaFloat) out.push(encodeNumber(value));
  else if (typeof value === 'boolean') out.push(value ? 'true' : 'false');
  else if (value instanceof LuaTable) encodeTable(value, out);
  // A stanza nested inside a table is stored as its preserialized form.
  else if (isStanzaValue(value)) encodeTable(toPreserialized(value), out);
}

function encodeArray(values: readonly LuaValue[], out: string[]): void {
  out.push('[');
  values.forEach((v, i) => {
    if (i > 0) out.push(',');
    encodeValue(v, out);
  });
  out.push(']');
}

function encodeTable(table: LuaTable, out: string[]): void {
  // util/json.lua silently drops string keys that collide with its own markers.
  if (table.jsonArray) {
    encodeArray(table.array, out);
    return;
  }
  const members = [...table.hash].filter(([k]) => k !== '__array' && k !== '__hash');
  const others = table.otherEntries();
  if (members.length === 0 && others.length === 0 && table.array.length > 0) {
    encodeArray(table.array, out);
    return;
  }
  out.push('{');
  let first = true;
  const sep = (): void => {
    if (!first) out.push(',');
    first = false;
  };
  for (const [key, value] of members) {
    sep();
    out.push(encodeString(key), ':');
    encodeValue(value, out);
  }
  if (others.length > 0) {
    sep();
    out.push('"__hash":[');
    others.forEach(({ key, value }, i) => {
      if (i > 0) out.push(',');
      encodeValue(key, out);
      out.push(',');
      encodeValue(value, out);
    });
    out.push(']');
  }
  if (table.array.length > 0) {
    sep();
    out.push('"__array":');
    encodeArray(table.array, out);
  }
  out.push('}');
}

/** `json.encode(value)`. */
export function encodeJson(value: LuaValue): string {
  const out: string[] = [];
  encodeValue(value, out);
  return out.join('');
}

// ---------------------------------------------------------------------------------------------

const WHITESPACE = new Set([' ', '\t', '\r', '\n']);

/**
 * `json.decode(text)`, accepting everything util/json.lua accepts: members in any order, `__hash`
 * and `__array` anywhere, raw control characters in strings, unknown escapes kept literally.
 * JSON `null` (util/json's sentinel, never written by the stores xporta reads) becomes Lua nil:
 * the member is absent and an array skips it.
 */
export function decodeJson(text: string): LuaValue {
  const parser = new Parser(text);
  const value = parser.value();
  parser.skipWhitespace();
  if (parser.pos < text.length) throw new ProsodyJsonError(`garbage at end of JSON at offset ${parser.pos}`);
  if (value === null) throw new ProsodyJsonError('JSON null is not a storable value');
  return value;
}

class Parser {
  pos = 0;
  constructor(private readonly text: string) {}

  skipWhitespace(): void {
    while (this.pos < this.text.length && WHITESPACE.has(this.text[this.pos] as string)) this.pos++;
  }

  private fail(message: string): never {
    throw new ProsodyJsonError(`${message} at offset ${this.pos}`);
  }

  value(): LuaValue | null {
    this.skipWhitespace();
    const c = this.text[this.pos];
    switch (c) {
      case '{':
        return this.object();
      case '[':
        return this.array();
      case '"':
        return this.string();
      case 't':
        return this.literal('true', true);
      case 'f':
        return this.literal('false', false);
      case 'n':
        return this.literal('null', null);
      default:
        if (c !== undefined && (c === '-' || (c >= '0' && c <= '9'))) return this.number();
        return this.fail('value expected');
    }
  }

  private literal<T>(word: string, result: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail(`${word} expected`);
    this.pos += word.length;
    return result;
  }

  private number(): LuaValue {
    const match = /[0-9.\-eE+]+/y;
    match.lastIndex = this.pos;
    const m = match.exec(this.text);
    if (!m) return this.fail('number expected');
    const n = parseLuaNumber(m[0]);
    if (n === undefined) this.fail(`invalid number ${m[0]}`);
    this.pos += m[0].length;
    return n;
  }

  private string(): string {
    this.pos++; // opening quote
    let out = '';
    for (;;) {
      const end = this.text.indexOf('"', this.pos);
      const esc = this.text.indexOf('\\', this.pos);
      if (end < 0) this.fail('unterminated string');
      if (esc < 0 || esc > end) {
        out += this.text.slice(this.pos, end);
        this.pos = end + 1;
        return out;
      }
      out += this.text.slice(this.pos, esc);
      this.pos = esc + 1;
      out += this.escape();
    }
  }

  private escape(): string {
    const c = this.text[this.pos];
    this.pos++;
    switch (c) {
      case '"':
        return '"';
      case '\\':
        return '\\';
      case '/':
        return '/';
      case 'b':
        return '\b';
      case 'f':
        return '\f';
      case 'n':
        return '\n';
      case 'r':
        return '\r';
      case 't':
        return '\t';
      case 'u': {
        const unit = this.hex4();
        if (unit >= 0xd800 && unit <= 0xdbff && this.text.startsWith('\\u', this.pos)) {
          const save = this.pos;
          this.pos += 2;
          const low = this.hex4();
          if (low >= 0xdc00 && low <= 0xdfff) return String.fromCharCode(unit, low);
          this.pos = save;
        }
        if (unit >= 0xd800 && unit <= 0xdfff) this.fail('invalid escape (lone surrogate)');
        return String.fromCharCode(unit);
      }
      case undefined:
        return this.fail('unterminated string');
      default:
        // util/json.lua leaves escapes it does not know as they are.
        return `\\${c}`;
    }
  }

  private hex4(): number {
    const digits = this.text.slice(this.pos, this.pos + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) this.fail('invalid escape');
    this.pos += 4;
    return parseInt(digits, 16);
  }

  private array(): LuaTable {
    const table = new LuaTable();
    for (const v of this.rawArray()) if (v !== null) table.array.push(v);
    table.jsonArray = true;
    return table;
  }

  /** An array with its nulls kept in place, which `__hash` needs to stay paired. */
  private rawArray(): (LuaValue | null)[] {
    this.pos++;
    const values: (LuaValue | null)[] = [];
    this.skipWhitespace();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return values;
    }
    for (;;) {
      values.push(this.value());
      this.skipWhitespace();
      const c = this.text[this.pos++];
      if (c === ']') return values;
      if (c !== ',') this.fail('array eof');
    }
  }

  private object(): LuaTable {
    this.pos++;
    const table = new LuaTable();
    let arrayPart: LuaValue | null | undefined;
    let hashPart: (LuaValue | null)[] | undefined;
    this.skipWhitespace();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return table;
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text[this.pos] !== '"') this.fail('key expected');
      const key = this.string();
      this.skipWhitespace();
      if (this.text[this.pos] !== ':') this.fail('colon expected');
      this.pos++;
      this.skipWhitespace();
      if (key === '__hash' && this.text[this.pos] === '[') {
        hashPart = this.rawArray();
      } else {
        const v = this.value();
        if (key === '__array') arrayPart = v;
        else if (key !== '__hash' && v !== null) table.hash.set(key, v);
      }
      this.skipWhitespace();
      const c = this.text[this.pos++];
      if (c === '}') break;
      if (c !== ',') this.fail('object eof');
    }
    // Same order as util/json.lua's _fixobject: the array part first, then the __hash pairs.
    if (arrayPart instanceof LuaTable) for (const v of arrayPart.array) table.set(table.array.length + 1, v);
    if (hashPart) {
      for (let i = 0; i + 1 < hashPart.length; i += 2) {
        const k = hashPart[i];
        const v = hashPart[i + 1];
        if (v === null || v === undefined) continue;
        if (typeof k === 'string' || typeof k === 'number' || typeof k === 'boolean' || k instanceof LuaFloat) table.set(k, v);
      }
    }
    return table;
  }
}
