/**
 * Whole-host transfer. Export streams every account of a host in one document. Import reads a
 * spooled document twice: a first pass validates all of it (so a broken tail changes nothing)
 * and measures each account; a second applies each account all-or-nothing and reports per
 * account. Small accounts are committed in groups (one transaction, one fsync, for many of them;
 * see {@link HostBatching}), a bigger one in a transaction of its own.
 */
import { bareJid } from '../lib/jid.js';
import { withRetries, type RetryPolicy } from '../storage/retry.js';
import { BatchBrokenError, type ApplyBatch, type ApplyOptions, type ApplyReport, type StorageBackend, type UserRef } from '../storage/backend.js';
import { TransferError, accountEvents, userEvents, withWarnings } from './account-transfer.js';
import type { DataKind, DocumentEvent, UserRecord, UserStart } from '../records/model.js';

/** A held account lease, as the caller's lock service hands it out. */
export interface Lease {
  release(): void;
}

const NO_LOCK: Lease = { release: () => undefined };

export interface HostProgress {
  /** Accounts finished so far. */
  done: number;
  /** Accounts in the document (known after validation), or undefined while exporting. */
  total?: number;
  failed: number;
}

export async function* exportHostDocument(
  storage: StorageBackend,
  host: string,
  kinds: ReadonlySet<DataKind>,
  options: {
    signal?: AbortSignal;
    onUser?: (user: string, progress: HostProgress) => void;
    /**
     * Takes the account's shared lease (the one a user export takes) while it is read; released
     * after its last record. Not taken where the storage reads a run of accounts on one
     * consistent view (StorageBackend.readAccounts), which never shows an import halfway.
     */
    lockAccount?: (jid: string) => Promise<Lease>;
    /** Accounts read at once where the storage can (default {@link EXPORT_RUN_ACCOUNTS}). */
    runAccounts?: number;
  } = {},
): AsyncGenerator<DocumentEvent> {
  const progress: HostProgress = { done: 0, failed: 0 };
  yield { kind: 'host', jid: host };
  if (storage.readAccounts) {
    yield* exportInRuns(storage as StorageBackend & Required<Pick<StorageBackend, 'readAccounts'>>, host, kinds, options, progress);
    if (!options.signal?.aborted) yield { kind: 'host-end' };
    return;
  }
  for await (const user of storage.listUsers(host)) {
    if (options.signal?.aborted) return;
    const lease = options.lockAccount ? await options.lockAccount(bareJid(`${user}@${host}`)) : NO_LOCK;
    try {
      yield* userEvents(storage, { host, user }, kinds, options.signal);
    } finally {
      lease.release();
    }
    progress.done++;
    options.onUser?.(user, progress);
  }
  yield { kind: 'host-end' };
}

/** Accounts a host export reads at once where the storage can (see StorageBackend.readAccounts). */
const EXPORT_RUN_ACCOUNTS = 256;

/**
 * The host's accounts a run at a time, read set-wise. Where the run is read on one consistent
 * view no lease is taken (the view never shows an import halfway); otherwise the run's accounts
 * are leased first (in order, as one by one), read, and each released after its last record.
 */
async function* exportInRuns(
  storage: StorageBackend & Required<Pick<StorageBackend, 'readAccounts'>>,
  host: string,
  kinds: ReadonlySet<DataKind>,
  options: { signal?: AbortSignal; onUser?: (user: string, progress: HostProgress) => void; lockAccount?: (jid: string) => Promise<Lease>; runAccounts?: number },
  progress: HostProgress,
): AsyncGenerator<DocumentEvent> {
  const users = storage.listUsers(host)[Symbol.asyncIterator]();
  const readOptions = { include: kinds, ...(options.signal ? { signal: options.signal } : {}) };
  try {
    for (let ended = false; !ended; ) {
      const run: string[] = [];
      while (run.length < (options.runAccounts ?? EXPORT_RUN_ACCOUNTS)) {
        const next = await users.next();
        if (next.done) {
          ended = true;
          break;
        }
        run.push(next.value);
      }
      if (run.length === 0 || options.signal?.aborted) return;
      const leases: Lease[] = [];
      let released = 0;
      try {
        let reader = await storage.readAccounts(host, run, readOptions);
        if (!reader.consistent && options.lockAccount) {
          // Without one view, each account is read under its lease: the run's are taken, then read again.
          await reader.close();
          for (const user of run) leases.push(await options.lockAccount(bareJid(`${user}@${host}`)));
          reader = await storage.readAccounts(host, run, readOptions);
        }
        try {
          for (let i = 0; i < run.length; i++) {
            if (options.signal?.aborted) return;
            const user = run[i] as string;
            yield* accountEvents(reader, { host, user }, kinds, options.signal);
            leases[i]?.release();
            released = i + 1;
            progress.done++;
            options.onUser?.(user, progress);
          }
        } finally {
          await reader.close().catch(() => undefined);
        }
      } finally {
        for (const lease of leases.slice(released)) lease.release();
      }
    }
  } finally {
    await users.return?.();
  }
}

