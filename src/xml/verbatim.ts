/**
 * Recognises stored element text that can be copied into a document as it is, so that exporting
 * a million archived messages does not parse and re-serialise each one.
 *
 * Only a strict subset of XML is accepted, the one Prosody's and ejabberd's serialisers write:
 * elements and attributes with ASCII names (no prefixes but `xml:`), quoted values, text, and the
 * five predefined entities. Anything else (comments, CDATA, character references, prefixes, a
 * DOCTYPE, duplicate attributes, characters XML cannot carry) answers undefined, and the caller
 * parses the text instead, which either accepts it or reports why not. So an accepted text is
 * always one well-formed element whose namespaces are all declared inside it.
 */
import { NS } from '../records/namespaces.js';
import { APOS, COLON, EQUALS, GT, LT, QUOT, SLASH, hasOnlyXmlChars, skipXmlSpace } from './chars.js';

export interface VerbatimElement {
  readonly name: string;
  /** The root element's namespace. */
  readonly xmlns: string;
  /** Whether the root declares its default namespace itself, so the text can go under any parent as it is. */
  readonly declaresNamespace: boolean;
  /** Deepest nesting of elements, the root counting as 1. */
  readonly depth: number;
}

/** Namespaces that may not be bound as a default namespace (Namespaces in XML 1.0, §3). */
const RESERVED_NAMESPACES: readonly string[] = [NS.xml, NS.xmlns];

/** Of the ASCII characters, those of the subset's names: bit 1 may start one, bit 2 may follow. */
const NAME_CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const start = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f;
  NAME_CLASS[c] = (start ? 1 : 0) | (start || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e ? 2 : 0);
}

function isNameStart(c: number): boolean {
  return c < 128 && ((NAME_CLASS[c] as number) & 1) !== 0;
}

function isNameChar(c: number): boolean {
  return c < 128 && ((NAME_CLASS[c] as number) & 2) !== 0;
}

/** Length of the predefined entity reference at `at` (its `&`), 0 if there is none. */
export function entityAt(xml: string, at: number): number {
  switch (xml.charCodeAt(at + 1)) {
    case 0x61: // a
      if (xml.startsWith('amp;', at + 1)) return 5;
      return xml.startsWith('apos;', at + 1) ? 6 : 0;
    case 0x6c: // l
      return xml.startsWith('lt;', at + 1) ? 4 : 0;
    case 0x67: // g
      return xml.startsWith('gt;', at + 1) ? 4 : 0;
    case 0x71: // q
      return xml.startsWith('quot;', at + 1) ? 6 : 0;
    default:
      return 0;
  }
}

/** End of the ASCII name (the subset's: letters, digits, `_`, `-`, `.`) starting at `at`, or -1. */
export function nameEnd(xml: string, at: number): number {
  if (!isNameStart(xml.charCodeAt(at))) return -1;
  let i = at + 1;
  while (isNameChar(xml.charCodeAt(i))) i++;
  return i;
}

/**
 * Whether every character of `xml` may stand in the subset's character data and attribute values:
 * an XML 1.0 Char, `&` only starting one of the five predefined entities, and no `]]>`. Markup
 * outside them is ASCII the scan checks itself, so the whole text is tested at once, by native
 * searches that run many times faster than a loop over its characters.
 */
function charsInSubset(xml: string): boolean {
  if (!hasOnlyXmlChars(xml) || xml.includes(']]>')) return false;
  for (let amp = xml.indexOf('&'); amp >= 0; amp = xml.indexOf('&', amp + 1)) if (entityAt(xml, amp) === 0) return false;
  return true;
}

/** Whether `xml` holds the same `length` characters at `a` and at `b`. */
export function sameText(xml: string, a: number, b: number, length: number): boolean {
  for (let k = 0; k < length; k++) if (xml.charCodeAt(a + k) !== xml.charCodeAt(b + k)) return false;
  return true;
}

// Reused from call to call (a scan calls out to nothing, so never re-enters): open elements as
// [start, end) pairs of their names, and the current tag's attribute names likewise, for the
// duplicate check.
const open: number[] = [];
const names: number[] = [];

/**
 * The element in `xml` if it is in the verbatim subset; `defaultNs` is the namespace of an
 * unqualified root, as for {@link parseElement}. Its characters are checked at once (see
 * {@link charsInSubset}), then its markup, going from one delimiter to the next by native search.
 */
