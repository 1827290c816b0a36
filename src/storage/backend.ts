import type { AccountLease, AccountLockMode } from './account-lock.js';
import { isNoSpaceDatabaseError, isTransientDatabaseError } from './transient.js';
import type { DataKind, UserRecord, UserStart } from '../records/model.js';

/** A user account on a host, both normalised (see src/jid.ts). */
export interface UserRef {
  readonly host: string;
  readonly user: string;
}

export type ImportMode = 'replace' | 'merge';

export interface ApplyOptions {
  /** `replace` clears the selected kinds first; `merge` unions (incoming wins on conflict). */
  readonly mode: ImportMode;
  /** Validate and count everything, then roll back. */
  readonly dryRun: boolean;
  /** Kinds to apply; records of other kinds are counted as skipped. */
  readonly include: ReadonlySet<DataKind>;
  /** Create the account when it does not exist; otherwise an unknown user is an error. */
  readonly createAccount: boolean;
  /** Aborts the apply; the transaction is rolled back. */
  readonly signal?: AbortSignal;
}

export interface SkippedItem {
  readonly kind: DataKind;
  readonly reason: string;
  /** What was skipped, e.g. a node name or archive id; never a secret. */
  readonly detail?: string;
}

/** What an import did (or, with dryRun, would do). */
export interface ApplyReport {
  readonly user: string;
  readonly mode: ImportMode;
  readonly dryRun: boolean;
  /** The account did not exist and was created. */
  readonly created: boolean;
  /** Records applied per kind. */
  readonly counts: Partial<Record<DataKind, number>>;
  readonly skipped: readonly SkippedItem[];
  /** Kinds present in the input that this backend cannot store. */
  readonly unsupported: readonly DataKind[];
  /** Notes an operator should act on, e.g. "password must be reset". */
  readonly warnings: readonly string[];
}

export interface ReadOptions {
  readonly include: ReadonlySet<DataKind>;
  /** Stops the read from storage (client went away). */
  readonly signal?: AbortSignal;
}

/** Thrown by backends for conditions the API maps to specific statuses. */
export class StorageError extends Error {
  /**
   * `unavailable` only: the same operation may succeed when tried again (a lost connection, a
   * deadlock, a serialization failure); nothing of the failed attempt was stored.
   */
  readonly retryable: boolean;

  constructor(
    readonly code: 'user-not-found' | 'user-exists' | 'invalid-data' | 'unavailable' | 'conflict' | 'insufficient-storage',
    message: string,
    options?: { cause?: unknown; retryable?: boolean },
  ) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'StorageError';
    this.retryable = options?.retryable ?? false;
  }
}

/**
 * A database failure a later attempt may not meet as a retryable `unavailable` error, a full
 * database as `insufficient-storage`; anything else unchanged.
 */
export function transientAsUnavailable(err: unknown): unknown {
  if (err instanceof StorageError) return err;
  if (isNoSpaceDatabaseError(err)) {
    return new StorageError('insufficient-storage', 'the database is out of space; the import was rolled back', { cause: err });
  }
  if (!isTransientDatabaseError(err)) return err;
  const reason = err instanceof Error ? err.message : String(err);
  return new StorageError('unavailable', `storage temporarily unavailable: ${reason}`, { cause: err, retryable: true });
}

/** The reads of {@link StorageBackend} on one consistent view; `close` ends it. */
export interface StorageSnapshot {
  readAccount(ref: UserRef): Promise<UserStart | null>;
  readUser(ref: UserRef, options: ReadOptions): AsyncIterable<UserRecord>;
  /**
   * An account lock every process on the same storage honours, released by the storage when the
   * holder's process dies; undefined while another holder conflicts. Absent where the storage has
   * none (SQLite, Prosody's files): callers then use lock files (see account-lock.ts).
   */
  readonly lockAccount?: (ref: UserRef, mode: AccountLockMode) => Promise<AccountLease | undefined>;

  close(): Promise<void>;
}

/** The reads of {@link StorageBackend.readAccounts}. */
export interface AccountsRead extends StorageSnapshot {
  /** Read on one consistent view, which an import committing meanwhile shows wholly or not at all. */
  readonly consistent: boolean;
}

