/**
 * `.list` items encoded straight into bytes, for the archive stores of an import: the text
 * {@link serializeListItem} would give for `archiveItemToList(item)`, byte for byte, without the
 * Lua tables, the parsed stanza and the strings in between.
 *
 * Only a stanza kept as its stored text (see xml/stored-element.ts) takes this path: that text is
 * in the verbatim subset (ASCII names, no prefixes but `xml:`, the five predefined entities, no
 * comments, CDATA or character references), so a single scan of it gives the preserialized
 * table. Anything the scan does not expect (a carriage return or, in an attribute value, a tab
 * or line feed, which a parser would normalise; a lone surrogate; nesting past Prosody's table
 * depth; an attribute `stamp` on the stanza) makes {@link LuaBytes.listItem} write nothing and
 * answer false, and the caller takes the general path, which gives the same text or the error.
 */
import { NS, type XmlElement } from '../../records/model.js';
import { storedText, verbatimText } from '../../xml/xml.js';
import type { ArchiveItem } from '../prosody/archive.js';
import { isStanzaValue } from '../prosody/lua.js';
import { stampOf, stampDayPrefix } from './list-items.js';
import { MAX_TABLE_DEPTH, serializeLuaNumber } from './lua-serialize.js';

const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;
const EQUALS = 0x3d;
const AMP = 0x26;
const QUOT = 0x22;
const APOS = 0x27;
const BACKSLASH = 0x5c;
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const CLIENT_NS = NS.client;

/**
 * How {@link LuaBytes.luaString} reads its source: `PLAIN` a string as it is; `TEXT` XML
 * character data, whose entities are decoded and where a CR (which a parser rewrites) gives up;
 * `ATTRIBUTE` an XML attribute value, as text, where a TAB or LF (which a parser turns into
 * spaces) gives up too.
 */
const PLAIN = 0;
const TEXT = 1;
const ATTRIBUTE = 2;
type Source = typeof PLAIN | typeof TEXT | typeof ATTRIBUTE;

/** Lua's escapes by name (util/serialization.lua), 0 where a byte has none. */
const NAMED = new Uint8Array(128);
NAMED[0x07] = 0x61; // \a
NAMED[0x08] = 0x62; // \b
NAMED[0x0c] = 0x66; // \f
NAMED[LF] = 0x6e; // \n
NAMED[CR] = 0x72; // \r
NAMED[TAB] = 0x74; // \t
NAMED[0x0b] = 0x76; // \v
NAMED[BACKSLASH] = BACKSLASH;
NAMED[QUOT] = QUOT;
NAMED[APOS] = APOS;

/** 1 where an ASCII character is copied into a string literal as it is: printable, no quote or backslash. */
const COPIED_PLAIN = new Uint8Array(128);
for (let c = 0x20; c < 0x7f; c++) if (c !== QUOT && c !== APOS && c !== BACKSLASH) COPIED_PLAIN[c] = 1;
/** As {@link COPIED_PLAIN}, for XML text: `&` starts an entity. */
const COPIED_TEXT = COPIED_PLAIN.slice();
COPIED_TEXT[AMP] = 0;
/** Attribute values are read as text too (TAB, LF and CR are not copied either way). */
const COPIED_ATTRIBUTE = COPIED_TEXT;

function isNameChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x2d || c === 0x2e || c === 0x3a;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === LF || c === TAB || c === CR;
}

/** Thrown inside the scan to give up; never escapes {@link LuaBytes.listItem}. */
const GIVE_UP = new Error('not on the fast path');

/** A growing byte buffer that Lua source text is written into. */
export class LuaBytes {
  private buf: Buffer;
  length = 0;
  /** Attribute positions of each open element (name start, name end, value start, value end, ...), reused. */
  private readonly attrs: number[][] = [];

