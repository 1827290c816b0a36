/**
 * The verbatim subset (verbatim.ts) read over a range of a larger text, collecting the root's
 * attributes as it goes: the reader's fast path for archived items (xep0227/read/archive-item.ts)
 * checks and reads each item in one pass. It accepts exactly what scanVerbatim accepts over the
 * same text; the caller checks the characters and `]]>` for the whole range first.
 */
import { NS } from '../records/namespaces.js';
import { APOS, COLON, EQUALS, GT, QUOT, SLASH, skipXmlSpace } from './chars.js';
import { entityAt, nameEnd, sameText } from './verbatim.js';

/** Whether `xml[from, to)` is `text`. */
export function textIs(xml: string, from: number, to: number, text: string): boolean {
  return to - from === text.length && xml.startsWith(text, from);
}

/** Whether the namespace value `xml[from, to)` may not be bound as a default namespace (Namespaces in XML 1.0, §3). */
function reservedNamespace(xml: string, from: number, to: number): boolean {
  return textIs(xml, from, to, NS.xml) || textIs(xml, from, to, NS.xmlns);
}

const ENTITY = /&(amp|lt|gt|apos|quot);/g;
const ENTITY_TEXT: Record<string, string> = { amp: '&', lt: '<', gt: '>', apos: "'", quot: '"' };

/** Attribute names met on nearly every stored stanza, as constants: a key sliced from the text costs a lookup. */
function attributeName(xml: string, start: number, end: number): string {
  switch (end - start) {
    case 2:
      if (xml.startsWith('id', start)) return 'id';
      if (xml.startsWith('to', start)) return 'to';
      break;
    case 4:
      if (xml.startsWith('from', start)) return 'from';
      if (xml.startsWith('type', start)) return 'type';
      break;
    case 5:
      if (xml.startsWith('stamp', start)) return 'stamp';
      break;
    case 8:
      if (xml.startsWith('xml:lang', start)) return 'xml:lang';
      break;
  }
  return xml.slice(start, end);
}

/**
 * Reads elements in the verbatim subset from a range of a text, by hand and without allocating
 * for what it only checks. One instance scans one text at a time: {@link begin}, then start tags
 * and elements in document order (the searches for `&` and `<` only move forward).
 *
 * The range must end with `>`, or at the end of the text: every loop stops at a `>`, and the
 * searches that could run past the range are checked against its end.
 */
export class VerbatimScanner {
  private text = '';
  private limit = 0;
  /** Next `&` and `<` at or after the scan's position, -1 if none: each text is searched once. */
  private nextAmp = -1;
  private nextLt = 0;
  /** The current tag's attribute names as [start, end) pairs, for the duplicate check. */
  private readonly names: number[] = [];
  /** Open elements as [start, end) pairs of their names. */
  private readonly open: number[] = [];

  // What the last start tag read holds.
  /** End of its name (which starts after its `<`). */
  tagNameEnd = 0;
  selfClosing = false;
  /** Start of the white space before its `xmlns` attribute, -1 if it has none. */
  xmlnsSpace = -1;
  /** Its `xmlns` value as [start, end): the value contains no entity reference. */
  xmlnsStart = -1;
  xmlnsEnd = -1;

  // What the last element read holds.
  /** Deepest nesting of elements in it, itself counting as 1. */
  depth = 0;
  /** Its root's `xmlns` attribute, as for the tag fields above. */
  rootXmlnsSpace = -1;
  rootXmlnsStart = -1;
  rootXmlnsEnd = -1;
  rootNameEnd = 0;

  /** Starts a scan of `text[from, to)`. */
  begin(text: string, from: number, to: number): void {
    this.text = text;
    this.limit = to;
    this.nextAmp = text.indexOf('&', from);
    this.nextLt = from;
  }

  /** Lets go of the text scanned. */
  end(): void {
    this.text = '';
  }

