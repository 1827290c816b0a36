/**
 * SQLite transactions on a worker thread. better-sqlite3 is synchronous: on the main thread an
 * import parses the document and then waits while SQLite inserts each batch, one core idle. On a
 * worker, the INSERTs of one batch run while the next batch is parsed (see write-behind.ts).
 *
 * One worker per database, started on the first transaction and kept (unreferenced) for the next
 * ones; its single write connection runs one transaction at a time, so `begin` queues behind the
 * transaction in progress instead of failing on SQLite's lock.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { ArchiveBulkLoad, SqlParam, SqlRow, SqlTransaction } from '../dialect.js';
import type { Owner } from '../../prosody-sql/rows.js';
import { SqliteArchiveBulkLoad } from '../../prosody-sql/sqlite-bulk.js';
import { PipelinedTransaction, type Executed } from '../write-behind.js';

type Operation = 'begin' | 'exec' | 'commit' | 'rollback';

interface Reply {
  readonly id: number;
  readonly rows?: SqlRow[];
  readonly changes?: number;
  readonly error?: { readonly name: string; readonly message: string; readonly code?: string };
}

/**
 * The writer connection's page cache, KiB (better-sqlite3's default is 16 MB). Connection-local:
 * Prosody's own connections keep theirs. A big import fills whatever cache there is and CREATE
 * INDEX sorts in pieces of its size, and the memory stays with the worker's allocator: a 1M-message
 * import peaked at 135–143 MiB RSS with 16 MB, 127 MiB with 8 MB (23.3–23.7 s against 23.6–24.1 s);
 * 100k messages took about 3% longer with 4 MB.
 */
const WRITER_CACHE_KIB = 8192;

/**
 * Plain JavaScript, run with `eval` so that it works from the TypeScript sources (tests) as from
 * the build. One message, one statement, one reply, in order.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
let db;
const statements = new Map();
function prepare(sql) {
  let statement = statements.get(sql);
  if (!statement) {
    statement = db.prepare(sql);
    statements.set(sql, statement);
  }
  return statement;
}
function close() {
  statements.clear();
  db.close();
  db = undefined;
}
parentPort.on('message', ({ id, op, sql, params }) => {
  try {
    switch (op) {
      case 'begin':
        db = new Database(workerData.database, { timeout: workerData.busyTimeoutMs });
        db.pragma('cache_size = -' + workerData.cacheKib);
        try {
          // The write lock now, rather than failing to upgrade a read lock halfway through an import.
          db.exec('BEGIN IMMEDIATE');
        } catch (err) {
          close();
          throw err;
        }
        return parentPort.postMessage({ id });
      case 'exec': {
        const statement = prepare(sql);
        if (statement.reader) return parentPort.postMessage({ id, rows: statement.all(...params) });
        return parentPort.postMessage({ id, changes: statement.run(...params).changes });
      }
      case 'commit':
        try {
          db.exec('COMMIT');
        } finally {
          close();
        }
        return parentPort.postMessage({ id });
      case 'rollback':
        if (db) {
          try {
            if (db.inTransaction) db.exec('ROLLBACK');
          } finally {
            close();
          }
        }
        return parentPort.postMessage({ id });
    }
  } catch (err) {
    parentPort.postMessage({ id, error: { name: err && err.name, message: err instanceof Error ? err.message : String(err), code: err && err.code } });
  }
});
`;

const driverPath = createRequire(import.meta.url).resolve('better-sqlite3');

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
  /** Archive rows an import inserts before it may drop the indexes (see sqlite-bulk.ts). */
  readonly bulkLoadThreshold: number;
}

export class SqliteWriter {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (reply: Reply) => void; reject: (err: Error) => void }>();
  /** Settles when the transaction in progress has ended. */
  private current: Promise<void> = Promise.resolve();

  constructor(private readonly options: SqliteWriterOptions) {}

  /** Starts a transaction once the one in progress has ended. */
  async begin(): Promise<SqlTransaction> {
    let ended!: () => void;
    const previous = this.current;
    this.current = new Promise<void>((resolve) => (ended = resolve));
    await previous;
    try {
      await this.send('begin');
    } catch (err) {
      ended();
      throw err;
    }
    return new SqliteWorkerTransaction(this, ended, this.options.bulkLoadThreshold);
  }

  send(op: Operation, sql?: string, params?: readonly SqlParam[]): Promise<Reply> {
    const worker = this.started();
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, op, sql, params });
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
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver: driverPath, database, busyTimeoutMs, cacheKib: WRITER_CACHE_KIB } });
    worker.on('message', (reply: Reply) => {
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
  private readonly bulkLoads: SqliteArchiveBulkLoad[] = [];

  constructor(
    private readonly writer: SqliteWriter,
    private readonly release: () => void,
    private readonly bulkLoadThreshold: number,
  ) {
    super();
  }

  async bulkLoadArchive(owner: Owner, store: string): Promise<ArchiveBulkLoad | undefined> {
    const load = await SqliteArchiveBulkLoad.start(this, owner, store, this.bulkLoadThreshold);
    if (load) this.bulkLoads.push(load);
    return load;
  }

  /** Never with an archive's indexes dropped: Prosody would go on without them. */
  override async commit(): Promise<void> {
    if (this.bulkLoads.some((load) => load.unchecked)) throw new Error('prosodyarchive’s indexes were not rebuilt: the transaction cannot commit');
    await super.commit();
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
