/**
 * Streamed exports on worker threads. better-sqlite3 reads synchronously, and writing a document
 * is CPU work: on the service's one thread, concurrent exports can only take turns. A small pool
 * of workers (export-worker.ts), each with its own connection to the storage, writes documents
 * side by side; the service keeps the account lock, the audit, the metrics and the HTTP answer,
 * and receives the bytes with backpressure: a worker sends a chunk only against credit, which the
 * service gives as the response's stream takes what it has.
 */
import { Readable } from 'node:stream';
import { Worker, type ResourceLimits } from 'node:worker_threads';
import type { Config } from '../config/config.js';
import type { DataKind } from '../records/model.js';
import { StorageError, type UserRef } from '../storage/backend.js';
import { TransferError } from '../transfer/account-transfer.js';
import { WRITER_CHUNK_BYTES, type InvalidCharsReplaced } from '../xep0227/writer.js';
import type { ExportWorkerData, FromWorker, RecordTally, ToWorker, WorkerError } from './export-worker-protocol.js';
import type { MetricsRecorder } from './metrics-recorder.js';

/** Chunks a worker may send ahead of what the response has taken (64 KiB each). */
const CREDIT_WINDOW = 8;

/** How long `close` waits for a worker to close its storage before it is stopped. */
const CLOSE_WAIT_MS = 5000;

export interface ExportWorkersOptions {
  /** Workers at most; each is started on first need and kept. */
  readonly size: number;
  readonly data: ExportWorkerData;
  /**
   * The worker's module and the flags it runs with; by default export-worker.js beside this
   * module, with the process's own flags. Tests running from TypeScript sources give a loader.
   */
  readonly entry?: { readonly url: URL; readonly execArgv?: readonly string[] };
  readonly resourceLimits?: ResourceLimits;
  /**
   * The service's thread is one of the threads exports share: a lone export runs there and costs
   * no second heap (a worker's isolate, its modules and its storage connection); the next goes to
   * a worker, and once the pool is full each new export goes to the least busy thread, the
   * service's counted with the workers. See {@link ExportWorkers.claimServiceThread}.
   */
  readonly serviceThreadFirst?: boolean;
}

export interface WorkerExportOptions {
  readonly metrics: MetricsRecorder;
  /** Stops the export (the client went away); the stream is destroyed. */
  readonly signal?: AbortSignal;
  /** Told of stored text XML 1.0 cannot carry, written as U+FFFD. */
  readonly onInvalidChars?: (replaced: InvalidCharsReplaced) => void;
}

/** An error a worker described, as the service's own code would have thrown it. */
function errorFromWorker(error: WorkerError): Error {
  if (error.kind === 'storage') return new StorageError(error.code as StorageError['code'], error.message, { retryable: error.retryable });
  if (error.kind === 'transfer') return new TransferError(error.code as TransferError['code'], error.message);
  const err = new Error(error.message);
  err.name = error.name;
  return err;
}

const STREAMED_EXPORT = { direction: 'export' } as const;

function countInto(metrics: MetricsRecorder, records: RecordTally): void {
  for (const [kind, n] of Object.entries(records)) if (n) metrics.inc('xporta_records_total', { direction: 'export', kind }, n);
}

/**
 * One export's bytes as they come from its worker, counted into `xporta_bytes_streamed_total` as
 * they arrive (at most the credit window ahead of what the response took): the stream can go to
 * the response as it is, with no counting stage in between.
 */
class WorkerExportStream extends Readable {
  /** Chunks the worker may still send. */
  private granted = CREDIT_WINDOW;
  private settled = false;

  constructor(
    private readonly send: (message: ToWorker) => void,
    private readonly id: number,
    private readonly options: WorkerExportOptions,
    private readonly forget: () => void,
  ) {
    super({ highWaterMark: WRITER_CHUNK_BYTES });
  }

  receive(message: Exclude<FromWorker, { type: 'closed' }>): void {
    if (this.settled) return;
    switch (message.type) {
      case 'chunk':
        this.granted--;
        countInto(this.options.metrics, message.records);
        this.options.metrics.inc('xporta_bytes_streamed_total', STREAMED_EXPORT, message.bytes.byteLength);
        this.push(Buffer.from(message.bytes.buffer, message.bytes.byteOffset, message.bytes.byteLength));
        break;
      case 'invalid-chars':
        this.options.onInvalidChars?.(message.replaced);
        break;
      case 'end':
        this.settle();
        countInto(this.options.metrics, message.records);
        this.push(null);
        break;
      case 'error':
        this.settle();
        countInto(this.options.metrics, message.records);
        this.destroy(errorFromWorker(message.error));
        break;
    }
  }

  /** The worker is gone (it crashed or the pool closed). */
  lost(err: Error): void {
    if (this.settled) return;
    this.settle();
    this.destroy(err);
  }

  override _read(): void {
    // Credit in batches: a message per chunk would double the messages for nothing.
    if (this.settled || this.granted > CREDIT_WINDOW / 2) return;
    this.send({ type: 'credit', id: this.id, n: CREDIT_WINDOW - this.granted });
    this.granted = CREDIT_WINDOW;
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (!this.settled) {
      this.settle();
      this.send({ type: 'cancel', id: this.id });
    }
    callback(err);
  }

