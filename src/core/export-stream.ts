/**
 * A document to send as a byte stream, its bytes counted into the metrics and optionally
 * gzip-compressed: what every streamed export answers with.
 */
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { takingTurns } from '../lib/async-iter.js';
import type { DataKind, DocumentEvent } from '../records/model.js';
import type { StorageBackend, UserRef } from '../storage/backend.js';
import { exportUserDocument } from '../transfer/account-transfer.js';
import { writeDocument, type InvalidCharsReplaced } from '../xep0227/writer.js';
import { countRecords, countStreamedBytes } from './counting.js';
import type { ExportWorkers } from './export-workers.js';
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
  return sent(takingTurns(countStreamedBytes(written, metrics, 'export')), options.gzip);
}

function sent(chunks: AsyncIterable<Buffer> | Readable, gzip: boolean): Readable {
  const body = chunks instanceof Readable ? chunks : Readable.from(chunks, { objectMode: false });
  if (!gzip) return body;
  const compressed = createGzip();
  body.on('error', (err) => compressed.destroy(err));
  return body.pipe(compressed);
}

/** What {@link accountExportStream} reads with. */
export interface AccountExporter {
  readonly storage: StorageBackend;
  readonly metrics: Metrics;
  /** Absent: exports run on the service's thread. */
  readonly exportWorkers?: ExportWorkers;
}

export interface AccountExportOptions extends DocumentStreamOptions {
  /** Stops the export (the client went away). */
  readonly signal: AbortSignal;
}

/**
 * One account's whole document as a byte stream, its records and bytes counted: written on an
 * export worker where the service has them (unless the pool gives this export the service's
 * thread, see ExportWorkers.claimServiceThread), else on this thread by the same code. A failure
 * before the first byte destroys the stream before it gives any.
 */
export function accountExportStream(exporter: AccountExporter, ref: UserRef, kinds: ReadonlySet<DataKind>, options: AccountExportOptions): Readable {
  const { storage, metrics, exportWorkers } = exporter;
  const { signal, onInvalidChars } = options;
  const release = exportWorkers?.claimServiceThread();
  if (exportWorkers && !release) {
    // Counted as they come (WorkerExportStream); only a compressor goes between it and the client.
    const bytes = exportWorkers.export(ref, kinds, { metrics, signal, ...(onInvalidChars ? { onInvalidChars } : {}) });
    if (!options.gzip) return bytes;
    const out = sent(bytes, true);
    // Destroyed before its end (not only aborted): the worker stops too.
    out.once('close', () => bytes.destroy());
    return out;
  }
  const stream = documentStream(countRecords(exportUserDocument(storage, ref, kinds, signal), metrics, 'export'), metrics, options);
  // Ended, failed or destroyed: the service's thread is free for the next export.
  if (release) stream.once('close', release);
  return stream;
}
