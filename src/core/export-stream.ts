/**
 * A document to send as a byte stream, its bytes counted into the metrics and optionally
 * gzip-compressed: what every streamed export answers with.
 */
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { takingTurns } from '../lib/async-iter.js';
import type { DocumentEvent } from '../records/model.js';
import { writeDocument, type InvalidCharsReplaced } from '../xep0227/writer.js';
import { countStreamedBytes } from './counting.js';
import type { Metrics } from './metrics.js';

export interface DocumentStreamOptions {
  readonly gzip: boolean;
  /** Told of stored text XML 1.0 cannot carry, written as U+FFFD. */
  readonly onInvalidChars?: (replaced: InvalidCharsReplaced) => void;
}

/**
 * The document's bytes; a failure of the events destroys the stream (and the compressor) with it.
 * It gives the event loop a turn now and then ({@link takingTurns}): a store read synchronously
 * (SQLite) would otherwise keep the service from answering anyone else until the export ends.
 */
export function documentStream(events: AsyncIterable<DocumentEvent>, metrics: Metrics, options: DocumentStreamOptions): Readable {
  const written = writeDocument(events, options.onInvalidChars ? { onInvalidChars: options.onInvalidChars } : {});
  const body = Readable.from(takingTurns(countStreamedBytes(written, metrics, 'export')), { objectMode: false });
  if (!options.gzip) return body;
  const compressed = createGzip();
  body.on('error', (err) => compressed.destroy(err));
  return body.pipe(compressed);
}
