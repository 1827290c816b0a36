/**
 * The messages between {@link SqliteWriter} and its worker (writer-worker.mjs). The worker answers
 * each request with one reply of the same id, in the order the requests came.
 */
import type { SqlParam, SqlRow } from '../dialect.js';

export type WriterOperation = 'begin' | 'exec' | 'commit' | 'rollback';

export interface WriterRequest {
  readonly id: number;
  readonly op: WriterOperation;
  /** `exec` only. */
  readonly sql?: string;
  /** `exec` only. */
  readonly params?: readonly SqlParam[];
}

/** An error better-sqlite3 raised, as far as it survives the structured clone. */
export interface WriterFailure {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
}

export interface WriterReply {
  readonly id: number;
  /** `exec` of a statement that returns rows. */
  readonly rows?: SqlRow[];
  /** `exec` of any other statement. */
  readonly changes?: number;
  readonly error?: WriterFailure;
}

/** What the worker is started with. */
export interface WriterWorkerData {
  readonly database: string;
  readonly busyTimeoutMs: number;
  /** The write connection's page cache, KiB. */
  readonly cacheKib: number;
}
