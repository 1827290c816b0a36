/**
 * SASLprep (RFC 4013), which Prosody applies to a password before hashing it
 * (util/sasl/scram.lua `get_scram_hasher`) and before comparing a plain one. Prosody calls it
 * without the strict flag, so unassigned code points are allowed.
 *
 * Not implemented: the RFC 3454 §6 bidirectional check (JS has no Bidi_Class property); a password
 * mixing right-to-left and left-to-right letters is accepted here where libidn would refuse it.
 */

type Ranges = readonly (readonly [number, number])[];

// RFC 3454 C.1.2, mapped to SPACE.
const NON_ASCII_SPACE: Ranges = [[0x00a0, 0x00a0], [0x1680, 0x1680], [0x2000, 0x200b], [0x202f, 0x202f], [0x205f, 0x205f], [0x3000, 0x3000]];
// RFC 3454 B.1, mapped to nothing.
const MAPPED_TO_NOTHING: Ranges = [
  [0x00ad, 0x00ad], [0x034f, 0x034f], [0x1806, 0x1806], [0x180b, 0x180d], [0x200b, 0x200d], [0x2060, 0x2060], [0xfe00, 0xfe0f], [0xfeff, 0xfeff],
];
// RFC 3454 C.1.2, C.2.1, C.2.2, C.3, C.4, C.5, C.6, C.7, C.8, C.9.
const PROHIBITED: Ranges = [
  ...NON_ASCII_SPACE,
  [0x0000, 0x001f], [0x007f, 0x009f],
  [0x06dd, 0x06dd], [0x070f, 0x070f], [0x180e, 0x180e], [0x200c, 0x200f], [0x2028, 0x202e], [0x2060, 0x2063], [0x206a, 0x206f],
  [0xfeff, 0xfeff], [0xfff9, 0xfffd], [0x1d173, 0x1d17a],
  [0xe000, 0xf8ff], [0xf0000, 0xffffd], [0x100000, 0x10fffd],
  [0xfdd0, 0xfdef], [0xfffe, 0xffff],
  ...Array.from({ length: 16 }, (_, plane) => [(plane + 1) * 0x10000 + 0xfffe, (plane + 1) * 0x10000 + 0xffff] as const),
  [0xd800, 0xdfff],
  [0x2ff0, 0x2ffb],
  [0x0340, 0x0341],
  [0xe0001, 0xe0001], [0xe0020, 0xe007f],
];

function within(cp: number, ranges: Ranges): boolean {
  return ranges.some(([lo, hi]) => cp >= lo && cp <= hi);
}

/** The prepared string, or undefined when SASLprep refuses it. */
export function saslprep(value: string): string | undefined {
  let mapped = '';
  for (const ch of value) {
    const cp = ch.codePointAt(0) ?? 0;
    if (within(cp, NON_ASCII_SPACE)) mapped += ' ';
    else if (!within(cp, MAPPED_TO_NOTHING)) mapped += ch;
  }
  const normalised = mapped.normalize('NFKC');
  for (const ch of normalised) if (within(ch.codePointAt(0) ?? 0, PROHIBITED)) return undefined;
  return normalised;
}
