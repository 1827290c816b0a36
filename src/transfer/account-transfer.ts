/**
 * Export and import of one account, independent of HTTP or CLI: storage records become document
 * events, and a document's events become one storage transaction.
 */
import { concatAsync, tapAsync } from '../lib/async-iter.js';
import { bareJid } from '../lib/jid.js';
import { createRecordRewriter } from './rename.js';
import type { ApplyOptions, ApplyReport, StorageBackend, StorageSnapshot, UserRef } from '../storage/backend.js';
import { StorageError } from '../storage/backend.js';
import { DATA_KINDS, isDataKind, type DataKind, type DocumentEvent, type RosterRecord, type UserRecord, type UserStart } from '../records/model.js';

export class TransferError extends Error {
  constructor(
    /**
     * `bad-kind`: an unknown data kind was asked for; `bad-option`: another option of the
     * transfer is not one of its values; `wrong-structure`: the document has not the hosts and
     * users this import needs.
     */
    readonly code: 'bad-kind' | 'bad-option' | 'wrong-structure',
    message: string,
  ) {
    super(message);
    this.name = 'TransferError';
  }
}

/** `?include=roster,vcard` and `?exclude=archive` → the selected kinds (all when neither is given). */
export function selectKinds(include?: string, exclude?: string): Set<DataKind> {
  const parse = (list: string): DataKind[] =>
    list
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map((s) => {
        if (!isDataKind(s)) throw new TransferError('bad-kind', `unknown data kind ${JSON.stringify(s)} (known: ${DATA_KINDS.join(', ')})`);
        return s;
      });
  const selected = new Set<DataKind>(include !== undefined && include !== '' ? parse(include) : DATA_KINDS);
  if (exclude !== undefined) for (const kind of parse(exclude)) selected.delete(kind);
  return selected;
}

export function refOf(jid: string): UserRef {
  const at = jid.indexOf('@');
  return { user: jid.slice(0, at), host: jid.slice(at + 1) };
}

/** Strips credentials from a user start when they are not selected. */
function accountFor(account: UserStart, kinds: ReadonlySet<DataKind>): UserStart {
  if (kinds.has('credentials')) return account;
  return { kind: 'user', name: account.name, scram: [], extraAttributes: account.extraAttributes };
}

/**
 * The user's part of a document: `user`, records, `user-end`. Where the storage gives snapshots,
 * all of it is read from one (opened with the account, closed when the iteration ends, fails or
 * is stopped), so an import committing meanwhile shows either wholly or not at all.
 */
export function userEvents(storage: StorageBackend, ref: UserRef, kinds: ReadonlySet<DataKind>, signal?: AbortSignal): AsyncIterable<DocumentEvent> {
  const options = { include: kinds, ...(signal ? { signal } : {}) };
  if (!storage.snapshot) {
    return concatAsync<DocumentEvent>(
      () => accountEvent(storage, ref, kinds),
      () => storage.readUser(ref, options),
      () => [{ kind: 'user-end' }],
    );
  }
  let reader: StorageSnapshot | undefined;
  let source: Pick<StorageBackend, 'readAccount' | 'readUser'> = storage;
  const close = (): void => {
    const open = reader;
    reader = undefined;
    void open?.close().catch(() => undefined);
  };
  const events = concatAsync<DocumentEvent>(
    () => openThenAccountEvent(),
    () => source.readUser(ref, options),
    () => [{ kind: 'user-end' }],
  );
  async function* openThenAccountEvent(): AsyncGenerator<UserStart> {
    reader = await storage.snapshot?.();
    if (reader) source = reader;
    yield* accountEvent(source, ref, kinds);
  }
  // The records pass through one `then` more here, not through another generator.
  return tapAsync(events, () => undefined, close);
}

/** The user's part of a document read from `source` (an open view): `user`, records, `user-end`. */
export async function* accountEvents(source: Pick<StorageBackend, 'readAccount' | 'readUser'>, ref: UserRef, kinds: ReadonlySet<DataKind>, signal?: AbortSignal): AsyncGenerator<DocumentEvent> {
  yield* accountEvent(source, ref, kinds);
  yield* source.readUser(ref, { include: kinds, ...(signal ? { signal } : {}) });
  yield { kind: 'user-end' };
}

async function* accountEvent(storage: Pick<StorageBackend, 'readAccount'>, ref: UserRef, kinds: ReadonlySet<DataKind>): AsyncGenerator<UserStart> {
  const account = await storage.readAccount(ref);
  if (!account) throw new StorageError('user-not-found', `no account ${ref.user}@${ref.host}`);
  yield accountFor(account, kinds);
}

