/**
 * Several accounts' imports in one SQL transaction ({@link ApplyBatch}): one BEGIN and one commit
 * (one fsync) for all of them, each account under a savepoint of its own, so that one that fails
 * is undone alone. A failure the transaction may not survive (a lost connection, a deadlock, a
 * savepoint that cannot be rolled back to) breaks the batch: {@link BatchBrokenError}. An account
 * whose apply runs no statement ({@link BatchHooks.statementless}: its rows are written by
 * {@link BatchHooks.beforeCommit}) needs no savepoint: failing, it has changed nothing.
 */
import { BatchBrokenError, StorageError, type ApplyBatch, type ApplyOptions, type ApplyReport, type UserRef } from '../backend.js';
import type { UserRecord, UserStart } from '../../records/model.js';
import type { SqlDialect, SqlParam, SqlSession, SqlTransaction } from './dialect.js';

/** One account's import on the batch's transaction. */
export type BatchedApply = (tx: SqlTransaction, ref: UserRef, account: UserStart, records: AsyncIterable<UserRecord>, options: ApplyOptions) => Promise<ApplyReport>;

/**
 * The transaction as one account of a batch sees it: without {@link SqlTransaction.bulkLoad}
 * (dropping a table's indexes is for one big account alone, and a check it registers would
 * outlive a savepoint rolled back) and without commit or rollback, which are the batch's.
 */
function accountView(tx: SqlTransaction): SqlTransaction {
  const refuse = (): Promise<void> => Promise.reject(new Error('an account of a batch cannot end its transaction'));
  return {
    query: (sql: string, params?: readonly SqlParam[]) => tx.query(sql, params),
    run: (sql: string, params?: readonly SqlParam[]) => tx.run(sql, params),
    ...(tx.queryArrays ? { queryArrays: tx.queryArrays.bind(tx) } : {}),
    ...(tx.write ? { write: tx.write.bind(tx) } : {}),
    ...(tx.refreshStatistics ? { refreshStatistics: tx.refreshStatistics.bind(tx) } : {}),
    commit: refuse,
    rollback: refuse,
  };
}

/** What a backend adds to a batch's transaction. */
export interface BatchHooks {
  /** Runs first on the transaction; a failure ends the batch before it began. */
  readonly begun?: (tx: SqlSession) => Promise<void>;
  /** Whether the account's apply will run no statement on the transaction (asked before it). */
  readonly statementless?: (ref: UserRef) => boolean;
  /** Runs last before the commit (and before a dry run's rollback); a failure fails the commit. */
  readonly beforeCommit?: (tx: SqlSession) => Promise<void>;
}

export async function openApplyBatch(
  db: SqlDialect,
  options: { readonly dryRun: boolean; readonly mapError: (err: unknown) => unknown },
  apply: BatchedApply,
  hooks: BatchHooks = {},
): Promise<ApplyBatch> {
  let tx: SqlTransaction;
  try {
    tx = await (db.beginShort ? db.beginShort() : db.begin());
  } catch (err) {
    throw options.mapError(err);
  }
  try {
    await hooks.begun?.(tx);
  } catch (err) {
    await tx.rollback().catch(() => undefined);
    throw options.mapError(err);
  }
  const { savepoint, rollbackToSavepoint, releaseSavepoint } = tx;
  if (!savepoint || !rollbackToSavepoint || !releaseSavepoint) {
    await tx.rollback().catch(() => undefined);
    throw new Error(`${db.name} transactions have no savepoints`);
  }
  const view = accountView(tx);
  let broken: BatchBrokenError | undefined;
  let ended = false;

  return {
    async applyUser(ref, account, records, applyOptions) {
      if (ended) throw new Error('the batch has ended');
      if (broken) throw broken;
      if (applyOptions.dryRun !== options.dryRun) throw new Error('an account of a batch is a dry run exactly when the batch is');
      if (hooks.statementless?.(ref)) {
        try {
          return await apply(view, ref, account, records, applyOptions);
        } catch (err) {
          throw options.mapError(err);
        }
      }
      // One name serves: each account's savepoint is released before the next one's is made.
      const name = 'xporta_account';
      try {
        await savepoint.call(tx, name);
      } catch (err) {
        throw (broken = new BatchBrokenError(options.mapError(err)));
      }
      try {
        const report = await apply(view, ref, account, records, applyOptions);
        // A dry run keeps nothing of an account, not even for the next accounts of its batch to see.
        if (options.dryRun) await rollbackToSavepoint.call(tx, name);
        await releaseSavepoint.call(tx, name);
        return report;
      } catch (err) {
        const failure = options.mapError(err);
        try {
          await rollbackToSavepoint.call(tx, name);
          await releaseSavepoint.call(tx, name);
        } catch {
          throw (broken = new BatchBrokenError(failure));
        }
        // A transient failure may have cost the transaction more than this account's statements.
        if (failure instanceof StorageError && failure.retryable) throw (broken = new BatchBrokenError(failure));
        throw failure;
      }
    },

    async commit() {
      if (ended) throw new Error('the batch has ended');
      if (broken) throw broken;
      ended = true;
      try {
        await hooks.beforeCommit?.(tx);
        if (options.dryRun) await tx.rollback();
        else await tx.commit();
      } catch (err) {
        await tx.rollback().catch(() => undefined);
        throw options.mapError(err);
      }
    },

    async rollback() {
      ended = true;
      await tx.rollback();
    },
  };
}