export function scanVerbatim(xml: string, defaultNs: string): VerbatimElement | undefined {
  if (xml.charCodeAt(0) !== LT || !charsInSubset(xml)) return undefined;
  let openCount = 0;
  // The first `<` at or after the attribute value being read (-1: none), for the check that no
  // value has one; found again only once a value ends beyond it.
  let nextLt = 0;
  let rootXmlns: string | undefined;
  let rootNameEnd = -1;
  let depth = 0;
  let i = 0;
  for (;;) {
    // At the `<` of a start tag.
    const nameStart = i + 1;
    const tagNameEnd = nameEnd(xml, nameStart);
    if (tagNameEnd < 0) return undefined;
    if (rootNameEnd < 0) rootNameEnd = tagNameEnd;
    i = tagNameEnd;
    let nameCount = 0;
    let selfClosing = false;
    for (;;) {
      const spaceStart = i;
      i = skipXmlSpace(xml, i);
      const c = xml.charCodeAt(i);
      if (c === GT) {
        i++;
        break;
      }
      if (c === SLASH) {
        if (xml.charCodeAt(i + 1) !== GT) return undefined;
        i += 2;
        selfClosing = true;
        break;
      }
      if (i === spaceStart) return undefined;
      const attrStart = i;
      i = nameEnd(xml, i);
      if (i < 0) return undefined;
      if (xml.charCodeAt(i) === COLON) {
        // The only prefix allowed is `xml`, which is always bound.
        if (i - attrStart !== 3 || !xml.startsWith('xml', attrStart)) return undefined;
        i = nameEnd(xml, i + 1);
        if (i < 0) return undefined;
      }
      const attrEnd = i;
      const attrLength = attrEnd - attrStart;
      for (let k = 0; k < nameCount; k += 2) {
        const s = names[k] as number;
        if ((names[k + 1] as number) - s === attrLength && sameText(xml, s, attrStart, attrLength)) return undefined;
      }
      names[nameCount++] = attrStart;
      names[nameCount++] = attrEnd;
      i = skipXmlSpace(xml, i);
      if (xml.charCodeAt(i) !== EQUALS) return undefined;
      i++;
      i = skipXmlSpace(xml, i);
      const quote = xml.charCodeAt(i);
      if (quote !== APOS && quote !== QUOT) return undefined;
      const valueStart = ++i;
      i = xml.indexOf(quote === APOS ? "'" : '"', valueStart);
      if (i < 0) return undefined;
      if (nextLt >= 0 && nextLt < valueStart) nextLt = xml.indexOf('<', valueStart);
      if (nextLt >= 0 && nextLt < i) return undefined;
      if (attrLength === 5 && xml.startsWith('xmlns', attrStart)) {
        // Read in place: only the root's value is kept, so only it is sliced.
        const amp = xml.indexOf('&', valueStart);
        if ((amp >= 0 && amp < i) || isReserved(xml, valueStart, i)) return undefined;
        if (openCount === 0) rootXmlns = xml.slice(valueStart, i);
      }
      i++;
    }
    if (!selfClosing) {
      open[openCount++] = nameStart;
      open[openCount++] = tagNameEnd;
    }
    const level = openCount / 2 + (selfClosing ? 1 : 0);
    if (level > depth) depth = level;
    // In content: text runs and end tags until the next start tag, or the root's end.
    while (openCount > 0) {
      i = xml.indexOf('<', i);
      if (i < 0) return undefined;
      if (xml.charCodeAt(i + 1) !== SLASH) break;
      const closeStart = i + 2;
      const closeEnd = nameEnd(xml, closeStart);
      const openEnd = open[--openCount] as number;
      const openStart = open[--openCount] as number;
      if (closeEnd - closeStart !== openEnd - openStart || !sameText(xml, openStart, closeStart, closeEnd - closeStart)) return undefined;
      i = skipXmlSpace(xml, closeEnd);
      if (xml.charCodeAt(i) !== GT) return undefined;
      i++;
    }
    if (openCount === 0) break;
  }
  if (i !== xml.length) return undefined;
  return { name: rootName(xml, rootNameEnd), xmlns: rootXmlns ?? defaultNs, declaresNamespace: rootXmlns !== undefined, depth };
}

/** Whether `xml[start, end)` is one of {@link RESERVED_NAMESPACES}. */
function isReserved(xml: string, start: number, end: number): boolean {
  for (const ns of RESERVED_NAMESPACES) if (end - start === ns.length && xml.startsWith(ns, start)) return true;
  return false;
}

/** The last root name sliced: texts of one kind (archived messages) share it instead of each making its own. */
let lastRootName = '';

function rootName(xml: string, end: number): string {
  if (end - 1 !== lastRootName.length || !xml.startsWith(lastRootName, 1)) lastRootName = xml.slice(1, end);
  return lastRootName;
}