/** What the first pass learns of a host's accounts, in document order. */
export interface HostOutline {
  readonly users: readonly string[];
  /** Records (contacts, messages, …) of each account, in the same order. */
  readonly sizes: readonly number[];
}

/**
 * First pass: the document is well-formed, valid, holds one host (the expected one) and no
 * user twice. Returns the account names and sizes in document order.
 */
export async function validateHostDocument(events: AsyncIterable<DocumentEvent>, host: string): Promise<HostOutline> {
  const users: string[] = [];
  const sizes: number[] = [];
  let hosts = 0;
  for await (const event of events) {
    if (event.kind === 'host') {
      hosts++;
      if (hosts > 1) throw new TransferError('wrong-structure', 'a host import takes a document with one host');
      if (event.jid !== host) throw new TransferError('wrong-structure', `the document is for host ${event.jid}, not ${host}`);
    } else if (event.kind === 'user') {
      users.push(event.name);
      sizes.push(0);
    } else if (event.kind !== 'user-end' && event.kind !== 'host-end' && sizes.length > 0) {
      sizes[sizes.length - 1] = (sizes[sizes.length - 1] ?? 0) + 1;
    }
  }
  if (hosts === 0) throw new TransferError('wrong-structure', 'the document contains no host');
  return { users, sizes };
}

/**
 * How small accounts are grouped into one transaction: an account of at most `smallAccount`
 * records joins the group in progress; a group is committed once it holds `accounts` accounts or
 * `records` records, before a bigger account (which has a transaction of its own), and at the end.
 */
export interface HostBatching {
  readonly accounts: number;
  readonly records: number;
  readonly smallAccount: number;
}

export const DEFAULT_HOST_BATCHING: HostBatching = { accounts: 500, records: 10_000, smallAccount: 1_000 };

/** One account of a host import: its report, or why it failed. */
export type HostAccountOutcome = ApplyReport | { readonly user: string; readonly error: string };

export interface HostImportResult {
  readonly host: string;
  /** Each account's outcome in document order; empty when they went to `onOutcome`. */
  readonly users: readonly HostAccountOutcome[];
  readonly progress: HostProgress;
}

/** An account of the group in progress: its lease is held until the group has ended. */
interface GroupedAccount {
  readonly jid: string;
  readonly position: number;
  readonly start: UserStart;
  readonly warnings: readonly string[] | undefined;
  readonly lease: Lease | undefined;
  outcome: HostAccountOutcome;
  /** Its apply broke the group's transaction: it is applied again with the others. */
  broke?: boolean;
}

function errorOutcome(jid: string, err: unknown): HostAccountOutcome {
  return { user: jid, error: err instanceof Error ? err.message : String(err) };
}

/**
 * Second pass: each account all-or-nothing; a failing account is reported, the rest go on.
 * Given the first pass's `sizes` and a storage with {@link StorageBackend.beginBatch}, small
 * accounts are grouped (see {@link HostBatching}): an account reaches its report, `onUser` and
 * `progress.done` once its group is committed, and holds its lease until then. A group whose
 * transaction breaks or cannot commit is rolled back whole and its accounts applied again one by
 * one (with `reopen`), or reported failed (without).
 */
