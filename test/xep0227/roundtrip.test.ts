import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readDocument } from '../../src/xep0227/reader.js';
import { writeDocument } from '../../src/xep0227/writer.js';
import { documentEvents } from '../support/arbitraries.js';
import { collect } from '../support/xep0227.js';

describe('writer → reader round trip', () => {
  it('gives back every valid document unchanged (500 documents)', async () => {
    await fc.assert(
      fc.asyncProperty(documentEvents, async (events) => {
        const back = await collect(readDocument(writeDocument(events)));
        expect(back).toEqual(events);
      }),
      { numRuns: 500 },
    );
  }, 120_000);

  it('does not depend on where the byte stream is cut (150 documents)', async () => {
    await fc.assert(
      fc.asyncProperty(documentEvents, fc.array(fc.nat(), { maxLength: 40 }), fc.boolean(), async (events, cuts, asText) => {
        const bytes = Buffer.concat(await collect(writeDocument(events)));
        // Cut anywhere, also inside multi-byte characters, CR LF pairs and surrogate pairs.
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const pieces: (Uint8Array | string)[] = [];
        let from = 0;
        for (const to of [...points, bytes.length]) {
          pieces.push(bytes.subarray(from, to));
          from = to;
        }
        const source = asText ? splitText(bytes.toString('utf8'), points) : pieces;
        expect(await collect(readDocument(source))).toEqual(events);
      }),
      { numRuns: 150 },
    );
  }, 120_000);
});

/** The same document as string chunks, cut at code-unit positions (possibly between surrogates). */
function splitText(text: string, points: number[]): string[] {
  const out: string[] = [];
  let from = 0;
  for (const p of [...points.map((p) => Math.min(p, text.length)), text.length]) {
    if (p < from) continue;
    out.push(text.slice(from, p));
    from = p;
  }
  return out;
}
