/** XEP-0082 date-times as the records hold them: UTC, with `Z`. */

const TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** XEP-0082 date-time to UTC with `Z`, keeping the source's fractional digits; undefined if invalid. */
export function normaliseTimestamp(value: string): string | undefined {
  const m = TIMESTAMP.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac = '', zone = 'Z'] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  // Year 0000 does not exist in XEP-0082 (ISO 8601 without expanded years) nor for the servers.
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) {
    return undefined;
  }
  if (zone === 'Z') return value;
  const sign = zone.startsWith('-') ? -1 : 1;
  const offsetMinutes = Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6));
  // setUTCFullYear, not Date.UTC, which reads years 0-99 as 1900-1999.
  const local = new Date(0);
  local.setUTCFullYear(year, month - 1, day);
  local.setUTCHours(Number(h), Number(mi), Number(s), 0);
  const utc = new Date(local.getTime() - sign * offsetMinutes * 60_000);
  // An offset can carry 0001-01-01 or 9999-12-31 out of the four-digit years.
  if (utc.getUTCFullYear() < 1 || utc.getUTCFullYear() > 9999) return undefined;
  return `${utc.toISOString().slice(0, 19)}${frac}Z`;
}
