/**
 * Whole-host transfer. Export streams every account of a host in one document. Import reads a
 * spooled document twice: a first pass validates all of it (so a broken tail changes nothing),
 * a second applies each account in its own storage transaction and reports per account.
 */
import { bareJid } from '../lib/jid.js';
import { withRetries, type RetryPolicy } from '../storage/retry.js';
import type { ApplyOptions, ApplyReport, StorageBackend } from '../storage/backend.js';
import { TransferError, userEvents, withWarnings } from './account-transfer.js';
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
    /** Takes the account's shared lease (the one a user export takes) while it is read; released after its last record. */
    lockAccount?: (jid: string) => Promise<Lease>;
  } = {},
): AsyncGenerator<DocumentEvent> {
  const progress: HostProgress = { done: 0, failed: 0 };
  yield { kind: 'host', jid: host };
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

/**
 * First pass: the document is well-formed, valid, holds one host (the expected one) and no
 * user twice. Returns the account names in document order.
 */
export async function validateHostDocument(events: AsyncIterable<DocumentEvent>, host: string): Promise<string[]> {
  const users: string[] = [];
  let hosts = 0;
  for await (const event of events) {
    if (event.kind === 'host') {
      hosts++;
      if (hosts > 1) throw new TransferError('wrong-structure', 'a host import takes a document with one host');
      if (event.jid !== host) throw new TransferError('wrong-structure', `the document is for host ${event.jid}, not ${host}`);
    } else if (event.kind === 'user') {
      users.push(event.name);
    }
  }
  if (hosts === 0) throw new TransferError('wrong-structure', 'the document contains no host');
  return users;
}

export interface HostImportResult {
  readonly host: string;
  readonly users: readonly (ApplyReport | { readonly user: string; readonly error: string })[];
  readonly progress: HostProgress;
}

/** Second pass: each account in one transaction; a failing account is reported, the rest go on. */
export async function importHostDocument(
  storage: StorageBackend,
  host: string,
  events: AsyncIterable<DocumentEvent>,
  options: Omit<ApplyOptions, 'signal'> & {
    signal?: AbortSignal;
    total?: number;
    onUser?: (user: string, progress: HostProgress) => void;
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
  const results: (ApplyReport | { user: string; error: string })[] = [];
  const iterator = events[Symbol.asyncIterator]();
  const reopen = options.reopen;

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

  let index = -1;
  for (;;) {
    if (options.signal?.aborted) break;
    const next = await iterator.next();
    if (next.done) break;
    if (next.value.kind !== 'user') continue;
    index++;
    const account: UserStart = next.value;
    const position = index;
    const jid = bareJid(`${account.name}@${host}`);
    const records = recordsUntilUserEnd();
    const lease = options.lockAccount ? await options.lockAccount(jid) : NO_LOCK;
    if (!lease) {
      progress.failed++;
      // Its records are skipped by the loop below, like those of a failed apply.
      results.push({ user: jid, error: `conflict: another operation on ${jid} is running; the account was not changed` });
    } else {
      try {
        const { warnings, ...start } = account;
        const apply = (attempt: number): Promise<ApplyReport> =>
          attempt === 1 ? storage.applyUser({ host, user: account.name }, start, records, options) : applyAgain(position, start);
        const report = reopen ? await withRetries(apply, options.retryPolicy, undefined, options.signal) : await apply(1);
        results.push(withWarnings(report, warnings));
      } catch (err) {
        progress.failed++;
        // What the failed apply left unread of this user is skipped by the loop below.
        results.push({ user: jid, error: err instanceof Error ? err.message : String(err) });
      } finally {
        lease.release();
      }
    }
    progress.done++;
    options.onUser?.(jid, progress);
  }
  return { host, users: results, progress };
}
