/**
 * A parser for the Lua that Prosody's internal storage writes, and nothing more: no Lua is run.
 *
 * Accepted: `.dat` files (`return <value>;`) and `.list` files (`item(<value>);` repeated), where
 * a value is a table constructor (`[key] = v`, `name = v`, positional values, `,` or `;`), a
 * string in either quote with every Lua 5.4 escape, a numeral (decimal or hex, integer or float,
 * with unary minus), `(1/0)`/`(-1/0)`/`(0/0)` (how util/serialization.lua writes infinities and
 * NaN), `true`, `false` or `nil`. `--` line comments and whitespace are skipped. Anything else
 * (names, calls other than `item`, operators, `math.huge`) is an error: Prosody loads these files
 * in an empty environment, so it could not read them either.
 *
 * Input is read as bytes ("latin1" strings: one char per byte). A Lua string is a byte string;
 * its bytes are decoded as UTF-8 and invalid UTF-8 is an error rather than a lossy conversion, so
 * nothing read here can be written back altered. Prosody's own files always hold UTF-8 text
 * (stanzas, JIDs, UUID salts).
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { LuaFloat, LuaTable, type LuaKey, type LuaValue } from '../prosody/lua.js';
import { MAX_TABLE_DEPTH } from './lua-serialize.js';

export class LuaParseError extends Error {
  constructor(
    message: string,
    /** 1-based line of the problem in the parsed text (for `.list` files: in the file). */
    readonly line: number,
  ) {
    super(`${message} (line ${line})`);
    this.name = 'LuaParseError';
  }
}

export interface LuaParseLimits {
  /** Deepest table nesting accepted. Default 127, the most util/serialization.lua writes. */
  readonly maxDepth?: number;
  /** Largest text accepted: a whole `.dat` file, or one `.list` item. Default 64 MiB. */
  readonly maxBytes?: number;
}

export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

const KEYWORDS = new Set([
  'and', 'break', 'do', 'else', 'elseif', 'end', 'false', 'for', 'function', 'goto', 'if', 'in',
  'local', 'nil', 'not', 'or', 'repeat', 'return', 'then', 'true', 'until', 'while',
]);

/** `\a \b \f \n \r \t \v \\ \" \'` → the byte. */
const SIMPLE_ESCAPES: Readonly<Record<number, number>> = {
  0x61: 7, 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9, 0x76: 11, 0x5c: 0x5c, 0x22: 0x22, 0x27: 0x27,
};

const utf8 = new TextDecoder('utf-8', { fatal: true });

function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isHexDigit(c: number): boolean {
  return isDigit(c) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
}
function isNameStart(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
}
function isNameChar(c: number): boolean {
  return isNameStart(c) || isDigit(c);
}

/** `nil` in a position where Lua allows it (a table value, the returned value). */
const NIL = Symbol('nil');
type Parsed = LuaValue | typeof NIL;

class Parser {
  pos = 0;
  private readonly maxDepth: number;

  constructor(
    private readonly src: string,
    limits: LuaParseLimits,
    /** Line number of the first line of `src` within its file. */
    private readonly firstLine = 1,
  ) {
    this.maxDepth = limits.maxDepth ?? MAX_TABLE_DEPTH;
    const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES;
    if (src.length > maxBytes) throw new LuaParseError(`more than ${maxBytes} bytes`, firstLine);
  }

  fail(message: string, at = this.pos): never {
    let line = this.firstLine;
    for (let i = 0; i < at && i < this.src.length; i++) if (this.src.charCodeAt(i) === 0x0a) line++;
    throw new LuaParseError(message, line);
  }

  get done(): boolean {
    this.skipSpace();
    return this.pos >= this.src.length;
  }

