/**
 * Transfers counted into the metrics as they stream: bytes and records, without a 'data'
 * listener that would bypass backpressure.
 */
import { tapAsync } from '../lib/async-iter.js';
import { dataKindOf, type DataKind, type DocumentEvent } from '../records/model.js';
import type { MetricsRecorder } from './metrics-recorder.js';

/** Counts bytes as they are pulled. */
export async function* countBytes<T extends Uint8Array>(chunks: AsyncIterable<T>, count: (bytes: number) => void): AsyncGenerator<T> {
  for await (const chunk of chunks) {
    count(chunk.length);
    yield chunk;
  }
}

/** `chunks`, their bytes added to `xporta_bytes_streamed_total` for `direction`. */
export function countStreamedBytes<T extends Uint8Array>(chunks: AsyncIterable<T>, metrics: MetricsRecorder, direction: 'export' | 'import'): AsyncGenerator<T> {
  return countBytes(chunks, (n) => metrics.inc('xporta_bytes_streamed_total', { direction }, n));
}

/**
 * Records counted per kind and added to the metrics every {@link RECORD_TALLY_EVERY} records and
 * at the end: a label key built per record would cost a large share of a big export's time.
 */
export function countRecords(events: AsyncIterable<DocumentEvent>, metrics: MetricsRecorder, direction: 'export' | 'import' | 'dry_run'): AsyncIterable<DocumentEvent> {
  const tally = new Map<DataKind, number>();
  let pending = 0;
  const flush = (): void => {
    for (const [kind, n] of tally) metrics.inc('xporta_records_total', { direction, kind }, n);
    tally.clear();
    pending = 0;
  };
  return tapAsync(
    events,
    (event) => {
      if (event.kind === 'host' || event.kind === 'host-end' || event.kind === 'user' || event.kind === 'user-end') return;
      const kind = dataKindOf(event);
      tally.set(kind, (tally.get(kind) ?? 0) + 1);
      if (++pending === RECORD_TALLY_EVERY) flush();
    },
    flush,
  );
}

/** Often enough that a scrape during a long transfer sees it move. */
const RECORD_TALLY_EVERY = 1024;