/** A whole document with one user. */
export function exportUserDocument(storage: StorageBackend, ref: UserRef, kinds: ReadonlySet<DataKind>, signal?: AbortSignal): AsyncIterable<DocumentEvent> {
  return concatAsync<DocumentEvent>(
    () => [{ kind: 'host', jid: ref.host }],
    () => userEvents(storage, ref, kinds, signal),
    () => [{ kind: 'host-end' }],
  );
}

export interface UserImportOptions extends ApplyOptions {
  /**
   * On an import into another JID than the document's, keep the roster's subscription states
   * and pending requests as they are, although the contacts approved only the old JID.
   */
  readonly keepSubscriptions?: boolean;
}

/** An import report; after an import into another JID, the contacts whose subscriptions were not carried over. */
export interface UserImportReport extends ApplyReport {
  /** Contacts the new JID has to ask for a subscription (the old JID had one with them). */
  readonly contactsToAsk?: readonly string[];
}

/**
 * Applies a document holding exactly one user to `target`. When the document's user is another
 * JID (a move between providers), every reference to it inside the data is rewritten to the
 * target, and, as the XEP-0283 move flow does, roster subscriptions the contacts gave the old
 * JID are not claimed for the new one (the report lists those contacts), unless
 * `keepSubscriptions`. The document is read to its end inside the transaction, so a second user
 * or a malformed tail rolls everything back.
 */
export async function importUserDocument(
  storage: StorageBackend,
  target: UserRef,
  events: AsyncIterable<DocumentEvent>,
  options: UserImportOptions,
): Promise<UserImportReport> {
  const iterator = events[Symbol.asyncIterator]();
  let host: string | undefined;
  let account: UserStart | undefined;
  while (!account) {
    const next = await iterator.next();
    if (next.done) throw new TransferError('wrong-structure', 'the document contains no user');
    const event = next.value;
    if (event.kind === 'host') host = event.jid;
    else if (event.kind === 'user') account = event;
  }
  if (host === undefined) throw new TransferError('wrong-structure', 'the user is outside a host');
  const sourceJid = bareJid(`${account.name}@${host}`);
  const targetJid = `${target.user}@${target.host}`;
  const rewrite = sourceJid === targetJid ? undefined : createRecordRewriter(sourceJid, targetJid);
  const unapproved = rewrite !== undefined && options.keepSubscriptions !== true ? new Set<string>() : undefined;

  async function* records(): AsyncGenerator<UserRecord> {
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      const event = next.value;
      switch (event.kind) {
        case 'user-end':
          await drainRest();
          return;
        case 'host':
        case 'host-end':
        case 'user':
          throw new TransferError('wrong-structure', 'the document must contain exactly one user');
        default: {
          const record = rewrite ? rewrite(event) : event;
          if (!unapproved) yield record;
          else if (record.kind === 'pending-subscription') unapproved.add(record.from);
          else yield record.kind === 'roster' ? withoutSubscriptions(record, unapproved) : record;
        }
      }
    }
  }

  async function drainRest(): Promise<void> {
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      if (next.value.kind === 'user' || next.value.kind === 'host') {
        throw new TransferError('wrong-structure', 'the document must contain exactly one user');
      }
    }
  }

  const { warnings, ...start } = account;
  const { keepSubscriptions: _, ...applyOptions } = options;
  const report = withWarnings(await storage.applyUser(target, { ...start, name: target.user }, records(), applyOptions), warnings);
  if (!unapproved || unapproved.size === 0) return report;
  const contactsToAsk = [...unapproved].sort();
  return {
    ...report,
    warnings: [
      ...report.warnings,
      `${contactsToAsk.length} contact(s) approved subscriptions of ${sourceJid}, not of ${targetJid}: imported without subscription; ask them again (contactsToAsk)`,
    ],
    contactsToAsk,
  };
}

/**
 * The roster as the move flow carries it: every item without subscription state or pending
 * request (the contacts approved the old JID, not this one); `contacts` collects the contacts
 * that had one.
 */
function withoutSubscriptions(roster: RosterRecord, contacts: Set<string>): RosterRecord {
  return {
    ...roster,
    items: roster.items
      .filter((item) => item.subscription !== 'remove')
      .map((item) => {
        if (item.subscription === 'none' && item.ask === undefined && item.approved === undefined) return item;
        contacts.add(item.jid);
        const { ask: _ask, approved: _approved, ...rest } = item;
        return { ...rest, subscription: 'none' as const };
      }),
  };
}

/** The report with the reader's warnings about the account (e.g. a relabelled SCRAM hash) in front of the backend's. */
export function withWarnings(report: ApplyReport, warnings: readonly string[] | undefined): ApplyReport {
  if (warnings === undefined || warnings.length === 0) return report;
  return { ...report, warnings: [...warnings, ...report.warnings] };
}