  constructor(initial = 1 << 20) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  /** The bytes written so far (a view, valid until the next write). */
  get bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }

  clear(): void {
    this.length = 0;
  }

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  /** Text known to be ASCII (Lua source from {@link serializeListItem}, numbers, fixed tokens). */
  ascii(text: string): void {
    const n = text.length;
    this.reserve(n);
    if (n > 32) {
      this.length += this.buf.write(text, this.length, 'latin1');
      return;
    }
    // Short tokens: a call into Buffer.write costs more than copying them.
    const buf = this.buf;
    let at = this.length;
    for (let i = 0; i < n; i++) buf[at++] = text.charCodeAt(i);
    this.length = at;
  }

  private tabs(n: number): void {
    this.reserve(n + 1);
    const buf = this.buf;
    let at = this.length;
    buf[at++] = LF;
    for (let i = 0; i < n; i++) buf[at++] = TAB;
    this.length = at;
  }

  /** A byte as Lua's three-digit decimal escape. */
  private decimal(b: number): void {
    const buf = this.buf;
    const at = this.length;
    buf[at] = BACKSLASH;
    buf[at + 1] = 48 + ((b / 100) | 0);
    buf[at + 2] = 48 + (((b / 10) | 0) % 10);
    buf[at + 3] = 48 + (b % 10);
    this.length = at + 4;
  }

  /** One character (a code point) of a string literal's content, as serializeLuaString escapes its UTF-8 bytes. */
  private char(c: number): void {
    const buf = this.buf;
    if (c < 0x80) {
      if (c >= 0x20 && c < 0x7f && c !== QUOT && c !== APOS && c !== BACKSLASH) {
        buf[this.length++] = c;
      } else if (c < 0x7f && NAMED[c] !== 0) {
        buf[this.length] = BACKSLASH;
        buf[this.length + 1] = NAMED[c] as number;
        this.length += 2;
      } else {
        this.decimal(c);
      }
    } else if (c < 0x800) {
      this.decimal(0xc0 | (c >> 6));
      this.decimal(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      this.decimal(0xe0 | (c >> 12));
      this.decimal(0x80 | ((c >> 6) & 0x3f));
      this.decimal(0x80 | (c & 0x3f));
    } else {
      this.decimal(0xf0 | (c >> 18));
      this.decimal(0x80 | ((c >> 12) & 0x3f));
      this.decimal(0x80 | ((c >> 6) & 0x3f));
      this.decimal(0x80 | (c & 0x3f));
    }
  }

  /** A non-negative safe integer in decimal, as `%d` writes it. */
  private integer(n: number): void {
    this.reserve(16);
    const buf = this.buf;
    let digits = 1;
    for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    let at = this.length + digits;
    this.length = at;
    let rest = n;
    do {
      const next = Math.floor(rest / 10);
      buf[--at] = 48 + (rest - next * 10);
      rest = next;
    } while (rest > 0);
  }

  /** Two decimal digits. */
  private twoDigits(n: number): void {
    const buf = this.buf;
    const tens = (n / 10) | 0;
    buf[this.length] = 48 + tens;
    buf[this.length + 1] = 48 + n - tens * 10;
    this.length += 2;
  }

  /** {@link stampOf}(when), its time of day written digit by digit. */
  private stamp(when: number): void {
    const whole = Math.floor(when);
    const prefix = when === whole ? stampDayPrefix(whole) : undefined;
    if (prefix === undefined) {
      this.ascii(stampOf(when));
      return;
    }
    this.ascii(prefix);
    this.reserve(9);
    let t = whole % 86_400;
    const hours = Math.floor(t / 3600);
    t -= hours * 3600;
    const minutes = Math.floor(t / 60);
    this.twoDigits(hours);
    this.buf[this.length++] = 0x3a;
    this.twoDigits(minutes);
    this.buf[this.length++] = 0x3a;
    this.twoDigits(t - minutes * 60);
    this.buf[this.length++] = 0x5a; // Z
  }

  /** `s[from, to)` as a Lua string literal, read as `source` says. */
  private luaString(s: string, from: number, to: number, source: Source): void {
    // At most 12 bytes per UTF-16 unit: a 3-byte sequence as three escapes (a pair gives 16 for 2).
    this.reserve(12 * (to - from) + 2);
    const buf = this.buf;
    let at = this.length;
    buf[at++] = QUOT;
    // Most characters are copied as they are: a tight loop for those, the rest one by one below.
    const special = source === PLAIN ? COPIED_PLAIN : source === TEXT ? COPIED_TEXT : COPIED_ATTRIBUTE;
    for (let i = from; i < to; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80 && special[c] === 1) {
        buf[at++] = c;
        continue;
      }
      this.length = at;
      if (source !== PLAIN) {
        if (c === AMP) {
          const semi = s.indexOf(';', i);
          if (semi < 0 || semi > to) throw GIVE_UP;
          c = entity(s, i + 1, semi);
          i = semi;
        } else if (c === CR || (source === ATTRIBUTE && (c === TAB || c === LF))) {
          throw GIVE_UP;
        }
      }
      if (c >= 0xd800 && c <= 0xdfff) {
        const low = s.charCodeAt(i + 1);
        if (c > 0xdbff || i + 1 >= to || !(low >= 0xdc00 && low <= 0xdfff)) throw GIVE_UP;
        c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
        i++;
      }
      this.char(c);
      at = this.length;
    }
    buf[at++] = QUOT;
    this.length = at;
  }

  /**
   * Appends `item(...)` for an archive item as archiveItemToList and serializeListItem would
   * write it, and answers true; or writes nothing and answers false (see the module comment).
   */
  listItem(item: ArchiveItem, keepEmptyWith: boolean): boolean {
    const value = item.value;
    if (!isStanzaValue(value) || !Number.isFinite(item.when) || item.when < 0) return false;
    // The text without the root's namespace declaration where the element has it so (the root's
    // attributes and namespace are read from the element, not from its text): it is the string the
    // reader made, where the verbatim one would be a concatenation copied once more to be scanned.
    const xml = storedText(value, value.xmlns) ?? verbatimText(value);
    if (xml === undefined) return false;
    const start = this.length;
    try {
      this.ascii('item(');
      const end = this.element(xml, 0, 1, CLIENT_NS, false, { el: value, item, keepEmptyWith });
      if (end !== xml.length) throw GIVE_UP;
      this.ascii(');\n');
      return true;
    } catch (err) {
      this.length = start;
      if (err === GIVE_UP) return false;
      throw err;
    }
  }

  /**
   * The element whose `<` is at `at`, as the table `st.preserialize` makes of it, at table depth
   * `depth` (toPreserialized: `xmlns` in `attr` once the element or an ancestor is outside
   * `jabber:client`). Returns the index after its end tag. For the root, its attributes are the
   * element's own (as the general path reads them) and the item's fields follow.
   */
  private element(xml: string, at: number, depth: number, parentNs: string, belowForeign: boolean, root?: RootFields): number {
    if (depth + 1 > MAX_TABLE_DEPTH) throw GIVE_UP;
    const nameStart = at + 1;
    let i = nameStart;
    while (isNameChar(xml.charCodeAt(i))) i++;
    const nameEnd = i;
    if (nameEnd === nameStart) throw GIVE_UP;
    const attrs = (this.attrs[depth] ??= []);
    attrs.length = 0;
    let ns = parentNs;
    let selfClosing = false;
    for (;;) {
      while (isSpace(xml.charCodeAt(i))) i++;
      const c = xml.charCodeAt(i);
      if (c === GT) {
        i++;
        break;
      }
      if (c === SLASH) {
        if (xml.charCodeAt(i + 1) !== GT) throw GIVE_UP;
        i += 2;
        selfClosing = true;
        break;
      }
      const attrStart = i;
      while (isNameChar(xml.charCodeAt(i))) i++;
      const attrEnd = i;
      if (attrEnd === attrStart) throw GIVE_UP;
      while (isSpace(xml.charCodeAt(i))) i++;
      if (xml.charCodeAt(i) !== EQUALS) throw GIVE_UP;
      i++;
      while (isSpace(xml.charCodeAt(i))) i++;
      const quote = xml.charCodeAt(i);
      if (quote !== APOS && quote !== QUOT) throw GIVE_UP;
      const valueStart = i + 1;
      const valueEnd = xml.indexOf(quote === APOS ? "'" : '"', valueStart);
      if (valueEnd < 0) throw GIVE_UP;
      i = valueEnd + 1;
      if (attrEnd - attrStart === 5 && xml.startsWith('xmlns', attrStart)) {
        // The verbatim subset has no entity in a namespace name.
        ns = valueEnd - valueStart === CLIENT_NS.length && xml.startsWith(CLIENT_NS, valueStart) ? CLIENT_NS : xml.slice(valueStart, valueEnd);
        continue;
      }
      if (!root) attrs.push(attrStart, attrEnd, valueStart, valueEnd);
    }
    if (root) ns = root.el.xmlns;
    const foreign = belowForeign || ns !== CLIENT_NS;
    this.ascii('{');
    if (!selfClosing) {
      for (;;) {
        const lt = xml.indexOf('<', i);
        if (lt < 0) throw GIVE_UP;
        if (lt > i) {
          this.tabs(depth);
          this.luaString(xml, i, lt, TEXT);
          this.ascii(';');
        }
        if (xml.charCodeAt(lt + 1) === SLASH) {
          i = lt + 2;
          for (let k = nameStart; k < nameEnd; k++, i++) if (xml.charCodeAt(i) !== xml.charCodeAt(k)) throw GIVE_UP;
          while (isSpace(xml.charCodeAt(i))) i++;
          if (xml.charCodeAt(i) !== GT) throw GIVE_UP;
          i++;
          break;
        }
        this.tabs(depth);
        i = this.element(xml, lt, depth + 1, ns, foreign);
        this.ascii(';');
      }
    }
    this.tabs(depth);
    this.ascii('["attr"] = ');
    const own = this.attrs[depth] as number[];
    if (root) {
      this.rootAttrs(root, depth + 1, foreign);
    } else if (own.length === 0 && !foreign) {
      this.ascii('{}');
    } else {
      this.ascii('{');
      for (let k = 0; k < own.length; k += 4) {
        this.tabs(depth + 1);
        this.ascii('[');
        this.luaString(xml, own[k] as number, own[k + 1] as number, PLAIN);
        this.ascii('] = ');
        this.luaString(xml, own[k + 2] as number, own[k + 3] as number, ATTRIBUTE);
        this.ascii(';');
      }
      if (foreign) this.xmlnsEntry(ns, depth + 1);
      this.tabs(depth);
      this.ascii('}');
    }
    this.ascii(';');
    this.tabs(depth);
    this.ascii('["name"] = ');
    this.luaString(xml, nameStart, nameEnd, PLAIN);
    this.ascii(';');
    if (root) this.rootFields(root, depth);
    this.tabs(depth - 1);
    this.ascii('}');
    return i;
  }

  private xmlnsEntry(ns: string, depth: number): void {
    this.tabs(depth);
    this.ascii('["xmlns"] = ');
    this.luaString(ns, 0, ns.length, PLAIN);
    this.ascii(';');
  }

  /** The stanza's `attr` with archiveItemToList's `stamp` added, at table depth `depth`. */
  private rootAttrs(root: RootFields, depth: number, foreign: boolean): void {
    this.ascii('{');
    for (const key in root.el.attrs) {
      // Namespaced attributes are renamed by the general path; a `stamp` of its own would be replaced in place.
      if (key.charCodeAt(0) === 0x7b || key === 'stamp' || key === 'xmlns') throw GIVE_UP;
      const value = root.el.attrs[key] as string;
      this.tabs(depth);
      this.ascii('[');
      this.luaString(key, 0, key.length, PLAIN);
      this.ascii('] = ');
      this.luaString(value, 0, value.length, PLAIN);
      this.ascii(';');
    }
    if (foreign) this.xmlnsEntry(root.el.xmlns, depth);
    this.tabs(depth);
    this.ascii('["stamp"] = "');
    this.stamp(root.item.when);
    this.ascii('";');
    this.tabs(depth - 1);
    this.ascii('}');
  }

  /** `key`, `when` and `with` on the stanza table itself. */
  private rootFields(root: RootFields, depth: number): void {
    const { item } = root;
    this.tabs(depth);
    this.ascii('["key"] = ');
    this.luaString(item.key, 0, item.key.length, PLAIN);
    this.ascii(';');
    this.tabs(depth);
    this.ascii('["when"] = ');
    const when = item.when;
    if (Number.isSafeInteger(when) && when >= 0) this.integer(when);
    else this.ascii(serializeLuaNumber(when));
    this.ascii(';');
    if (item.with !== '' || root.keepEmptyWith) {
      this.tabs(depth);
      this.ascii('["with"] = ');
      this.luaString(item.with, 0, item.with.length, PLAIN);
      this.ascii(';');
    }
  }
}

interface RootFields {
  readonly el: XmlElement;
  readonly item: ArchiveItem;
  readonly keepEmptyWith: boolean;
}

/** The character a predefined entity `&name;` (name at `[from, to)`) stands for. */
function entity(s: string, from: number, to: number): number {
  switch (to - from) {
    case 2:
      if (s.startsWith('lt', from)) return LT;
      if (s.startsWith('gt', from)) return GT;
      break;
    case 3:
      if (s.startsWith('amp', from)) return AMP;
      break;
    case 4:
      if (s.startsWith('apos', from)) return APOS;
      if (s.startsWith('quot', from)) return QUOT;
      break;
  }
  throw GIVE_UP;
}
