/**
 * What every SQL storage backend does the same way over a {@link SqlDialect}, whatever server's
 * tables it reads: opening the dialect a configuration names, the database's account locks, the
 * health check, one transaction per import, snapshots, and the mapping of database failures to
 * {@link StorageError}s.
 */
import type { AccountLease, AccountLockMode } from '../account-lock.js';
import { StorageError, transientAsUnavailable, type StorageSnapshot, type UserRef } from '../backend.js';
import type { SqlDialect, SqlSession, SqlSnapshot, SqlTransaction } from './dialect.js';
import { MysqlDialect, type MysqlOptions } from './mysql/dialect.js';
import { PostgresqlDialect, type PostgresqlOptions } from './postgresql/dialect.js';
import { SqliteDialect, type SqliteOptions } from './sqlite/dialect.js';

/** A database to open: the dialect and its connection options. */
export type SqlConnection =
  | ({ readonly dialect: 'sqlite' } & SqliteOptions)
  | ({ readonly dialect: 'postgresql' } & PostgresqlOptions)
  | ({ readonly dialect: 'mysql' } & MysqlOptions);

/** Opens (lazily, for the networked ones) the database `options` name. */
export function openDialect(options: SqlConnection): SqlDialect {
  switch (options.dialect) {
    case 'sqlite':
      return SqliteDialect.open(options);
    case 'postgresql':
      return new PostgresqlDialect(options);
    case 'mysql':
      return new MysqlDialect(options);
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A backend's `lockAccount`. */
export type AccountLocks = (ref: UserRef, mode: AccountLockMode) => Promise<AccountLease | undefined>;

/**
 * The database's own account locks (see {@link SqlDialect.tryLock}) keyed by the bare JID, or
 * undefined where it has none (SQLite). A failure to ask is a retryable `unavailable` error.
 */
export function databaseAccountLocks(db: SqlDialect): AccountLocks | undefined {
  if (!db.tryLock) return undefined;
  const tryLock = db.tryLock.bind(db);
  return (ref, mode) =>
    tryLock(`${ref.user}@${ref.host}`, mode).catch((err: unknown) => {
      throw new StorageError('unavailable', `cannot take the account lock: ${messageOf(err)}`, { cause: err, retryable: true });
    });
}

/** Resolves when the database answers a statement; an `unavailable` error otherwise. */
export async function pingDatabase(db: SqlSession): Promise<void> {
  try {
    await db.query('SELECT 1 AS "one"');
  } catch (err) {
    throw new StorageError('unavailable', `database unreachable: ${messageOf(err)}`, { cause: err });
  }
}

/** A class of error that means the data (stored or given), not the database, is at fault. */
export type DataErrorClass = abstract new (...args: never[]) => Error;

/**
 * `err` as a backend reports it: an instance of one of `dataErrors` as an `invalid-data`
 * StorageError with its message, a database failure as transientAsUnavailable maps it, anything
 * else unchanged.
 */
export function storageErrorOf(err: unknown, dataErrors: readonly DataErrorClass[]): unknown {
  for (const type of dataErrors) {
    if (err instanceof type) return new StorageError('invalid-data', err.message, { cause: err });
  }
  return transientAsUnavailable(err);
}

/**
 * Runs `work` in one transaction, then rolls it back for a dry run or commits it. Failures, from
 * `begin` to the commit, reach the caller through `mapError`; the transaction is rolled back
 * first.
 */
export async function inTransaction<T>(db: SqlDialect, options: { readonly dryRun: boolean; readonly mapError: (err: unknown) => unknown }, work: (tx: SqlTransaction) => Promise<T>): Promise<T> {
  let tx: SqlTransaction;
  // A connection lost before the transaction opens is as transient as one lost inside it.
  try {
    tx = await db.begin();
  } catch (err) {
    throw options.mapError(err);
  }
  try {
    const result = await work(tx);
    if (options.dryRun) await tx.rollback();
    else await tx.commit();
    return result;
  } catch (err) {
    await tx.rollback().catch(() => undefined);
    throw options.mapError(err);
  }
}

/** The dialect's consistent read view (see {@link SqlDialect.snapshot}), undefined where it has none; failures through `mapError`. */
export async function openSnapshot(db: SqlDialect, mapError: (err: unknown) => unknown): Promise<SqlSnapshot | undefined> {
  if (!db.snapshot) return undefined;
  try {
    return await db.snapshot();
  } catch (err) {
    throw mapError(err);
  }
}

/**
 * A backend's {@link StorageSnapshot} on the dialect's read view: `reads` binds the backend's
 * readers to the view's session, and `close` ends it. Undefined where the dialect has none.
 */
export async function snapshotReads(
  db: SqlDialect,
  mapError: (err: unknown) => unknown,
  reads: (session: SqlSession) => Pick<StorageSnapshot, 'readAccount' | 'readUser'>,
): Promise<StorageSnapshot | undefined> {
  const session = await openSnapshot(db, mapError);
  if (!session) return undefined;
  return { ...reads(session), close: () => session.end() };
}
