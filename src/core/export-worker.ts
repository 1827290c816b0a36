/**
 * An export worker thread (started by export-workers.ts): it opens its own connection to the
 * storage and writes accounts' documents with the same code as an export on the service's thread
 * (exportUserDocument, the XEP-0227 writer, the record count), sending the bytes to the service a
 * chunk at a time, never more than the service has given credit for. Several exports may run on
 * one worker; each waits for credit in turn, so they share it. No lock, audit line or HTTP
 * answer is made here: the service does those.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { isDataKind, type DataKind } from '../records/model.js';
import { StorageError } from '../storage/backend.js';
import { openStorageReader } from '../storage/open.js';
import { exportUserDocument, TransferError } from '../transfer/account-transfer.js';
import { writeDocument } from '../xep0227/writer.js';
import { countRecords } from './counting.js';
import type { ExportWorkerData, FromWorker, RecordTally, ToWorker, WorkerError } from './export-worker-protocol.js';
import type { Labels, MetricsRecorder } from './metrics-recorder.js';

const port = parentPort;
if (!port) throw new Error('export-worker.ts runs as a worker thread');
const data = workerData as ExportWorkerData;
const storage = openStorageReader(data.storage, data.hosts);
if (!storage) throw new Error(`${data.storage.type} exports run on the service's thread`);

function post(message: FromWorker, transfer?: ArrayBuffer[]): void {
  port?.postMessage(message, transfer);
}

/** `countRecords`' increments, kept until the next message takes them. */
class Tally implements MetricsRecorder {
  private counts: Partial<Record<DataKind, number>> = {};

  inc(_name: string, labels?: Labels, by = 1): void {
    const kind = labels?.kind;
    if (kind !== undefined && isDataKind(kind)) this.counts[kind] = (this.counts[kind] ?? 0) + by;
  }

  time(): () => void {
    return () => undefined;
  }

  take(): RecordTally {
    const taken = this.counts;
    this.counts = {};
    return taken;
  }
}

function describe(err: unknown): WorkerError {
  if (err instanceof StorageError) return { kind: 'storage', code: err.code, message: err.message, retryable: err.retryable };
  if (err instanceof TransferError) return { kind: 'transfer', code: err.code, message: err.message };
  if (err instanceof Error) return { kind: 'other', name: err.name, message: err.message };
  return { kind: 'other', name: 'Error', message: String(err) };
}

interface Running {
  grant(n: number): void;
  cancel(): void;
}

const running = new Map<number, Running>();

async function run(message: Extract<ToWorker, { type: 'start' }>): Promise<void> {
  const { id } = message;
  const abort = new AbortController();
  let credit = message.credit;
  let wake: (() => void) | undefined;
  const resume = (): void => {
    const waiting = wake;
    wake = undefined;
    waiting?.();
  };
  running.set(id, {
    grant: (n) => {
      credit += n;
      resume();
    },
    cancel: () => {
      abort.abort();
      resume();
    },
  });
  const tally = new Tally();
  try {
    const events = countRecords(exportUserDocument(storage as NonNullable<typeof storage>, message.ref, new Set(message.kinds), abort.signal), tally, 'export');
    const chunks = writeDocument(events, { onInvalidChars: (replaced) => post({ type: 'invalid-chars', id, replaced }) });
    for await (const chunk of chunks) {
      while (credit === 0 && !abort.signal.aborted) await new Promise<void>((resolve) => (wake = resolve));
      // Leaving the loop stops the writer, which ends the storage read and its snapshot.
      if (abort.signal.aborted) break;
      credit--;
      // The chunk's memory is moved to the service, not copied, when the chunk is all of it (the
      // writer's full chunks each have their own, and never write to a chunk once yielded); a view
      // into a larger buffer (the short last chunk may be one, in Node's pool) is copied first,
      // since transferring it would take the whole buffer.
      const bytes = chunk.byteOffset === 0 && chunk.byteLength === chunk.buffer.byteLength ? chunk : new Uint8Array(chunk);
      post({ type: 'chunk', id, bytes, records: tally.take() }, [bytes.buffer as ArrayBuffer]);
    }
    if (!abort.signal.aborted) post({ type: 'end', id, records: tally.take() });
  } catch (err) {
    if (!abort.signal.aborted) post({ type: 'error', id, error: describe(err), records: tally.take() });
  } finally {
    running.delete(id);
  }
}

port.on('message', (message: ToWorker) => {
  switch (message.type) {
    case 'start':
      void run(message);
      break;
    case 'credit':
      running.get(message.id)?.grant(message.n);
      break;
    case 'cancel':
      running.get(message.id)?.cancel();
      break;
    case 'close':
      for (const export_ of running.values()) export_.cancel();
      void storage
        .close()
        .catch(() => undefined)
        .then(() => post({ type: 'closed' }));
      break;
  }
});
