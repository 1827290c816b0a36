/**
 * One archive store's `.list` file as an import rebuilds it: the stored file copied byte for
 * byte, the document's items appended after it, de-duplicated as the store's policy asks.
 */
import { StorageError } from '../backend.js';
import { ARCHIVE_STORE, OFFLINE_STORE, itemStanza, type ArchiveItem } from '../prosody/archive.js';
import { LuaTable, type LuaValue } from '../prosody/lua.js';
import { serializeXmlValue } from '../prosody/stanza.js';
import type { FileStore } from './files.js';
import { FingerprintSet } from '../prosody/fingerprint-set.js';
import { LuaBytes } from './list-item-bytes.js';
import { ListItemError, archiveItemFromList, archiveItemToList } from './list-items.js';
import { LuaSerializeError, serializeListItem } from './lua-serialize.js';
import { listIndexPath } from './paths.js';
import type { StagedFile } from './staged-file.js';
import type { FileTransaction } from './transaction.js';

/**
 * How an archive store takes new items:
 * - `first-wins`: a key already there (stored or added) is a duplicate (MAM);
 * - `same-content`: an item with the same time and stanza as one there is a duplicate (offline, merge);
 * - `append`: every item is added (offline, replace);
 * - `last-wins`: an item replaces any with its key, wherever it is (PEP items, opaque stores).
 */
export type ListPolicy = 'first-wins' | 'same-content' | 'append' | 'last-wins';

function itemIdentity(item: ArchiveItem): string {
  const stanza = itemStanza(item.value);
  return `${Math.floor(item.when)}\u0000${stanza ? serializeXmlValue(stanza) : ''}`;
}

/** New items are written out in pieces of about this size. */
const FLUSH_BYTES = 1 << 20;

/** One `.list` file being rebuilt. */
export class ListStage {
  private out: StagedFile | undefined;
  private prepared = false;
  private baseExists = false;
  private baseCount = 0;
  /** `first-wins` keys or `same-content` identities met so far. */
  private readonly seen: FingerprintSet;
  /** `last-wins`: serialized items by key, in the order their last occurrence came. */
  private readonly latest = new Map<string, string>();
  /** New items not written to the file yet. */
  private pending: LuaBytes | undefined;
  written = 0;

  constructor(
    private readonly files: FileStore,
    private readonly tx: FileTransaction,
    readonly store: string,
    readonly path: string,
    private readonly keepBase: boolean,
    private readonly policy: ListPolicy,
    private readonly signal: AbortSignal | undefined,
    seenInMemory: number,
  ) {
    this.seen = new FingerprintSet({ after: seenInMemory, path: () => tx.scratchPath('.seen.sqlite') });
  }

  /** Reads what the stored file already holds, as far as the policy needs it. */
  private async prepare(): Promise<void> {
    if (this.prepared) return;
    this.prepared = true;
    this.baseExists = (await this.tx.observe(this.path)) && this.keepBase;
    if (!this.baseExists) return;
    let position = 0;
    for await (const value of this.files.readListValues(this.path, this.signal)) {
      position++;
      this.baseCount++;
      if (this.policy === 'first-wins') this.seen.add(keyOf(value, position));
      else if (this.policy === 'same-content') this.seen.add(this.identityOf(value, position));
    }
  }

  private identityOf(value: LuaValue, position: number): string {
    try {
      return itemIdentity(archiveItemFromList(value, position));
    } catch (err) {
      return this.files.fail(this.path, err);
    }
  }

  private get keepEmptyWith(): boolean {
    return this.store === OFFLINE_STORE || this.store === ARCHIVE_STORE;
  }

  private item(item: ArchiveItem): string {
    try {
      return serializeListItem(archiveItemToList(item, { keepEmptyWith: this.keepEmptyWith }));
    } catch (err) {
      if (err instanceof ListItemError || err instanceof LuaSerializeError) throw new StorageError('invalid-data', `${this.store} item ${item.key}: ${err.message}`, { cause: err });
      throw err;
    }
  }

  /**
   * False when the item is a duplicate that was not added. Answers at once, without a promise,
   * unless the file has to be opened or written to: it runs once per archived item.
   */
  add(item: ArchiveItem): boolean | Promise<boolean> {
    if (!this.prepared) return this.prepare().then(() => this.add(item));
    if (this.policy === 'last-wins') {
      const text = this.item(item);
      this.latest.delete(item.key);
      this.latest.set(item.key, text);
      return true;
    }
    // Encoded before the duplicate check, so that an item that cannot be stored fails either way.
    const pending = (this.pending ??= new LuaBytes(FLUSH_BYTES + (FLUSH_BYTES >> 2)));
    const mark = pending.length;
    if (!pending.listItem(item, this.keepEmptyWith)) pending.ascii(this.item(item));
    if (this.policy === 'first-wins' || this.policy === 'same-content') {
      const id = this.policy === 'first-wins' ? item.key : itemIdentity(item);
      if (!this.seen.add(id)) {
        pending.length = mark;
        return false;
      }
    }
    if (!this.out) return this.open().then(() => this.added());
    return this.added();
  }

  /** Counts an item just put in `pending`, writing `pending` out once it is large. */
  private added(): true | Promise<true> {
    this.written++;
    if ((this.pending?.length ?? 0) >= FLUSH_BYTES) return this.flushPending().then(() => true);
    return true;
  }

  /** Starts the new file: the stored items exactly as Prosody wrote them; new ones follow, as appends would. */
  private async open(): Promise<void> {
    await this.dropIndex();
    this.out = await this.tx.stage(this.path);
    if (this.baseExists) await this.out.appendFileContents(this.path);
  }

  private async flushPending(): Promise<void> {
    const pending = this.pending;
    if (!pending || pending.length === 0 || !this.out) return;
    await this.out.writeBytes(pending.bytes);
    pending.clear();
  }

  /** Items the file holds after the import. */
  async finish(): Promise<number> {
    await this.prepare();
    this.close();
    await this.flushPending();
    this.pending = undefined;
    if (this.policy === 'last-wins' && this.latest.size > 0) {
      await this.dropIndex();
      const out = await this.tx.stage(this.path);
      let kept = 0;
      if (this.baseExists) {
        let position = 0;
        for await (const value of this.files.readListValues(this.path, this.signal)) {
          position++;
          if (this.latest.has(keyOf(value, position))) continue;
          await out.write(serializeListItem(value));
          kept++;
        }
      }
      for (const text of this.latest.values()) await out.write(text);
      this.written = this.latest.size;
      return kept + this.written;
    }
    if (!this.out && !this.keepBase) {
      await this.dropIndex();
      await this.tx.remove(this.path);
    }
    return (this.baseExists ? this.baseCount : 0) + this.written;
  }

  /**
   * Prosody 13 keeps `<user>.lidx` beside an appended `.list`: one end offset per item, trusted
   * whenever its header matches. Any `.list` this import rewrites loses its index in the same
   * transaction (removed before the list is replaced), as Prosody's own list_store does; Prosody
   * rebuilds it on the next append. 0.12 has no such file, and a removal of nothing is a no-op.
   */
  private async dropIndex(): Promise<void> {
    await this.tx.remove(listIndexPath(this.path));
  }

  /** Releases what the de-duplication holds; the stage takes no more items afterwards. */
  close(): void {
    this.seen.close();
  }
}

function keyOf(value: LuaValue, position: number): string {
  const key = value instanceof LuaTable ? value.get('key') : undefined;
  return typeof key === 'string' ? key : String(position);
}
