/**
 * JID parsing and normalisation (RFC 7622 splitting, RFC 6122-era stringprep semantics). The
 * rewrite of an account's JID through its records when it moves is src/transfer/rename.ts.
 *
 * Normalisation deliberately follows what Prosody and ejabberd do (stringprep nodeprep/nameprep),
 * not PRECIS: the localparts we compare against are the keys those servers stored, and a PRECIS
 * normaliser would disagree with them on e.g. `ß` and final sigma.
 */
import { Buffer } from 'node:buffer';
import { isIPv4, isIPv6 } from 'node:net';

/** A parsed, normalised JID. Absent parts are absent keys, never empty strings. */
export interface Jid {
  readonly local?: string;
  readonly domain: string;
  readonly resource?: string;
}

export type JidPart = 'jid' | 'localpart' | 'domainpart' | 'resourcepart';

/** Invalid JID or JID part. `reason` names code points as `U+XXXX`, so it is safe to log and return. */
export class JidError extends Error {
  constructor(
    readonly reason: string,
    readonly part: JidPart = 'jid',
  ) {
    super(`invalid JID: ${reason}`);
    this.name = 'JidError';
  }
}

/** RFC 7622 §3.2–3.4: each part is at most 1023 octets of UTF-8. */
const MAX_PART_BYTES = 1023;
/** DNS label limit, applied to the Unicode form (we never produce the ACE form). */
const MAX_LABEL_BYTES = 63;
/**
 * Rejects absurd inputs before any Unicode work: three maximal parts plus separators fit easily,
 * even in un-normalised (decomposed, padded with mapped-out characters) form.
 */
const MAX_INPUT_CHARS = 8 * 1024;

// ---------------------------------------------------------------------------------------------
// Stringprep (RFC 3454) tables, as far as Prosody's and ejabberd's nodeprep/nameprep apply them

/** B.1: mapped to nothing. Also strips ZWJ and VS16 from emoji sequences, as both servers do. */
const MAPPED_TO_NOTHING =
  // eslint-disable-next-line no-misleading-character-class -- lone combining code points, no sequence meant
  /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/gu;

/**
 * Code points nodeprep prohibits after mapping: C.1.1–C.9 plus nodeprep's own `"&'/:<>@`.
 * `\p{Cn}` stands in for "unassigned" (A.1) with the runtime's newer Unicode version, and also
 * covers every non-character; `\p{Co}` is C.3.
 */
const LOCALPART_PROHIBITED =
  // eslint-disable-next-line no-misleading-character-class -- lone combining code points, no sequence meant
  /[\p{Cc}\u0020"&'/:<>@\u00A0\u0340\u0341\u06DD\u070F\u1680\u180E\u2000-\u200F\u2028-\u202F\u205F-\u2063\u206A-\u206F\u2FF0-\u2FFB\u3000\uFDD0-\uFDEF\uFEFF\uFFF9-\uFFFF\u{1D173}-\u{1D17A}\u{E0001}\u{E0020}-\u{E007F}\p{Co}\p{Cn}\p{Cs}]/u;

/** Table D.1 (RandALCat) exactly as RFC 3454 has it, so the bidi rule matches libidn's. */
const RAND_AL_RANGES: readonly (readonly [number, number])[] = [
  [0x05be, 0x05be], [0x05c0, 0x05c0], [0x05c3, 0x05c3], [0x05d0, 0x05ea], [0x05f0, 0x05f4],
  [0x061b, 0x061b], [0x061f, 0x061f], [0x0621, 0x063a], [0x0640, 0x064a], [0x066d, 0x066f],
  [0x0671, 0x06d5], [0x06dd, 0x06dd], [0x06e5, 0x06e6], [0x06fa, 0x06fe], [0x0700, 0x070d],
  [0x0710, 0x0710], [0x0712, 0x072c], [0x0780, 0x07a5], [0x07b1, 0x07b1], [0x200f, 0x200f],
  [0xfb1d, 0xfb1d], [0xfb1f, 0xfb28], [0xfb2a, 0xfb36], [0xfb38, 0xfb3c], [0xfb3e, 0xfb3e],
  [0xfb40, 0xfb41], [0xfb43, 0xfb44], [0xfb46, 0xfbb1], [0xfbd3, 0xfd3d], [0xfd50, 0xfd8f],
  [0xfd92, 0xfdc7], [0xfdf0, 0xfdfc], [0xfe70, 0xfe74], [0xfe76, 0xfefc],
];

const hex = (cp: number): string => cp.toString(16).toUpperCase().padStart(4, '0');

const RAND_AL = new RegExp(
  `[${RAND_AL_RANGES.map(([a, b]) => (a === b ? `\\u${hex(a)}` : `\\u${hex(a)}-\\u${hex(b)}`)).join('')}]`,
  'u',
);

/**
 * LCat approximation: table D.2 is ~360 ranges of Unicode 3.2 data; strong-L in practice means
 * letters, spacing marks and letter numbers of left-to-right scripts. Letters of right-to-left
 * scripts that D.1 lacks (added after 3.2) are neither category for libidn, so they are excluded.
 */
const L_CAT = /[\p{L}\p{Mc}\p{Nl}]/u;
const RTL_SCRIPT =
  /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}\p{Script=Adlam}\p{Script=Hanifi_Rohingya}]/u;

