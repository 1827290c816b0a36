/**
 * The run of one user's import, the same for every backend: the account checked (and created
 * only when asked), the backend's preparation, each record of the document in order (kinds not
 * selected only counted, blocklist and privacy records gathered), the backend's finish, and the
 * report from the {@link ImportTally}. A backend implements what is its own: how each kind is
 * stored.
 */
import type { ApplyOptions, ApplyReport, UserRef } from '../backend.js';
import { StorageError } from '../backend.js';
import { dataKindOf, type BlocklistRecord, type DataKind, type PrivacyRecord, type UserRecord, type UserStart } from '../../records/model.js';
import { CollectedBlocklist, CollectedPrivacy } from './collected.js';
import { ImportTally } from './tally.js';

/** The records a backend stores one by one: all but the gathered blocklist and privacy. */
export type StoredRecord = Exclude<UserRecord, BlocklistRecord | PrivacyRecord>;

export abstract class UserImport {
  /** The user's bare JID, `user@host`, as the report names it. */
  protected readonly jid: string;
  protected readonly tally = new ImportTally();
  private blocklist: CollectedBlocklist | undefined;
  private privacyLists: CollectedPrivacy | undefined;

  protected constructor(
    protected readonly ref: UserRef,
    protected readonly options: ApplyOptions,
  ) {
    this.jid = `${ref.user}@${ref.host}`;
  }

  // --- What a backend implements, called in this order ---

  /** Whether the account exists; called first, once. */
  protected abstract accountExists(): Promise<boolean>;
  /**
   * Before the first record: the account written (when it is new, or credentials are selected)
   * and, for `replace`, the selected kinds emptied.
   */
  protected abstract begin(account: UserStart, exists: boolean): Promise<void>;
  /** One record of a selected kind, in document order. */
  protected abstract add(record: StoredRecord): Promise<void>;
  /** After the last record: whatever was only collected is written (see {@link blocked}, {@link privacy}). */
  protected abstract finish(): Promise<void>;

  // --- Shared state ---

  protected includes(kind: DataKind): boolean {
    return this.options.include.has(kind);
  }

  /** The document's blocked JIDs; undefined when it had no blocklist record. */
  protected get blocked(): ReadonlySet<string> | undefined {
    return this.blocklist?.jids;
  }

  /** The document's privacy lists; undefined when it had no privacy record. */
  protected get privacy(): CollectedPrivacy | undefined {
    return this.privacyLists;
  }

  async run(account: UserStart, records: AsyncIterable<UserRecord>): Promise<ApplyReport> {
    const exists = await this.accountExists();
    if (!exists && !this.options.createAccount) throw new StorageError('user-not-found', `${this.jid} does not exist`);
    await this.begin(account, exists);
    const { include, signal } = this.options;
    for await (const record of records) {
      signal?.throwIfAborted();
      const kind = dataKindOf(record);
      if (!include.has(kind)) {
        this.tally.noteNotIncluded(kind);
        continue;
      }
      if (record.kind === 'blocklist') {
        (this.blocklist ??= new CollectedBlocklist()).add(record);
        this.tally.count('blocklist');
      } else if (record.kind === 'privacy') {
        (this.privacyLists ??= new CollectedPrivacy()).add(record);
        this.tally.count('privacy');
      } else {
        await this.add(record);
      }
    }
    signal?.throwIfAborted();
    await this.finish();
    return this.tally.report(this.jid, this.options, !exists);
  }
}