/**
 * Accounts applied one after another in one transaction. Each account is all-or-nothing on its
 * own (a savepoint): when its apply fails with anything but {@link BatchBrokenError}, nothing of
 * it is kept and the accounts before it in the batch are as they were. None of them is durable
 * (or visible to other connections) before `commit`; `rollback` drops them all. A dry-run batch
 * keeps nothing, and `commit` ends it like `rollback`.
 */
export interface ApplyBatch {
  /** As {@link StorageBackend.applyUser}, inside the batch; `options.dryRun` must be the batch's. */
  applyUser(ref: UserRef, account: UserStart, records: AsyncIterable<UserRecord>, options: ApplyOptions): Promise<ApplyReport>;
  commit(): Promise<void>;
  /** Safe to call after a failed commit, and more than once. */
  rollback(): Promise<void>;
}

/**
 * The batch's transaction can no longer be used (the connection was lost, a transient failure, a
 * savepoint that could not be rolled back to): the whole batch must be rolled back, and its
 * accounts applied again. `failure` is the account's own failure, as applyUser would report it.
 */
export class BatchBrokenError extends Error {
  constructor(readonly failure: unknown) {
    super(failure instanceof Error ? failure.message : String(failure), { cause: failure });
    this.name = 'BatchBrokenError';
  }
}

/**
 * One server's storage. Every backend (Prosody SQL, Prosody files, ejabberd SQL) implements this;
 * nothing above this interface knows a storage format.
 */
export interface StorageBackend {
  /** e.g. `prosody-sql:sqlite`. */
  readonly name: string;
  /** Data kinds this backend can read and store. */
  readonly supportedKinds: ReadonlySet<DataKind>;

  /** Throws when the storage cannot be reached. */
  ping(): Promise<void>;
  listHosts(): Promise<string[]>;
  listUsers(host: string): AsyncIterable<string>;
  userExists(ref: UserRef): Promise<boolean>;

  /** The `<user>` element's content: name and credentials. Null when the account does not exist. */
  readAccount(ref: UserRef): Promise<UserStart | null>;
  /** Every record of the selected kinds, streamed (archives with a cursor). */
  readUser(ref: UserRef, options: ReadOptions): AsyncIterable<UserRecord>;

  /**
   * A consistent view for one account's export: `readAccount` and `readUser` on it see the
   * storage as it was at one moment, whatever imports commit meanwhile. Resolves to undefined
   * when this storage gives none (see README); absent on backends without snapshots.
   */
  snapshot?(): Promise<StorageSnapshot | undefined>;

  /**
   * Reads for a run of a host's accounts (a host export), fetched for all of them at once rather
   * than account by account: `readAccount` and `readUser` of those accounts, the latter with the
   * same `options.include`, give what the backend's own would, on one consistent view where the
   * storage gives one (as {@link snapshot}). Memory is bounded by the run, however big an
   * account's archive. `close` ends it. Absent on backends that read account by account.
   */
  readAccounts?(host: string, users: readonly string[], options: ReadOptions): Promise<AccountsRead>;

  /**
   * Applies an account and its records in one transaction: either everything is stored or
   * nothing is. `account` carries the credentials (applied when `credentials` is included).
   */
  applyUser(
    ref: UserRef,
    account: UserStart,
    records: AsyncIterable<UserRecord>,
    options: ApplyOptions,
  ): Promise<ApplyReport>;

  /**
   * Several accounts' imports in one storage transaction, for many small accounts (a host
   * import): see {@link ApplyBatch}. Absent on backends that apply each account alone.
   */
  beginBatch?(options: {
    readonly dryRun: boolean;
    /** The accounts the batch is expected to apply, in order: a hint that lets the backend look them up at once (others may come, some may not). */
    readonly users?: readonly UserRef[];
  }): Promise<ApplyBatch>;

  /**
   * An account lock every process on the same storage honours, released by the storage when the
   * holder's process dies; undefined while another holder conflicts. Absent where the storage has
   * none (SQLite, Prosody's files): callers then use lock files (see account-lock.ts).
   */
  readonly lockAccount?: (ref: UserRef, mode: AccountLockMode) => Promise<AccountLease | undefined>;

  close(): Promise<void>;
}
