/**
 * A document to send as a byte stream, its bytes counted into the metrics and optionally
 * gzip-compressed: what every streamed export answers with.
 */
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { DocumentEvent } from '../records/model.js';
import { writeDocument, type InvalidCharsReplaced } from '../xep0227/writer.js';
import { countStreamedBytes } from './counting.js';
import type { Metrics } from './metrics.js';

export interface DocumentStreamOptions {
  readonly gzip: boolean;
  /** Told of stored text XML 1.0 cannot carry, written as U+FFFD. */
  readonly onInvalidChars?: (replaced: InvalidCharsReplaced) => void;
}

/** The document's bytes; a failure of the events destroys the stream (and the compressor) with it. */
export function documentStream(events: AsyncIterable<DocumentEvent>, metrics: Metrics, options: DocumentStreamOptions): Readable {
  const written = writeDocument(events, options.onInvalidChars ? { onInvalidChars: options.onInvalidChars } : {});
  const body = Readable.from(countStreamedBytes(written, metrics, 'export'), { objectMode: false });
  if (!options.gzip) return body;
  const compressed = createGzip();
  body.on('error', (err) => compressed.destroy(err));
  return body.pipe(compressed);
}
