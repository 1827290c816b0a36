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