export async function importHostDocument(
  storage: StorageBackend,
  host: string,
  events: AsyncIterable<DocumentEvent>,
  options: Omit<ApplyOptions, 'signal'> & {
    signal?: AbortSignal;
    total?: number;
    /** Records per account in document order ({@link HostOutline.sizes}); without them each account has its own transaction. */
    sizes?: readonly number[];
    /** The account names in document order ({@link HostOutline.users}): a group's are looked up at once where the storage can. */
    users?: readonly string[];
    batching?: HostBatching;
    onUser?: (user: string, progress: HostProgress) => void;
    /**
     * Given, each account's outcome goes here, in document order, once it is final, and the
     * result's `users` stays empty: a caller that writes the report as it goes holds no account's.
     */
    onOutcome?: (outcome: HostAccountOutcome) => void;
    /**
     * Takes the account's exclusive lock (the one user imports and exports take), or returns
     * undefined when another operation holds it: that account is then reported as failed with a
     * conflict and left untouched, never overwritten behind the other operation's back.
     */
    lockAccount?: (jid: string) => Lease | undefined | Promise<Lease | undefined>;
    /**
     * Reads the same document again from its start (the spool). With it, an account whose apply
     * failed for a transient reason (StorageError.retryable) is applied again from a fresh read,
     * as a user import would be (see retry.ts); without it, it is reported as failed.
     */
    reopen?: () => AsyncIterable<DocumentEvent>;
    retryPolicy?: RetryPolicy;
  },
): Promise<HostImportResult> {
  const progress: HostProgress = { done: 0, failed: 0, ...(options.total !== undefined ? { total: options.total } : {}) };
  const results: HostAccountOutcome[] = [];
  const iterator = events[Symbol.asyncIterator]();
  const reopen = options.reopen;
  const batching = options.batching ?? DEFAULT_HOST_BATCHING;
  const sizes = storage.beginBatch ? options.sizes : undefined;

  async function* recordsUntilUserEnd(from: AsyncIterator<DocumentEvent> = iterator): AsyncGenerator<UserRecord> {
    for (;;) {
      const next = await from.next();
      if (next.done || next.value.kind === 'user-end') return;
      const event = next.value;
      if (event.kind === 'host' || event.kind === 'host-end' || event.kind === 'user') {
        throw new TransferError('wrong-structure', 'unexpected structure inside a user');
      }
      yield event;
    }
  }

  /** Applies the `index`-th account (0-based) again, from a fresh read of the document. */
  async function applyAgain(index: number, account: UserStart): Promise<ApplyReport> {
    const again = (reopen as () => AsyncIterable<DocumentEvent>)()[Symbol.asyncIterator]();
    try {
      for (let seen = -1; seen < index; ) {
        const next = await again.next();
        if (next.done) throw new TransferError('wrong-structure', 'the spooled document ended before the account to retry');
        if (next.value.kind === 'user') seen++;
      }
      return await storage.applyUser({ host, user: account.name }, account, recordsUntilUserEnd(again), options);
    } finally {
      await again.return?.();
    }
  }

  /** One account in a transaction of its own, from `from` (then, on retries, from fresh reads). */
  async function applyAlone(position: number, start: UserStart, warnings: readonly string[] | undefined, from: AsyncIterator<DocumentEvent>): Promise<HostAccountOutcome> {
    const jid = bareJid(`${start.name}@${host}`);
    try {
      const apply = (attempt: number): Promise<ApplyReport> =>
        attempt === 1 ? storage.applyUser({ host, user: start.name }, start, recordsUntilUserEnd(from), options) : applyAgain(position, start);
      const report = reopen ? await withRetries(apply, options.retryPolicy, undefined, options.signal) : await apply(1);
      return withWarnings(report, warnings);
    } catch (err) {
      // What the failed apply left unread of this user is skipped by the caller's loop.
      return errorOutcome(jid, err);
    }
  }

  function finished(jid: string, outcome: HostAccountOutcome): void {
    if (options.onOutcome) options.onOutcome(outcome);
    else results.push(outcome);
    if ('error' in outcome) progress.failed++;
    progress.done++;
    options.onUser?.(jid, progress);
  }

  /** The accounts of a group that broke, each alone, from one fresh read of the document. */
  async function applyGroupAgain(accounts: readonly GroupedAccount[], failure: unknown): Promise<void> {
    if (!reopen) {
      for (const account of accounts) account.outcome = errorOutcome(account.jid, failure);
      return;
    }
    const again = reopen()[Symbol.asyncIterator]();
    try {
      let seen = -1;
      for (const account of accounts) {
        while (seen < account.position) {
          const next = await again.next();
          if (next.done) throw new TransferError('wrong-structure', 'the spooled document ended before the account to apply again');
          if (next.value.kind === 'user') seen++;
        }
        account.outcome = await applyAlone(account.position, account.start, account.warnings, again);
      }
    } catch (err) {
      for (const account of accounts) if (!('mode' in account.outcome) || account.outcome === undefined) account.outcome = errorOutcome(account.jid, err);
    } finally {
      await again.return?.();
    }
  }

  let group: { batch: ApplyBatch; accounts: GroupedAccount[]; records: number } | undefined;

  /** The accounts a group begun at `position` will hold, as {@link HostBatching} ends it: what beginBatch is told to expect. */
  function groupFrom(position: number): UserRef[] {
    const names = options.users;
    if (!names || !sizes) return [];
    const refs: UserRef[] = [];
    let records = 0;
    for (let i = position; i < names.length && refs.length < batching.accounts && records < batching.records; i++) {
      const size = sizes[i];
      const user = names[i];
      if (size === undefined || user === undefined || size > batching.smallAccount) break;
      refs.push({ host, user });
      records += size;
    }
    return refs;
  }

  /** Commits the group in progress, reports its accounts in document order and releases their leases. */
  async function endGroup(): Promise<void> {
    const current = group;
    if (!current) return;
    group = undefined;
    try {
      const broke = current.accounts.find((a) => a.broke);
      let failure: unknown = broke ? (broke.outcome as { error: string }).error : undefined;
      if (failure === undefined) {
        try {
          await current.batch.commit();
        } catch (err) {
          failure = err;
        }
      }
      if (failure !== undefined) {
        await current.batch.rollback().catch(() => undefined);
        // Accounts that failed on their own changed nothing and keep their report; the others are applied again.
        await applyGroupAgain(current.accounts.filter((a) => a.lease && (a.broke || 'mode' in a.outcome)), failure);
      }
    } finally {
      for (const account of current.accounts) {
        account.lease?.release();
        finished(account.jid, account.outcome);
      }
    }
  }

  try {
    let index = -1;
    for (;;) {
      if (options.signal?.aborted) break;
      const next = await iterator.next();
      if (next.done) break;
      if (next.value.kind !== 'user') continue;
      index++;
      const { warnings, ...start } = next.value;
      const position = index;
      const jid = bareJid(`${start.name}@${host}`);
      const size = sizes?.[position];
      const grouped = size !== undefined && size <= batching.smallAccount;
      if (!grouped) await endGroup();
      const lease = options.lockAccount ? await options.lockAccount(jid) : NO_LOCK;
      // Its records are skipped by this loop, like those of a failed apply.
      const conflict = { user: jid, error: `conflict: another operation on ${jid} is running; the account was not changed` };
      if (grouped) {
        if (!group && lease) {
          const batch = await storage.beginBatch?.({ dryRun: options.dryRun, users: groupFrom(position) }).catch(() => undefined);
          if (batch) group = { batch, accounts: [], records: 0 };
        }
        if (group) {
          const account: GroupedAccount = { jid, position, start, warnings, lease, outcome: conflict };
          group.accounts.push(account);
          if (lease) {
            try {
              account.outcome = withWarnings(await group.batch.applyUser({ host, user: start.name }, start, recordsUntilUserEnd(), options), warnings);
            } catch (err) {
              account.broke = err instanceof BatchBrokenError;
              account.outcome = errorOutcome(jid, err);
            }
          }
          group.records += size;
          if (account.broke || group.accounts.length >= batching.accounts || group.records >= batching.records) await endGroup();
          continue;
        }
      }
      if (!lease) {
        finished(jid, conflict);
        continue;
      }
      try {
        finished(jid, await applyAlone(position, start, warnings, iterator));
      } finally {
        lease.release();
      }
    }
  } finally {
    // Accounts applied before a cancel or a failure of the document's read are kept, as they would be one by one.
    await endGroup();
  }
  return { host, users: results, progress };
}