  /**
   * Reads the start tag whose `<` is at `at`; returns the index after its `>`, or -1 when the tag
   * is not in the subset. With `attrs`, stores each attribute but `xmlns` in it, its value as a
   * parser reports it; a value with TAB, LF or CR (which a parser normalises) answers -1 then.
   */
  startTag(at: number, attrs?: Record<string, string>): number {
    const xml = this.text;
    const names = this.names;
    let i = nameEnd(xml, at + 1);
    if (i < 0) return -1;
    this.tagNameEnd = i;
    this.xmlnsSpace = -1;
    let nameCount = 0;
    for (;;) {
      const spaceStart = i;
      i = skipXmlSpace(xml, i);
      const c = xml.charCodeAt(i);
      if (c === GT) {
        this.selfClosing = false;
        return i + 1;
      }
      if (c === SLASH) {
        if (xml.charCodeAt(i + 1) !== GT) return -1;
        this.selfClosing = true;
        return i + 2;
      }
      if (i === spaceStart) return -1;
      const attrStart = i;
      i = nameEnd(xml, i);
      if (i < 0) return -1;
      if (xml.charCodeAt(i) === COLON) {
        // The only prefix allowed is `xml`, which is always bound.
        if (i - attrStart !== 3 || !xml.startsWith('xml', attrStart)) return -1;
        i = nameEnd(xml, i + 1);
        if (i < 0) return -1;
      }
      const attrEnd = i;
      const attrLength = attrEnd - attrStart;
      for (let k = 0; k < nameCount; k += 2) {
        const s = names[k] as number;
        if ((names[k + 1] as number) - s === attrLength && sameText(xml, s, attrStart, attrLength)) return -1;
      }
      names[nameCount++] = attrStart;
      names[nameCount++] = attrEnd;
      i = skipXmlSpace(xml, i);
      if (xml.charCodeAt(i) !== EQUALS) return -1;
      i = skipXmlSpace(xml, i + 1);
      const quote = xml.charCodeAt(i);
      if (quote !== APOS && quote !== QUOT) return -1;
      const valueStart = ++i;
      // An entity has no quote in it, so the value ends at the next quote character.
      i = xml.indexOf(quote === APOS ? "'" : '"', i);
      if (i < 0 || i >= this.limit) return -1;
      if (this.nextLt < valueStart) this.nextLt = xml.indexOf('<', valueStart);
      if (this.nextLt >= 0 && this.nextLt < i) return -1;
      let entities = false;
      if (this.nextAmp >= 0 && this.nextAmp < valueStart) this.nextAmp = xml.indexOf('&', valueStart);
      while (this.nextAmp >= 0 && this.nextAmp < i) {
        if (entityAt(xml, this.nextAmp) === 0) return -1;
        entities = true;
        this.nextAmp = xml.indexOf('&', this.nextAmp + 1);
      }
      if (attrLength === 5 && xml.startsWith('xmlns', attrStart)) {
        if (entities || reservedNamespace(xml, valueStart, i)) return -1;
        this.xmlnsSpace = spaceStart;
        this.xmlnsStart = valueStart;
        this.xmlnsEnd = i;
      } else if (attrs) {
        for (let k = valueStart; k < i; k++) {
          const v = xml.charCodeAt(k);
          if (v === 0x09 || v === 0x0a || v === 0x0d) return -1;
        }
        const value = xml.slice(valueStart, i);
        attrs[attributeName(xml, attrStart, attrEnd)] = entities ? value.replace(ENTITY, (_, name: string) => ENTITY_TEXT[name] ?? '') : value;
      }
      i++;
    }
  }

  /**
   * Reads the element whose `<` is at `at`, through its end tag; returns the index after it, or
   * -1 when it is not in the subset. `attrs` is for its root's start tag, as {@link startTag}.
   */
  element(at: number, attrs?: Record<string, string>): number {
    const xml = this.text;
    const open = this.open;
    let i = this.startTag(at, attrs);
    if (i < 0) return -1;
    this.rootNameEnd = this.tagNameEnd;
    this.rootXmlnsSpace = this.xmlnsSpace;
    this.rootXmlnsStart = this.xmlnsStart;
    this.rootXmlnsEnd = this.xmlnsEnd;
    if (this.selfClosing) {
      this.depth = 1;
      return i;
    }
    let depth = 1;
    let openCount = 2;
    open[0] = at + 1;
    open[1] = this.tagNameEnd;
    // In content: text runs and end tags until the next start tag, or the root's end.
    for (;;) {
      const lt = xml.indexOf('<', i);
      if (lt < 0 || lt >= this.limit) return -1;
      // `nextAmp` only moves forward, so the text is searched for `&` once in all.
      if (this.nextAmp >= 0 && this.nextAmp < i) this.nextAmp = xml.indexOf('&', i);
      while (this.nextAmp >= 0 && this.nextAmp < lt) {
        if (entityAt(xml, this.nextAmp) === 0) return -1;
        this.nextAmp = xml.indexOf('&', this.nextAmp + 1);
      }
      i = lt;
      if (xml.charCodeAt(i + 1) !== SLASH) {
        const nameStart = i + 1;
        i = this.startTag(i);
        if (i < 0) return -1;
        if (!this.selfClosing) {
          open[openCount++] = nameStart;
          open[openCount++] = this.tagNameEnd;
          if (openCount / 2 > depth) depth = openCount / 2;
        } else if (openCount / 2 + 1 > depth) {
          depth = openCount / 2 + 1;
        }
        continue;
      }
      const closeStart = i + 2;
      const closeEnd = nameEnd(xml, closeStart);
      const openEnd = open[--openCount] as number;
      const openStart = open[--openCount] as number;
      if (closeEnd - closeStart !== openEnd - openStart || !sameText(xml, openStart, closeStart, closeEnd - closeStart)) return -1;
      i = skipXmlSpace(xml, closeEnd);
      if (xml.charCodeAt(i) !== GT) return -1;
      i++;
      if (openCount === 0) {
        this.depth = depth;
        return i;
      }
    }
  }
}
