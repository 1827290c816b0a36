/** Small helpers the Prosody store mappers share. */
import { randomUUID } from 'node:crypto';

/** util.uuid.generate(): a random RFC 4122 version 4 UUID in lower-case hex. */
export function generateUuid(): string {
  return randomUUID();
}

/** The date part of the last day {@link secondsToIso} formatted: archives come in time order. */
let cachedDay = Number.NaN;
let cachedDate = '';

function twoDigits(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * Prosody's stored time (integer seconds; a float with µs from Prosody 13 on SQLite and in its
 * files) as XEP-0082 UTC exactly as Prosody's util.datetime writes it, so as MAM serves it: whole
 * seconds, or 6 fraction digits, the float's µs rounded down.
 */
export function secondsToIso(seconds: number): string {
  if (seconds < 0 || seconds >= 253_402_300_800 || !Number.isFinite(seconds)) return new Date(Math.round(seconds * 1000)).toISOString();
  if (!Number.isInteger(seconds)) {
    const whole = Math.floor(seconds);
    const micros = Math.floor((seconds - whole) * 1e6);
    return `${secondsToIso(whole).slice(0, -1)}.${String(micros).padStart(6, '0')}Z`;
  }
  const day = Math.floor(seconds / 86_400);
  if (day !== cachedDay) {
    cachedDay = day;
    cachedDate = new Date(day * 86_400_000).toISOString().slice(0, 11);
  }
  const inDay = seconds - day * 86_400;
  const hours = Math.floor(inDay / 3600);
  const minutes = Math.floor((inDay % 3600) / 60);
  return `${cachedDate}${twoDigits(hours)}:${twoDigits(minutes)}:${twoDigits(inDay % 60)}Z`;
}

const XEP0082_DATETIME = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** The day (`YYYY-MM-DDT`) of the last `…Thh:mm:ssZ` time {@link isoToSeconds} parsed in full (none at first: no date starts with NUL), and its first second. */
let cachedIsoDay = '\u0000';
let cachedIsoDaySeconds = 0;

/** An XEP-0082 date-time as whole Unix seconds (rounded down), undefined when it is not one. */
export function isoToSeconds(iso: string): number | undefined {
  // An archive's times come in order, many to a day: a `…Z` time of the day parsed last is that
  // day's first second plus its time of day, checked as the full parse would.
  const inDay = iso.length === 20 && iso.charCodeAt(19) === 90 ? secondOfDay(iso) : undefined;
  if (inDay !== undefined && iso.startsWith(cachedIsoDay)) return cachedIsoDaySeconds + inDay;
  const m = XEP0082_DATETIME.exec(iso);
  if (!m) return undefined;
  const fraction = m[2] ? m[2].slice(0, 4).padEnd(4, '0') : '';
  const ms = Date.parse(`${m[1]}${fraction}${m[3]}`);
  if (Number.isNaN(ms)) return undefined;
  const seconds = Math.floor(ms / 1000);
  if (inDay !== undefined) {
    cachedIsoDay = iso.slice(0, 11);
    cachedIsoDaySeconds = seconds - inDay;
  }
  return seconds;
}

/** `hh:mm:ss` at offset 11 of `iso` as seconds, when each is two digits in range (no leap second). */
function secondOfDay(iso: string): number | undefined {
  if (iso.charCodeAt(10) !== 84 || iso.charCodeAt(13) !== 58 || iso.charCodeAt(16) !== 58) return undefined;
  const hours = twoDigitsAt(iso, 11);
  const minutes = twoDigitsAt(iso, 14);
  const seconds = twoDigitsAt(iso, 17);
  if (hours > 23 || minutes > 59 || seconds > 59) return undefined;
  return hours * 3600 + minutes * 60 + seconds;
}

/** The two decimal digits at `at`, or 100 when they are not digits. */
function twoDigitsAt(text: string, at: number): number {
  const a = text.charCodeAt(at) - 48;
  const b = text.charCodeAt(at + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : 100;
}

/**
 * An XEP-0082 date-time as Unix seconds with its fraction to the µs, undefined when it is not
 * one. The float is put half a µs into its µs, so that {@link secondsToIso} and Prosody (which
 * round the float's µs down) give the same stamp back; no fraction gives an integer.
 */
export function isoToTime(iso: string): number | undefined {
  const m = XEP0082_DATETIME.exec(iso);
  if (!m) return undefined;
  const whole = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(whole)) return undefined;
  const micros = m[2] ? Number(m[2].slice(1, 7).padEnd(6, '0')) : 0;
  return micros === 0 ? whole / 1000 : whole / 1000 + (micros + 0.5) / 1e6;
}

/** Seconds since the epoch, as os.time() gives them. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