/** RFC 3454 §6. Applied to the localpart and, as IDNA2003 does, to each domain label. */
function checkBidi(s: string, part: JidPart): void {
  if (!RAND_AL.test(s)) return;
  const chars = Array.from(s);
  for (const ch of chars) {
    if (!RAND_AL.test(ch) && L_CAT.test(ch) && !RTL_SCRIPT.test(ch)) {
      throw new JidError(`${part} mixes right-to-left and left-to-right characters`, part);
    }
  }
  if (!RAND_AL.test(chars[0] ?? '') || !RAND_AL.test(chars[chars.length - 1] ?? '')) {
    throw new JidError(`${part} with right-to-left characters must start and end with one`, part);
  }
}

/**
 * Full case foldings (B.2) that `toLowerCase()` plus NFKC does not produce. Iota subscripts are
 * handled separately (U+0345 → U+03B9 after decomposition).
 */
const SPECIAL_FOLDS: ReadonlyMap<string, string> = new Map([
  ['\u00DF', 'ss'],
  ['\u1E9E', 'ss'],
  ['\u03C2', '\u03C3'],
]);

/**
 * B.2 approximation: NFKC → per-code-point lower case → NFKC. Lower-casing code point by code
 * point avoids JavaScript's context-sensitive final sigma. Cherokee is left alone because it had
 * no case in Unicode 3.2 and folds to upper case since; anything else cased after 3.2 (e.g.
 * Georgian Mtavruli) is lower-cased here while libidn leaves it, a divergence we accept.
 */
function stringprepMap(s: string): string {
  const nfkc = s.replace(MAPPED_TO_NOTHING, '').normalize('NFKC');
  let folded = '';
  for (const ch of nfkc) {
    const cp = ch.codePointAt(0) ?? 0;
    folded += SPECIAL_FOLDS.get(ch) ?? (cp >= 0x13a0 && cp <= 0x13ff ? ch : ch.toLowerCase());
  }
  let decomposed = folded.normalize('NFD');
  if (decomposed.includes('\u0345')) decomposed = decomposed.replaceAll('\u0345', '\u03B9');
  return decomposed.normalize('NFKC');
}

const PRINTABLE_ASCII = /^[\x21-\x7E]+$/;
const LONE_SURROGATE = /\p{Cs}/u;

function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function checkLength(s: string, part: JidPart, max: number = MAX_PART_BYTES): void {
  if (s.length === 0) throw new JidError(`${part} is empty`, part);
  if (utf8Length(s) > max) throw new JidError(`${part} is longer than ${max} bytes`, part);
}

// ---------------------------------------------------------------------------------------------
// Parts