  skipSpace(): void {
    const src = this.src;
    for (;;) {
      while (this.pos < src.length && isSpace(src.charCodeAt(this.pos))) this.pos++;
      if (src.startsWith('--', this.pos)) {
        if (src.startsWith('--[', this.pos) && /^--\[=*\[/.test(src.slice(this.pos, this.pos + 64))) this.fail('long comments are not supported');
        const nl = src.indexOf('\n', this.pos);
        this.pos = nl < 0 ? src.length : nl + 1;
        continue;
      }
      return;
    }
  }

  peek(): number {
    this.skipSpace();
    return this.pos < this.src.length ? this.src.charCodeAt(this.pos) : -1;
  }

  expect(token: string): void {
    this.skipSpace();
    if (!this.src.startsWith(token, this.pos)) this.fail(`expected ${JSON.stringify(token)}`);
    this.pos += token.length;
  }

  accept(token: string): boolean {
    this.skipSpace();
    if (!this.src.startsWith(token, this.pos)) return false;
    this.pos += token.length;
    return true;
  }

  name(): string | undefined {
    this.skipSpace();
    const start = this.pos;
    if (!isNameStart(this.src.charCodeAt(start))) return undefined;
    let end = start + 1;
    while (end < this.src.length && isNameChar(this.src.charCodeAt(end))) end++;
    this.pos = end;
    return this.src.slice(start, end);
  }

  value(depth: number): Parsed {
    const c = this.peek();
    if (c === 0x7b) return this.table(depth + 1);
    if (c === 0x22 || c === 0x27) return this.string();
    if (c === 0x28) return this.division();
    if (c === 0x2d || c === 0x2e || isDigit(c)) return this.number();
    const start = this.pos;
    const word = this.name();
    if (word === 'true') return true;
    if (word === 'false') return false;
    if (word === 'nil') return NIL;
    return this.fail(word === undefined ? 'expected a value' : `unexpected name ${JSON.stringify(word)}`, start);
  }

  private table(depth: number): LuaTable {
    if (depth > this.maxDepth) this.fail(`tables nested deeper than ${this.maxDepth}`);
    this.expect('{');
    const table = new LuaTable();
    const positional: Parsed[] = [];
    for (;;) {
      const c = this.peek();
      if (c === 0x7d) break;
      if (c === 0x5b && this.src.charCodeAt(this.pos + 1) !== 0x5b && this.src.charCodeAt(this.pos + 1) !== 0x3d) {
        this.pos++;
        const keyAt = this.pos;
        const key = this.value(depth);
        this.expect(']');
        this.expect('=');
        const v = this.value(depth);
        table.set(this.key(key, keyAt), v === NIL ? undefined : v);
      } else if (isNameStart(c)) {
        const save = this.pos;
        const word = this.name() as string;
        if (!KEYWORDS.has(word) && this.accept('=')) {
          if (this.src.charCodeAt(this.pos) === 0x3d) this.fail('unexpected "=="');
          const v = this.value(depth);
          table.set(word, v === NIL ? undefined : v);
        } else {
          this.pos = save;
          positional.push(this.value(depth));
        }
      } else {
        positional.push(this.value(depth));
      }
      if (!this.accept(';') && !this.accept(',')) break;
    }
    this.expect('}');
    // Positional fields take keys 1..n and, as Lua's SETLIST runs after the keyed stores, win.
    positional.forEach((v, i) => table.set(i + 1, v === NIL ? undefined : v));
    return table;
  }

  private key(key: Parsed, at: number): LuaKey {
    if (key === NIL) this.fail('table index is nil', at);
    if (typeof key === 'string' || typeof key === 'boolean' || typeof key === 'number') {
      if (typeof key === 'number' && Number.isNaN(key)) this.fail('table index is NaN', at);
      return key;
    }
    if (key instanceof LuaFloat) {
      if (Number.isNaN(key.value)) this.fail('table index is NaN', at);
      return key;
    }
    return this.fail('tables as keys are not supported', at);
  }

  /** `(1/0)`, `(-1/0)`, `(0/0)` and any other quotient of two numerals, a float in Lua. */
  private division(): LuaFloat {
    this.expect('(');
    const a = this.number();
    this.expect('/');
    const b = this.number();
    this.expect(')');
    return new LuaFloat(numeric(a) / numeric(b));
  }

  private number(): number | LuaFloat {
    this.skipSpace();
    const start = this.pos;
    let negative = false;
    if (this.src.charCodeAt(this.pos) === 0x2d) {
      negative = true;
      this.pos++;
      this.skipSpace();
      if (this.src.charCodeAt(this.pos) === 0x2d) this.fail('unexpected "-"');
    }
    const numStart = this.pos;
    const src = this.src;
    let isFloat = false;
    let value: number | LuaFloat;
    if (src.charCodeAt(this.pos) === 0x30 && (src.charCodeAt(this.pos + 1) | 0x20) === 0x78) {
      this.pos += 2;
      const digitsAt = this.pos;
      while (isHexDigit(src.charCodeAt(this.pos))) this.pos++;
      let mantissa = src.slice(digitsAt, this.pos);
      let fractionDigits = 0;
      if (src.charCodeAt(this.pos) === 0x2e) {
        isFloat = true;
        this.pos++;
        const fracAt = this.pos;
        while (isHexDigit(src.charCodeAt(this.pos))) this.pos++;
        fractionDigits = this.pos - fracAt;
        mantissa += src.slice(fracAt, this.pos);
      }
      let binaryExp = 0;
      if ((src.charCodeAt(this.pos) | 0x20) === 0x70) {
        isFloat = true;
        binaryExp = this.exponent();
      }
      if (mantissa === '') this.fail('malformed number', start);
      if (isFloat) {
        value = new LuaFloat(Number(BigInt(`0x${mantissa}`)) * 2 ** (binaryExp - 4 * fractionDigits));
      } else {
        // Hex integers wrap around modulo 2^64 in Lua.
        value = this.integer(BigInt.asIntN(64, BigInt(`0x${mantissa}`)), start);
      }
    } else {
      while (isDigit(src.charCodeAt(this.pos))) this.pos++;
      if (src.charCodeAt(this.pos) === 0x2e) {
        isFloat = true;
        this.pos++;
        while (isDigit(src.charCodeAt(this.pos))) this.pos++;
      }
      const text = src.slice(numStart, this.pos);
      if (text === '' || text === '.') this.fail('malformed number', start);
      if ((src.charCodeAt(this.pos) | 0x20) === 0x65) {
        isFloat = true;
        this.exponent();
      }
      const literal = src.slice(numStart, this.pos);
      if (isFloat) {
        value = new LuaFloat(Number(literal));
      } else {
        const big = BigInt(literal);
        // A decimal integer numeral that does not fit 64 bits is a float in Lua.
        value = big < 2n ** 63n ? this.integer(big, start) : new LuaFloat(Number(literal));
      }
    }
    if (isNameChar(src.charCodeAt(this.pos)) || src.charCodeAt(this.pos) === 0x2e) this.fail('malformed number', start);
    if (!negative) return value;
    if (value instanceof LuaFloat) return new LuaFloat(-value.value);
    // Lua negates integer 0 to integer 0 (no -0 among integers).
    return value === 0 ? 0 : -value;
  }

  private integer(big: bigint, at: number): number {
    const n = Number(big);
    // Past 2^53 only some integers are doubles; the others would come back as a different number.
    if (BigInt(n) !== big) this.fail('integer beyond ±2^53 that a double cannot hold exactly', at);
    return n;
  }

  private exponent(): number {
    this.pos++;
    const at = this.pos;
    if (this.src.charCodeAt(this.pos) === 0x2b || this.src.charCodeAt(this.pos) === 0x2d) this.pos++;
    const digitsAt = this.pos;
    while (isDigit(this.src.charCodeAt(this.pos))) this.pos++;
    if (this.pos === digitsAt) this.fail('malformed number');
    return Number(this.src.slice(at, this.pos));
  }

  string(): string {
    this.skipSpace();
    const src = this.src;
    const quote = src.charCodeAt(this.pos);
    const start = this.pos;
    this.pos++;
    const bytes: number[] = [];
    let runStart = this.pos;
    let ascii = true;
    const flushRun = (end: number): void => {
      for (let i = runStart; i < end; i++) bytes.push(src.charCodeAt(i));
    };
    for (;;) {
      if (this.pos >= src.length) this.fail('unfinished string', start);
      const c = src.charCodeAt(this.pos);
      if (c === quote) break;
      if (c === 0x0a || c === 0x0d) this.fail('unfinished string', start);
      if (c >= 0x80) ascii = false;
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      flushRun(this.pos);
      ascii = false;
      this.escape(bytes);
      runStart = this.pos;
    }
    const end = this.pos;
    this.pos++;
    if (ascii) return src.slice(start + 1, end);
    flushRun(end);
    try {
      return utf8.decode(Uint8Array.from(bytes));
    } catch {
      return this.fail('string is not valid UTF-8', start);
    }
  }

  private escape(bytes: number[]): void {
    const src = this.src;
    const at = this.pos;
    this.pos++;
    const c = src.charCodeAt(this.pos);
    const simple = SIMPLE_ESCAPES[c];
    if (simple !== undefined) {
      bytes.push(simple);
      this.pos++;
      return;
    }
    if (c === 0x0a || c === 0x0d) {
      // A backslash before a line break keeps one newline; \r\n and \n\r count as one break.
      const next = src.charCodeAt(this.pos + 1);
      this.pos += (next === 0x0a || next === 0x0d) && next !== c ? 2 : 1;
      bytes.push(0x0a);
      return;
    }
    if (c === 0x7a) {
      this.pos++;
      while (this.pos < src.length && isSpace(src.charCodeAt(this.pos))) this.pos++;
      return;
    }
    if (c === 0x78) {
      const hex = src.slice(this.pos + 1, this.pos + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) this.fail('hexadecimal digit expected', at);
      bytes.push(parseInt(hex, 16));
      this.pos += 3;
      return;
    }
    if (isDigit(c)) {
      let n = 0;
      let i = 0;
      while (i < 3 && isDigit(src.charCodeAt(this.pos))) {
        n = n * 10 + (src.charCodeAt(this.pos) - 0x30);
        this.pos++;
        i++;
      }
      if (n > 255) this.fail('decimal escape too large', at);
      bytes.push(n);
      return;
    }
    if (c === 0x75) {
      const m = /^u\{([0-9a-fA-F]+)\}/.exec(src.slice(this.pos, this.pos + 16));
      if (!m) this.fail('malformed \\u{XXX} escape', at);
      const code = parseInt(m[1] as string, 16);
      if (code > 0x7fffffff) this.fail('UTF-8 value too large', at);
      bytes.push(...luaUtf8Escape(code));
      this.pos += m[0].length;
      return;
    }
    this.fail('invalid escape sequence', at);
  }
}

function numeric(value: number | LuaFloat): number {
  return value instanceof LuaFloat ? value.value : value;
}

/** Lua's `luaO_utf8esc`: up to six bytes, so surrogates and values past U+10FFFF encode too. */
function luaUtf8Escape(code: number): number[] {
  if (code < 0x80) return [code];
  const out: number[] = [];
  let mfb = 0x3f;
  let x = code;
  do {
    out.unshift(0x80 | (x & 0x3f));
    x = Math.floor(x / 64);
    mfb >>= 1;
  } while (x > mfb);
  out.unshift(((~mfb << 1) & 0xff) | x);
  return out;
}

function asText(input: string | Buffer): string {
  return typeof input === 'string' ? input : input.toString('latin1');
}

/** One value, e.g. the text util/serialization.lua `serialize` returned. */
export function parseLuaValue(input: string | Buffer, limits: LuaParseLimits = {}): LuaValue | undefined {
  const parser = new Parser(asText(input), limits);
  const value = parser.value(0);
  if (!parser.done) parser.fail('unexpected text after the value');
  return value === NIL ? undefined : value;
}

/** A `.dat` file (`return <value>;`); undefined for `return nil`. */
export function parseDatFile(input: string | Buffer, limits: LuaParseLimits = {}): LuaValue | undefined {
  const parser = new Parser(asText(input), limits);
  // An empty chunk returns nothing: Prosody loads it as no data.
  if (parser.done) return undefined;
  const word = parser.name();
  if (word !== 'return') parser.fail('expected "return"');
  const value = parser.value(0);
  parser.accept(';');
  if (!parser.done) parser.fail('unexpected text after the returned value');
  return value === NIL ? undefined : value;
}

/** Every `item(<value>);` statement in `text` (in order); `item(nil)` yields nothing, as in Lua. */
function parseItems(parser: Parser, out: LuaValue[]): void {
  while (!parser.done) {
    const at = parser.pos;
    const word = parser.name();
    if (word !== 'item') parser.fail(`expected "item(", found ${word === undefined ? 'something else' : JSON.stringify(word)}`, at);
    parser.expect('(');
    const value = parser.value(0);
    parser.expect(')');
    parser.accept(';');
    if (value !== NIL) out.push(value);
  }
}

/** A whole `.list` text. For files, {@link readListFile} streams instead. */
export function parseListItems(input: string | Buffer, limits: LuaParseLimits = {}): LuaValue[] {
  const out: LuaValue[] = [];
  parseItems(new Parser(asText(input), limits), out);
  return out;
}

/**
 * Tracks, line by line, whether the text so far ends between statements: outside strings and
 * comments, with every bracket closed. Strings only continue onto the next line after `\`
 * (a line break escape) or `\z`.
 */
class StatementScanner {
  private depth = 0;
  private quote = 0;
  /** Inside a string after `\z`: skipping whitespace, line breaks included. */
  private skippingSpace = false;

  /** Feeds one line (without its terminator); true when a statement boundary follows it. */
  line(text: string): boolean {
    let i = 0;
    let escapedBreak = false;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (this.quote !== 0) {
        if (this.skippingSpace) {
          if (isSpace(c)) {
            i++;
            continue;
          }
          this.skippingSpace = false;
        }
        if (c === 0x5c) {
          if (i + 1 >= text.length) {
            escapedBreak = true;
            i++;
            continue;
          }
          if (text.charCodeAt(i + 1) === 0x7a) this.skippingSpace = true;
          i += 2;
          continue;
        }
        if (c === this.quote) this.quote = 0;
        i++;
        continue;
      }
      if (c === 0x22 || c === 0x27) this.quote = c;
      else if (c === 0x2d && text.charCodeAt(i + 1) === 0x2d) break;
      else if (c === 0x7b || c === 0x28 || c === 0x5b) this.depth++;
      else if (c === 0x7d || c === 0x29 || c === 0x5d) this.depth--;
      i++;
    }
    // A string still open here is an error unless the line ended in an escape or \z skipping;
    // the parser reports it, so end the statement and let it.
    if (this.quote !== 0 && !escapedBreak && !this.skippingSpace) {
      this.quote = 0;
      return true;
    }
    return this.quote === 0 && this.depth <= 0;
  }
}

export interface ListReadOptions extends LuaParseLimits {
  readonly signal?: AbortSignal;
}

/**
 * The items of a `.list` file, streamed: the file is read line by line and each item parsed as
 * soon as its statement is complete, so memory holds one item at a time (bounded by maxBytes).
 */
export async function* readListFile(path: string, options: ListReadOptions = {}): AsyncGenerator<LuaValue> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  // latin1: one char per byte, so the parser sees the bytes and decodes strings itself.
  const input = createReadStream(path, { encoding: 'latin1' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  const scanner = new StatementScanner();
  let pending: string[] = [];
  let pendingBytes = 0;
  let firstLine = 1;
  let lineNo = 0;
  try {
    for await (const line of lines) {
      lineNo++;
      options.signal?.throwIfAborted();
      if (pending.length === 0) firstLine = lineNo;
      pending.push(line);
      pendingBytes += line.length + 1;
      if (pendingBytes > maxBytes) throw new LuaParseError(`an item of more than ${maxBytes} bytes`, firstLine);
      if (!scanner.line(line)) continue;
      const items: LuaValue[] = [];
      parseItems(new Parser(pending.join('\n'), { ...options, maxBytes: Infinity }, firstLine), items);
      pending = [];
      pendingBytes = 0;
      yield* items;
    }
    if (pending.some((l) => l.trim() !== '')) {
      const items: LuaValue[] = [];
      parseItems(new Parser(pending.join('\n'), { ...options, maxBytes: Infinity }, firstLine), items);
      yield* items;
    }
  } finally {
    lines.close();
    input.destroy();
  }
}