  private settle(): void {
    this.settled = true;
    this.forget();
  }
}

interface Slot {
  readonly worker: Worker;
  readonly exports: Map<number, WorkerExportStream>;
}

export class ExportWorkers {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closed = false;
  /** Exports in progress on the service's thread. */
  private onServiceThread = 0;

  constructor(private readonly options: ExportWorkersOptions) {}

  /** Exports in progress on the workers. */
  get onWorkers(): number {
    return this.slots.reduce((n, slot) => n + slot.exports.size, 0);
  }

  /**
   * With `serviceThreadFirst`, when the next export should run on the service's thread (it runs
   * none, or the pool is full and no worker runs fewer): counts it there and answers the
   * (idempotent) release the caller calls when its export ends. Otherwise undefined: the export
   * goes to a worker.
   */
  claimServiceThread(): (() => void) | undefined {
    if (!this.options.serviceThreadFirst || this.closed) return undefined;
    if (this.onServiceThread > 0) {
      const poolFull = this.slots.length >= this.options.size;
      const leastOnWorker = Math.min(...this.slots.map((slot) => slot.exports.size));
      if (!poolFull || this.onServiceThread > leastOnWorker) return undefined;
    }
    this.onServiceThread++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.onServiceThread--;
    };
  }

  /** The account's whole document, written on a worker; failures destroy the stream. */
  export(ref: UserRef, kinds: ReadonlySet<DataKind>, options: WorkerExportOptions): Readable {
    if (this.closed) throw new Error('the export workers are closed');
    const slot = this.pick();
    const id = this.nextId++;
    const send = (message: ToWorker): void => slot.worker.postMessage(message);
    const stream = new WorkerExportStream(send, id, options, () => slot.exports.delete(id));
    slot.exports.set(id, stream);
    send({ type: 'start', id, ref: { host: ref.host, user: ref.user }, kinds: [...kinds], credit: CREDIT_WINDOW });
    const { signal } = options;
    if (signal) {
      const stop = (): void => void stream.destroy();
      if (signal.aborted) stop();
      else {
        signal.addEventListener('abort', stop, { once: true });
        stream.once('close', () => signal.removeEventListener('abort', stop));
      }
    }
    return stream;
  }

  /** Cancels the exports in progress, closes each worker's storage, and stops the workers. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.splice(0).map((slot) => this.stop(slot)));
  }

  /** An idle worker, a new one while the pool is not full, else the least busy. */
  private pick(): Slot {
    const idle = this.slots.find((s) => s.exports.size === 0);
    if (idle) return idle;
    if (this.slots.length < this.options.size) return this.start();
    return this.slots.reduce((a, b) => (b.exports.size < a.exports.size ? b : a));
  }

  private start(): Slot {
    const entry = this.options.entry ?? { url: new URL('./export-worker.js', import.meta.url) };
    const worker = new Worker(entry.url, {
      workerData: this.options.data,
      ...(entry.execArgv ? { execArgv: [...entry.execArgv] } : {}),
      ...(this.options.resourceLimits ? { resourceLimits: this.options.resourceLimits } : {}),
    });
    // Idle workers do not keep the process alive.
    worker.unref();
    const slot: Slot = { worker, exports: new Map() };
    worker.on('message', (message: FromWorker) => {
      if (message.type !== 'closed') slot.exports.get(message.id)?.receive(message);
    });
    const lost = (err: Error): void => {
      const index = this.slots.indexOf(slot);
      if (index >= 0) this.slots.splice(index, 1);
      for (const stream of [...slot.exports.values()]) stream.lost(err);
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`an export worker stopped (exit code ${code})`)));
    this.slots.push(slot);
    return slot;
  }

  private async stop(slot: Slot): Promise<void> {
    const { worker } = slot;
    const closed = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, CLOSE_WAIT_MS);
      timer.unref();
      worker.on('message', (message: FromWorker) => {
        if (message.type === 'closed') {
          clearTimeout(timer);
          resolve();
        }
      });
      worker.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    for (const stream of [...slot.exports.values()]) stream.lost(new Error('the service is shutting down'));
    worker.postMessage({ type: 'close' } satisfies ToWorker);
    await closed;
    await worker.terminate();
  }
}

/**
 * The service's export workers as its configuration asks (`exports.workers`); undefined when
 * that is 0 or the storage is Prosody's files (see openStorageReader). Only for a service whose
 * storage was opened from the same configuration: the workers open it again from there.
 */
export function exportWorkersFor(config: Pick<Config, 'exports' | 'storage' | 'hosts'>, entry?: ExportWorkersOptions['entry']): ExportWorkers | undefined {
  if (config.exports.workers === 0 || config.storage.type === 'prosody-files') return undefined;
  return new ExportWorkers({ size: config.exports.workers, data: { storage: config.storage, hosts: config.hosts }, serviceThreadFirst: true, ...(entry ? { entry } : {}) });
}