/**
 * Nodeprep-compatible localpart normalisation. Emoji and other symbols assigned after Unicode 3.2
 * are accepted: Prosody (non-strict prep) and ejabberd store them, and PRECIS FreeformClass
 * allows them, so rejecting them would make real accounts unexportable.
 *
 * The result never contains `/`, NUL or any other control character and is never `.` or `..`,
 * so it cannot climb out of a directory; storage code still encodes it for its own file names
 * (`con`, `\`, case-insensitive file systems).
 */
export function normaliseLocalpart(input: string): string {
  const part: JidPart = 'localpart';
  if (input.length === 0) throw new JidError('localpart is empty', part);
  if (input.length > MAX_INPUT_CHARS) throw new JidError('localpart is too long', part);
  let s: string;
  if (PRINTABLE_ASCII.test(input)) {
    s = input.toLowerCase();
  } else {
    if (LONE_SURROGATE.test(input)) throw new JidError('localpart contains an unpaired surrogate', part);
    s = stringprepMap(input);
  }
  const bad = LOCALPART_PROHIBITED.exec(s);
  if (bad) {
    throw new JidError(`localpart contains disallowed code point U+${hex(bad[0].codePointAt(0) ?? 0)}`, part);
  }
  checkLength(s, part);
  checkBidi(s, part);
  // Nodeprep allows these, but they are path components; no real account is named like this.
  if (s === '.' || s === '..') throw new JidError('localpart must not be "." or ".."', part);
  return s;
}

/** Letters, digits, marks (for Indic scripts), hyphen and underscore; no leading mark. */
const DOMAIN_LABEL = /^[\p{L}\p{Nd}_-][\p{L}\p{M}\p{Nd}_-]*$/u;
const IDEOGRAPHIC_FULL_STOPS = /[\u3002\uFF0E\uFF61]/g;

/**
 * Domainpart normalisation: nameprep-style mapping (lower case, NFKC, Unicode kept, no punycode),
 * one trailing dot stripped, IPv4 literals and bracketed IPv6 literals allowed. IPv6 literals are
 * lower-cased but not re-compressed, so they compare equal to the host as the server has it.
 */
export function normaliseDomain(input: string): string {
  const part: JidPart = 'domainpart';
  if (input.length === 0) throw new JidError('domainpart is empty', part);
  if (input.length > MAX_INPUT_CHARS) throw new JidError('domainpart is too long', part);
  let s: string;
  if (PRINTABLE_ASCII.test(input)) {
    s = input.toLowerCase();
  } else {
    if (LONE_SURROGATE.test(input)) throw new JidError('domainpart contains an unpaired surrogate', part);
    s = stringprepMap(input).replace(IDEOGRAPHIC_FULL_STOPS, '.');
  }
  if (s.endsWith('.')) s = s.slice(0, -1);
  checkLength(s, part);

  if (s.startsWith('[')) {
    const inner = s.endsWith(']') ? s.slice(1, -1) : '';
    // Zone identifiers are local to one machine and mean nothing in an address.
    if (inner.includes('%') || !isIPv6(inner)) throw new JidError('domainpart is not a valid IPv6 literal', part);
    return s;
  }
  if (s.includes('@')) throw new JidError('domainpart contains "@"', part);

  const labels = s.split('.');
  for (const label of labels) {
    if (label.length === 0) throw new JidError('domainpart has an empty label', part);
    if (utf8Length(label) > MAX_LABEL_BYTES) {
      throw new JidError(`domainpart has a label longer than ${MAX_LABEL_BYTES} bytes`, part);
    }
    if (!DOMAIN_LABEL.test(label)) {
      const bad = Array.from(label).find((ch) => !/[\p{L}\p{M}\p{Nd}_-]/u.test(ch)) ?? label;
      throw new JidError(`domainpart contains disallowed code point U+${hex(bad.codePointAt(0) ?? 0)}`, part);
    }
    checkBidi(label, part);
  }
  // A numeric last label is never a DNS name, so it must be a dotted-quad IPv4 literal.
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? '') && !isIPv4(s)) {
    throw new JidError('domainpart is not a valid IPv4 address', part);
  }
  return s;
}

const RESOURCE_PROHIBITED = /[\p{Cc}\p{Cs}\uFFFE\uFFFF]/u;

