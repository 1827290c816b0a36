import { describe, expect, it } from 'vitest';
import { isoToSeconds } from '../../../src/storage/prosody/util.js';

/** What isoToSeconds gives without its cache of the last day: Date.parse of the time (ms to 3 digits). */
function parsed(iso: string): number | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$/.exec(iso);
  if (!m) return undefined;
  const ms = Date.parse(`${m[1]}${m[2] ? m[2].slice(0, 4).padEnd(4, '0') : ''}${m[3]}`);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

describe('isoToSeconds', () => {
  it('gives the seconds of times of one day, of other days, and undefined for what is no time, whatever came before', () => {
    const times = [
      '2024-01-01T00:00:00Z',
      '2024-01-01T00:00:07Z',
      '2024-01-01T23:59:59Z',
      '2024-01-01T24:00:00Z',
      '2024-01-01T12:60:00Z',
      '2024-01-01T12:00:60Z',
      '2024-01-01T1a:00:00Z',
      '2024-01-01T12:00:00.999Z',
      '2024-01-01T12:00:00+02:00',
      '2024-01-02T00:00:01Z',
      '2024-01-01T00:00:01Z',
      '2024-13-01T00:00:01Z',
      '2024-02-30T10:00:00Z',
      '2024-02-30T10:00:01Z',
      '1970-01-01T00:00:00Z',
      '0001-01-01T00:00:00Z',
      '2024-01-01X00:00:00Z',
    ];
    for (const first of times) {
      for (const iso of times) {
        isoToSeconds(first);
        expect(isoToSeconds(iso), `${iso} after ${first}`).toBe(parsed(iso));
      }
    }
    expect(isoToSeconds('2024-01-01T00:00:07Z')).toBe(1_704_067_207);
  });
});
