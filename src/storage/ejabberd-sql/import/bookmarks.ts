/**
 * ejabberd 24.12 mirrors each bookmark form into the other when a client writes one. A document
 * with only one form gets the other written at the end of the import, so legacy and current
 * clients both see the rooms: XEP-0402 items become the private `<storage/>` (from every item the
 * node holds after the import), a private `<storage/>` becomes XEP-0402 items (the node made as
 * XEP-0402 asks).
 */
import type { PepItemRecord, XmlElement } from '../../../records/model.js';
import { parseElement } from '../../../xml/xml.js';
import { LEGACY_NS, PEP_BOOKMARKS_CONFIG, PEP_BOOKMARKS_NODE, legacyFromPep, pepFromLegacy } from '../bookmarks.js';
import { text } from '../../sql/columns.js';
import type { PepImport } from './pep.js';
import { writePrivate } from './private.js';
import type { ImportTarget } from './target.js';

export class BookmarkSync {
  /** The document's XEP-0048 `<storage/>`, the last one. */
  private legacy: XmlElement | undefined;
  /** The document's XEP-0402 items. */
  private pepItems = 0;

  /** A private element the document stores. */
  notePrivate(element: XmlElement): void {
    if (element.xmlns === LEGACY_NS && element.name === 'storage') this.legacy = element;
  }

  /** A PEP item the document stores. */
  notePepItem(record: PepItemRecord): void {
    if (record.node === PEP_BOOKMARKS_NODE) this.pepItems++;
  }

  /** Writes the form the document lacks; a warning says which was written. */
  async sync(target: ImportTarget, pep: PepImport): Promise<void> {
    const { db, jid, tally } = target;
    if (this.pepItems > 0 && !this.legacy) {
      const id = await pep.nodeId(PEP_BOOKMARKS_NODE);
      if (id === undefined) return;
      const rows = await db.query(`SELECT "itemid", "payload" FROM "pubsub_item" WHERE "nodeid" = ? ORDER BY "modification", "itemid"`, [id]);
      const items = rows.flatMap((r) => {
        const payload = text(r.payload, 'pubsub_item.payload').trim();
        return payload === '' ? [] : [{ id: text(r.itemid, 'pubsub_item.itemid'), payload: parseElement(payload) }];
      });
      const storage = legacyFromPep(items);
      await writePrivate(target, storage);
      tally.warnings.push(`bookmarks: ${storage.children.length} XEP-0402 bookmark(s) also written as XEP-0048 private storage, which ejabberd keeps in sync`);
    } else if (this.legacy && this.pepItems === 0) {
      const items = pepFromLegacy(this.legacy);
      if (items.length === 0) return;
      if ((await pep.nodeId(PEP_BOOKMARKS_NODE)) === undefined) {
        await pep.writeNode({ kind: 'pep-node', node: PEP_BOOKMARKS_NODE, config: PEP_BOOKMARKS_CONFIG, affiliations: [], subscriptions: [] });
      }
      for (const item of items) await pep.writeItem({ kind: 'pep-item', node: PEP_BOOKMARKS_NODE, id: item.id, payload: item.payload, publisher: jid });
      tally.warnings.push(`bookmarks: ${items.length} XEP-0048 private bookmark(s) also written as XEP-0402 PEP items, which ejabberd keeps in sync`);
    }
  }
}