/**
 * Resourcepart normalisation: NFC only, case preserved. U+FFFE/U+FFFF are rejected with control
 * characters because no XML document can carry them.
 */
export function normaliseResource(input: string): string {
  const part: JidPart = 'resourcepart';
  if (input.length > MAX_INPUT_CHARS) throw new JidError('resourcepart is too long', part);
  const s = input.normalize('NFC');
  const bad = RESOURCE_PROHIBITED.exec(s);
  if (bad) {
    throw new JidError(`resourcepart contains disallowed code point U+${hex(bad[0].codePointAt(0) ?? 0)}`, part);
  }
  checkLength(s, part);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Whole JIDs

/**
 * Splits per RFC 7622 §3.1 — the resource starts at the first `/`, the localpart ends at the
 * first `@` before it — and normalises each part. So `a@b@c` has domainpart `b@c` and is invalid,
 * while `a@b/c@d/e` is valid with resource `c@d/e`.
 */
export function parseJid(input: string): Jid {
  if (typeof input !== 'string' || input.length === 0) throw new JidError('JID is empty');
  if (input.length > MAX_INPUT_CHARS) throw new JidError('JID is too long');
  const slash = input.indexOf('/');
  const head = slash < 0 ? input : input.slice(0, slash);
  const at = head.indexOf('@');
  const domain = normaliseDomain(at < 0 ? head : head.slice(at + 1));
  const jid: { local?: string; domain: string; resource?: string } = { domain };
  if (at >= 0) jid.local = normaliseLocalpart(head.slice(0, at));
  if (slash >= 0) jid.resource = normaliseResource(input.slice(slash + 1));
  return jid;
}

/** Serialises a JID. Does not validate: pass what {@link parseJid} returned. */
export function formatJid(jid: Jid): string {
  let s = jid.domain;
  if (jid.local !== undefined) s = `${jid.local}@${s}`;
  if (jid.resource !== undefined) s = `${s}/${jid.resource}`;
  return s;
}

/**
 * The bare JIDs: two functions because two rules are needed.
 *
 * - {@link bareJid} is for JIDs that come from outside (a request, a stanza a server sent, a
 *   document): it validates and normalises, so that equal addresses compare equal;
 *   {@link bareJidIfValid} is the same rule answering undefined instead of throwing.
 * - {@link storedBareJid} is for JIDs a server has already stored, where its own keys must be
 *   matched byte for byte: it only drops the resource, as Prosody's util.jid `bare` and
 *   ejabberd's stored rows do. Normalising would miss the rows the server wrote un-normalised, and
 *   validating would refuse values the server accepted.
 */

/** The normalised bare JID (`local@domain` or `domain`) of any valid JID; throws {@link JidError}. */
export function bareJid(input: string): string {
  const { local, domain } = parseJid(input);
  return local === undefined ? domain : `${local}@${domain}`;
}

/** {@link bareJid}, or undefined for an invalid JID: for addresses a remote party sent, which are skipped when invalid. */
export function bareJidIfValid(input: string): string | undefined {
  try {
    return bareJid(input);
  } catch (err) {
    if (err instanceof JidError) return undefined;
    throw err;
  }
}

/** A stored JID without its resource (everything before the first `/`): nothing normalised, never an error. */
export function storedBareJid(jid: string): string {
  const slash = jid.indexOf('/');
  return slash < 0 ? jid : jid.slice(0, slash);
}

export function isValidJid(input: string): boolean {
  try {
    parseJid(input);
    return true;
  } catch (err) {
    if (err instanceof JidError) return false;
    throw err;
  }
}

/**
 * Whether `host` is in `allowList`, comparing normalised domains. `*` allows every valid host;
 * an invalid host or list entry never matches.
 */
export function hostAllowed(host: string, allowList: readonly string[]): boolean {
  let normalised: string;
  try {
    normalised = normaliseDomain(host);
  } catch {
    return false;
  }
  return allowList.some((entry) => {
    if (entry === '*') return true;
    try {
      return normaliseDomain(entry) === normalised;
    } catch {
      return false;
    }
  });
}
