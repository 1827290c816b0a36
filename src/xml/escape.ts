/**
 * Escaping for XML 1.0 output: text content and single-quoted attribute values, refusing the
 * characters XML 1.0 cannot carry at all.
 */
import { hasOnlyXmlChars } from './chars.js';

/** A character XML 1.0 cannot carry, not even as a character reference. */
export class XmlCharError extends Error {
  constructor(readonly codePoint: number) {
    super(`U+${codePoint.toString(16).toUpperCase().padStart(4, '0')} cannot be represented in XML 1.0`);
    this.name = 'XmlCharError';
  }
}

// XML 1.0 Char production: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
// Lone surrogates are caught because a `u`-flag regex sees them as single code points.
const FORBIDDEN_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

function assertXmlChars(value: string): void {
  // Every exported string passes here, so the common case (nothing wrong) takes the fast test.
  if (hasOnlyXmlChars(value)) return;
  const match = FORBIDDEN_CHAR.exec(value);
  if (match) throw new XmlCharError(match[0].codePointAt(0) ?? 0);
}

/**
 * Text content: `&`, `<` and `>` escaped (the last keeps `]]>` out), and CR as a reference because
 * a parser would turn a raw one into LF.
 */
export function escapeText(value: string): string {
  assertXmlChars(value);
  return TEXT_SPECIAL.test(value) ? value.replace(TEXT_SPECIALS, (c) => TEXT_ESCAPES[c] ?? c) : value;
}

/**
 * Whether `value` can go into a quoted attribute as it is: printable ASCII without `&<>'"`, as ids,
 * JIDs and timestamps nearly always are. One loop, where the full check is a well-formedness test
 * and a regular expression: it runs for the three attributes of every archived message exported.
 */
function isPlainAttribute(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x26 || c === 0x3c || c === 0x3e || c === 0x27 || c === 0x22) return false;
  }
  return true;
}

/** Attribute values in single quotes; TAB, LF and CR as references so they survive normalisation. */
export function escapeAttribute(value: string): string {
  if (isPlainAttribute(value)) return value;
  assertXmlChars(value);
  return ATTR_SPECIAL.test(value) ? value.replace(ATTR_SPECIALS, (c) => ATTR_ESCAPES[c] ?? c) : value;
}

const TEXT_SPECIAL = /[&<>\r]/;
const TEXT_SPECIALS = /[&<>\r]/g;
const ATTR_SPECIAL = /[&<>'"\t\n\r]/;
const ATTR_SPECIALS = /[&<>'"\t\n\r]/g;

const TEXT_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#13;' };
const ATTR_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  "'": '&apos;',
  '"': '&quot;',
  '\t': '&#9;',
  '\n': '&#10;',
  '\r': '&#13;',
};

