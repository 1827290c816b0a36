/**
 * One user's import into ejabberd's SQL tables (23.01 and 24.12), inside a transaction the
 * caller owns. How each kind is written is in import/; this is their order. Small per-user data
 * (roster, vCard, privacy, blocklist) is collected and written at the end so that several
 * records combine; the rest is written as it arrives.
 */
import type { ApplyOptions, UserRef } from '../backend.js';
import { UserImport, type StoredRecord } from '../import/user-import.js';
import type { UserStart, XmlElement } from '../../records/model.js';
import { PepProfile } from '../../records/vcard-legacy.js';
import type { SqlSession } from '../sql/dialect.js';
import { EjabberdArchiveWriter } from './archive-writer.js';
import { writeAccount, type PasswordHash } from './import/account.js';
import { addArchiveMessage, clearArchive } from './import/archive.js';
import { BookmarkSync } from './import/bookmarks.js';
import { OfflineImport } from './import/offline.js';
import { PepImport } from './import/pep.js';
import { clearBlocks, clearPrivacyLists, writeBlocklist, writePrivacyLists } from './import/privacy.js';
import { clearPrivate, writePrivate } from './import/private.js';
import { RosterImport } from './import/roster.js';
import type { ImportTarget } from './import/target.js';
import { clearVCard, writeVCard, writeVCardFromProfile } from './import/vcard.js';
import type { Tables } from './tables.js';

/** What the target database's generation asks of an import. */
export interface EjabberdImportSchema {
  /** `archive.origin_id` exists (24.12) and must be written. */
  readonly originId: boolean;
  /** Keep XEP-0048 private and XEP-0402 PEP bookmarks in sync, as ejabberd 24.12 does. */
  readonly syncBookmarks: boolean;
}

export class EjabberdImport extends UserImport {
  private readonly target: ImportTarget;
  private readonly roster: RosterImport;
  private vcard: XmlElement | undefined;
  /** The PEP profile (vCard4, nick, avatar), for a vcard-temp when the document has none. */
  private readonly profile = new PepProfile();
  private readonly pep: PepImport;
  private readonly bookmarks = new BookmarkSync();
  private readonly archive: EjabberdArchiveWriter;
  private readonly offline: OfflineImport;

  constructor(
    db: SqlSession,
    t: Tables,
    ref: UserRef,
    options: ApplyOptions,
    private readonly passwordHash: PasswordHash,
    private readonly schema: EjabberdImportSchema = { originId: false, syncBookmarks: false },
  ) {
    super(ref, options);
    const merge = options.mode === 'merge';
    this.target = { db, t, ref, jid: this.jid, tally: this.tally };
    this.roster = new RosterImport(this.target, merge);
    this.pep = new PepImport(this.target);
    this.archive = new EjabberdArchiveWriter(db, t, ref, merge, schema.originId);
    this.offline = new OfflineImport(this.target, merge);
  }

  protected async accountExists(): Promise<boolean> {
    const { db, t, ref } = this.target;
    return (await t.select(db, ref, 'users', ['username'])).length > 0;
  }

  protected async begin(account: UserStart, exists: boolean): Promise<void> {
    const credentials = this.includes('credentials');
    if (!exists || credentials) await writeAccount(this.target, account, exists, this.passwordHash, credentials);
    if (this.options.mode === 'replace') await this.clear();
  }

  /** `replace`: the selected kinds emptied before anything is written. */
  private async clear(): Promise<void> {
    if (this.includes('roster')) await this.roster.clear();
    if (this.includes('vcard')) await clearVCard(this.target);
    if (this.includes('private')) await clearPrivate(this.target);
    if (this.includes('archive')) await clearArchive(this.target);
    if (this.includes('offline')) await this.offline.clear();
    if (this.includes('pep')) await this.pep.clear();
    if (this.includes('privacy')) await clearPrivacyLists(this.target);
    if (this.includes('blocklist')) await clearBlocks(this.target);
  }

  protected async add(record: StoredRecord): Promise<void> {
    switch (record.kind) {
      case 'roster':
        this.roster.addItems(record);
        this.tally.count('roster');
        return;
      case 'pending-subscription':
        this.roster.addPending(record);
        this.tally.count('roster');
        return;
      case 'vcard':
        this.vcard = record.vcard;
        this.tally.count('vcard');
        return;
      case 'private':
        this.bookmarks.notePrivate(record.element);
        await writePrivate(this.target, record.element);
        this.tally.count('private');
        return;
      case 'pep-node':
        await this.pep.writeNode(record);
        this.tally.count('pep');
        return;
      case 'pep-item':
        this.bookmarks.notePepItem(record);
        this.profile.add(record);
        await this.pep.writeItem(record);
        this.tally.count('pep');
        return;
      case 'archive':
        await addArchiveMessage(this.target, this.archive, record);
        return;
      case 'offline':
        await this.offline.add(record);
        return;
      case 'opaque':
        this.tally.noteUnsupported('other');
        this.tally.skip('other', 'ejabberd has no table for this element', `{${record.element.xmlns}}${record.element.name}`);
        return;
    }
  }

  protected async finish(): Promise<void> {
    await this.archive.flush();
    if (this.archive.written > 0) this.tally.count('archive', this.archive.written);
    if (this.schema.syncBookmarks && this.includes('private') && this.includes('pep')) await this.bookmarks.sync(this.target, this.pep);
    await this.roster.write();
    if (this.vcard) await writeVCard(this.target, this.vcard);
    else if (this.includes('vcard')) await writeVCardFromProfile(this.target, this.profile, this.options.mode === 'merge');
    if (this.privacy) await writePrivacyLists(this.target, this.privacy);
    if (this.blocked) await writeBlocklist(this.target, this.blocked);
    this.tally.noteDuplicates('archive', this.archive.duplicates);
    this.tally.noteDuplicates('offline', this.offline.duplicates);
  }
}
