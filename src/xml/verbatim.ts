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
import { APOS, COLON, EQUALS, GT, LT, QUOT, SLASH, skipXmlSpace } from './chars.js';

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
const RESERVED_NAMESPACES: ReadonlySet<string> = new Set([NS.xml, NS.xmlns]);

function isNameStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f;
}

function isNameChar(c: number): boolean {
  return isNameStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e;
}

const AMP = 0x26;
const CLOSE_BRACKET = 0x5d;

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
 * End of the character data starting at `at`: the index of the first `stop` (`<` in content, the
 * closing quote in an attribute value), or -1 when the data is outside the subset before it (or
 * `stop` never comes). Checks, in the same pass, that every character is an XML 1.0 Char, that
 * `&` only starts one of the five predefined entities, that an attribute value has no `<`, and
 * that nothing has `]]>`.
 */
function charDataEnd(xml: string, at: number, stop: number): number {
  const length = xml.length;
  for (let i = at; i < length; i++) {
    const c = xml.charCodeAt(i);
    if (c === stop) return i;
    if (c < 0x3f) {
      // Below `?`: controls, `&`, `<`, `>` (the only characters here needing a second look).
      if (c < 0x20) {
        if (c !== 0x09 && c !== 0x0a && c !== 0x0d) return -1;
      } else if (c === AMP) {
        const entity = entityAt(xml, i);
        if (entity === 0) return -1;
        i += entity - 1;
      } else if (c === LT) {
        return -1;
      } else if (c === GT) {
        if (i >= at + 2 && xml.charCodeAt(i - 1) === CLOSE_BRACKET && xml.charCodeAt(i - 2) === CLOSE_BRACKET) return -1;
      }
    } else if (c >= 0xd800) {
      if (c <= 0xdbff) {
        const next = xml.charCodeAt(i + 1);
        if (!(next >= 0xdc00 && next <= 0xdfff)) return -1;
        i++;
      } else if (c <= 0xdfff || c === 0xfffe || c === 0xffff) {
        return -1;
      }
    }
  }
  return -1;
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
 * unqualified root, as for {@link parseElement}. One pass over the text checks its markup and
 * its characters together.
 */
export function scanVerbatim(xml: string, defaultNs: string): VerbatimElement | undefined {
  if (xml.charCodeAt(0) !== LT) return undefined;
  let openCount = 0;
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
      i = charDataEnd(xml, valueStart, quote);
      if (i < 0) return undefined;
      if (attrLength === 5 && xml.startsWith('xmlns', attrStart)) {
        const value = xml.slice(valueStart, i);
        if (value.includes('&') || RESERVED_NAMESPACES.has(value)) return undefined;
        if (openCount === 0) rootXmlns = value;
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
      i = charDataEnd(xml, i, LT);
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
  return { name: xml.slice(1, rootNameEnd), xmlns: rootXmlns ?? defaultNs, declaresNamespace: rootXmlns !== undefined, depth };
}
