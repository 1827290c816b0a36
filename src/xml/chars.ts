/** Which characters XML 1.0 can carry: the one fast test the codec and the verbatim check share. */

// The Char production without the `u` flag, minus surrogates: cheap enough to run on every string.
// eslint-disable-next-line no-control-regex -- finding control characters is this pattern's job
const FORBIDDEN_BMP = /[\x00-\x08\x0B\x0C\x0E-\x1F\uFFFE\uFFFF]/;

/**
 * True when every character of `value` is an XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] |
 * [#xE000-#xFFFD] | [#x10000-#x10FFFF]. Lone surrogates fail `isWellFormed`.
 */
export function hasOnlyXmlChars(value: string): boolean {
  return !FORBIDDEN_BMP.test(value) && value.isWellFormed();
}

/**
 * {@link hasOnlyXmlChars} for a string known to be well-formed UTF-16 (decoded from UTF-8, say):
 * only the characters of the Basic Multilingual Plane that XML cannot carry are looked for.
 */
export function hasOnlyXmlCharsIfWellFormed(value: string): boolean {
  return !FORBIDDEN_BMP.test(value);
}

// Markup delimiters, for the scanners that read markup by hand (verbatim.ts, archive-item.ts).
export const LT = 0x3c;
export const GT = 0x3e;
export const SLASH = 0x2f;
export const EQUALS = 0x3d;
export const COLON = 0x3a;
export const APOS = 0x27;
export const QUOT = 0x22;

/** XML's white space (the S production): space, tab, LF, CR. */
export function isXmlSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;
}

/** Index of the first character from `i` on that is not XML white space (the length at the end). */
export function skipXmlSpace(text: string, i: number): number {
  while (isXmlSpace(text.charCodeAt(i))) i++;
  return i;
}

/** What {@link measureText} finds in a run of text. */
export interface TextMeasure {
  /** Its length in UTF-8. */
  readonly bytes: number;
  /** Whether every character is an XML 1.0 Char (as {@link hasOnlyXmlChars}). */
  readonly xmlChars: boolean;
  /** Line breaks in it (CR LF counting once, as a parser reads them). */
  readonly lineBreaks: number;
  /** Characters (a surrogate pair being one) after its last line break, or in all of it if none. */
  readonly lastLineColumns: number;
}

/** One pass over `text[from, to)` for what a parser would count in it, without parsing it. */
export function measureText(text: string, from: number, to: number): TextMeasure {
  let bytes = 0;
  let xmlChars = true;
  let lineBreaks = 0;
  let columns = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    columns++;
    if (c < 0x80) {
      bytes++;
      if (c < 0x20) {
        if (c === 0x0a || c === 0x0d) {
          if (c === 0x0d && i + 1 < to && text.charCodeAt(i + 1) === 0x0a) {
            i++;
            bytes++;
          }
          lineBreaks++;
          columns = 0;
        } else if (c !== 0x09) {
          xmlChars = false;
        }
      }
    } else if (c < 0x800) {
      bytes += 2;
    } else if (c >= 0xd800 && c <= 0xdbff) {
      const next = i + 1 < to ? text.charCodeAt(i + 1) : 0;
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else {
        xmlChars = false;
        bytes += 3;
      }
    } else {
      bytes += 3;
      if ((c >= 0xdc00 && c <= 0xdfff) || c === 0xfffe || c === 0xffff) xmlChars = false;
    }
  }
  return { bytes, xmlChars, lineBreaks, lastLineColumns: columns };
}
