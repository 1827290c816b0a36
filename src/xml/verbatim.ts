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
const RESERVED_NAMESPACES: ReadonlySet<string> = new Set([NS.xml, NS.xmlns]);

function isNameStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f;
}

function isNameChar(c: number): boolean {
  return isNameStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e;
}

const ENTITIES = ['&amp;', '&lt;', '&gt;', '&apos;', '&quot;'];

/** Length of the predefined entity reference at `at`, 0 if there is none. */
function entityAt(xml: string, at: number): number {
  for (const entity of ENTITIES) if (xml.startsWith(entity, at)) return entity.length;
  return 0;
}

/** End of the ASCII name starting at `at`, or -1. */
function nameEnd(xml: string, at: number): number {
  if (!isNameStart(xml.charCodeAt(at))) return -1;
  let i = at + 1;
  while (isNameChar(xml.charCodeAt(i))) i++;
  return i;
}

function sameText(xml: string, a: number, b: number, length: number): boolean {
  for (let k = 0; k < length; k++) if (xml.charCodeAt(a + k) !== xml.charCodeAt(b + k)) return false;
  return true;
}

/**
 * The element in `xml` if it is in the verbatim subset; `defaultNs` is the namespace of an
 * unqualified root, as for {@link parseElement}. `charsChecked` says the caller has already found
 * every character to be one XML can carry.
 */
export function scanVerbatim(xml: string, defaultNs: string, charsChecked = false): VerbatimElement | undefined {
  if (!(charsChecked || hasOnlyXmlChars(xml)) || xml.includes(']]>')) return undefined;
  // Open elements as [start, end) pairs of their names.
  const open: number[] = [];
  // The current tag's attribute names, as [start, end) pairs, for the duplicate check.
  const names: number[] = [];
  let rootXmlns: string | undefined;
  let rootNameEnd = -1;
  let depth = 0;
  let i = 0;
  let nextAmp = xml.indexOf('&');
  let nextLt = 0;
  if (xml.charCodeAt(0) !== LT) return undefined;
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
      // An entity has no quote in it, so the value ends at the next quote character.
      i = xml.indexOf(quote === APOS ? "'" : '"', i);
      if (i < 0) return undefined;
      if (nextLt < valueStart) nextLt = xml.indexOf('<', valueStart);
      if (nextLt >= 0 && nextLt < i) return undefined;
      if (nextAmp >= 0 && nextAmp < valueStart) nextAmp = xml.indexOf('&', valueStart);
      while (nextAmp >= 0 && nextAmp < i) {
        if (entityAt(xml, nextAmp) === 0) return undefined;
        nextAmp = xml.indexOf('&', nextAmp + 1);
      }
      if (attrLength === 5 && xml.startsWith('xmlns', attrStart)) {
        const value = xml.slice(valueStart, i);
        if (value.includes('&') || RESERVED_NAMESPACES.has(value)) return undefined;
        if (open.length === 0) rootXmlns = value;
      }
      i++;
    }
    if (!selfClosing) open.push(nameStart, tagNameEnd);
    depth = Math.max(depth, open.length / 2 + (selfClosing ? 1 : 0));
    // In content: text runs and end tags until the next start tag, or the root's end.
    while (open.length > 0) {
      const lt = xml.indexOf('<', i);
      if (lt < 0) return undefined;
      // `nextAmp` and `nextLt` only move forward, so the text is searched for each once in all.
      if (nextAmp >= 0 && nextAmp < i) nextAmp = xml.indexOf('&', i);
      while (nextAmp >= 0 && nextAmp < lt) {
        if (entityAt(xml, nextAmp) === 0) return undefined;
        nextAmp = xml.indexOf('&', nextAmp + 1);
      }
      i = lt;
      if (xml.charCodeAt(i + 1) !== SLASH) break;
      const closeStart = i + 2;
      const closeEnd = nameEnd(xml, closeStart);
      const openEnd = open.pop() as number;
      const openStart = open.pop() as number;
      if (closeEnd - closeStart !== openEnd - openStart || !sameText(xml, openStart, closeStart, closeEnd - closeStart)) return undefined;
      i = closeEnd;
      i = skipXmlSpace(xml, i);
      if (xml.charCodeAt(i) !== GT) return undefined;
      i++;
    }
    if (open.length === 0) break;
  }
  if (i !== xml.length) return undefined;
  return { name: xml.slice(1, rootNameEnd), xmlns: rootXmlns ?? defaultNs, declaresNamespace: rootXmlns !== undefined, depth };
}
