/**
 * Messages between the service and its export workers (export-workers.ts, export-worker.ts).
 * Everything here is structured-cloned; chunk bytes are transferred, not copied.
 */
import type { StorageConfig, HostConfig } from '../config/types.js';
import type { DataKind } from '../records/model.js';
import type { UserRef } from '../storage/backend.js';
import type { InvalidCharsReplaced } from '../xep0227/writer.js';

/**
 * What a worker needs to open its own connection to the storage: the storage section and the
 * hosts, nothing else of the configuration (no tokens, no keys, no webhook secret).
 */
export interface ExportWorkerData {
  readonly storage: StorageConfig;
  readonly hosts: Readonly<Record<string, HostConfig>>;
}

/** Records of each kind written since the previous message, for `xporta_records_total`. */
export type RecordTally = Readonly<Partial<Record<DataKind, number>>>;

export type ToWorker =
  /** Starts export `id`; the worker may send `credit` chunks before it waits for more. */
  | { readonly type: 'start'; readonly id: number; readonly ref: UserRef; readonly kinds: readonly DataKind[]; readonly credit: number }
  /** The service took chunks: `n` more may be sent. */
  | { readonly type: 'credit'; readonly id: number; readonly n: number }
  /** The service no longer wants export `id` (client gone, stream destroyed). */
  | { readonly type: 'cancel'; readonly id: number }
  /** Close the storage and answer `closed`. */
  | { readonly type: 'close' };

/** An export's failure as the service's error table needs it (see errorFromWorker). */
export type WorkerError =
  | { readonly kind: 'storage'; readonly code: string; readonly message: string; readonly retryable: boolean }
  | { readonly kind: 'transfer'; readonly code: string; readonly message: string }
  | { readonly kind: 'other'; readonly name: string; readonly message: string };

export type FromWorker =
  | { readonly type: 'chunk'; readonly id: number; readonly bytes: Uint8Array; readonly records: RecordTally }
  | { readonly type: 'invalid-chars'; readonly id: number; readonly replaced: InvalidCharsReplaced }
  | { readonly type: 'end'; readonly id: number; readonly records: RecordTally }
  | { readonly type: 'error'; readonly id: number; readonly error: WorkerError; readonly records: RecordTally }
  | { readonly type: 'closed' };
