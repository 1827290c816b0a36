/**
 * SQLite transactions on a worker thread (writer-worker.mjs). better-sqlite3 is synchronous: on the
 * main thread a caller that prepares its next statements (parsing a document) would wait while
 * SQLite executes each one. On a worker, statements sent ahead (see write-behind.ts) run while the
 * caller goes on.
 *
 * One worker per database, started on the first transaction and kept (unreferenced) for the next
 * ones; its single write connection runs one transaction at a time, so `begin` queues behind the
 * transaction in progress instead of failing on SQLite's lock.
 */
import { Worker } from 'node:worker_threads';
import type { SqlParam, SqlTransaction } from '../dialect.js';
import { PipelinedTransaction, type Executed } from '../write-behind.js';
import type { WriterOperation, WriterReply, WriterRequest, WriterWorkerData } from './writer-protocol.js';

/**
 * The writer connection's page cache, KiB (better-sqlite3's default is 16 MB). Connection-local:
 * other connections to the database keep theirs. A big load fills whatever cache there is, CREATE
 * INDEX sorts in pieces of its size, and the memory stays with the worker's allocator.
 */
const WRITER_CACHE_KIB = 8192;

const WORKER_URL = new URL('./writer-worker.mjs', import.meta.url);

/** An error raised on the worker's connection, as better-sqlite3 raised it. */
export class SqliteWorkerError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
    name: string,
  ) {
    super(message);
    this.name = name || 'SqliteError';
  }
}

export interface SqliteWriterOptions {
  readonly database: string;
  readonly busyTimeoutMs: number;
  /** What each transaction offers as {@link SqlTransaction.bulkLoad}'s threshold. */
  readonly bulkLoadThreshold: number;
}

export class SqliteWriter {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (reply: WriterReply) => void; reject: (err: Error) => void }>();
  /** Settles when the transaction in progress has ended. */
  private current: Promise<void> = Promise.resolve();

  constructor(private readonly options: SqliteWriterOptions) {}

  /**
   * Waits until the transaction in progress has ended; the caller's runs until it calls the
   * function returned. Transactions on other connections of this process (see dialect.ts) take
   * their turn here too, so that they never wait on each other's lock inside SQLite.
   */
  async turn(): Promise<() => void> {
    let ended!: () => void;
    const previous = this.current;
    this.current = new Promise<void>((resolve) => (ended = resolve));
    await previous;
    return ended;
  }

  /** Starts a transaction once the one in progress has ended. */
  async begin(): Promise<SqlTransaction> {
    const ended = await this.turn();
    try {
      await this.send('begin');
    } catch (err) {
      ended();
      throw err;
    }
    return new SqliteWorkerTransaction(this, ended, this.options.bulkLoadThreshold);
  }

  send(op: WriterOperation, sql?: string, params?: readonly SqlParam[]): Promise<WriterReply> {
    const worker = this.started();
    const id = this.nextId++;
    const request: WriterRequest = { id, op, sql, params };
    return new Promise<WriterReply>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage(request);
    }).then((reply) => {
      if (reply.error) throw new SqliteWorkerError(reply.error.message, reply.error.code, reply.error.name);
      return reply;
    });
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) await worker.terminate();
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const { database, busyTimeoutMs } = this.options;
    const workerData: WriterWorkerData = { database, busyTimeoutMs, cacheKib: WRITER_CACHE_KIB };
    const worker = new Worker(WORKER_URL, { workerData });
    worker.on('message', (reply: WriterReply) => {
      const waiter = this.waiting.get(reply.id);
      this.waiting.delete(reply.id);
      // Idle between transactions: it must not keep the process alive.
      if (this.waiting.size === 0) worker.unref();
      waiter?.resolve(reply);
    });
    const fail = (err: Error): void => {
      if (this.worker === worker) this.worker = undefined;
      for (const waiter of this.waiting.values()) waiter.reject(err);
      this.waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the SQLite worker exited (${code})`)));
    worker.unref();
    this.worker = worker;
    return worker;
  }
}

class SqliteWorkerTransaction extends PipelinedTransaction {
  readonly bulkLoad;

  constructor(
    private readonly writer: SqliteWriter,
    private readonly release: () => void,
    bulkLoadThreshold: number,
  ) {
    super();
    this.bulkLoad = { dialect: 'sqlite', threshold: bulkLoadThreshold } as const;
  }

  protected async execute(sql: string, params: readonly SqlParam[]): Promise<Executed> {
    const reply = await this.writer.send('exec', sql, params);
    return { rows: reply.rows ?? [], changes: reply.changes ?? 0 };
  }

  protected async end(commit: boolean): Promise<void> {
    try {
      await this.writer.send(commit ? 'commit' : 'rollback');
    } finally {
      this.release();
    }
  }
}
