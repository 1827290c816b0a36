/**
 * Offline messages (`spool`). They have no id: on `merge`, one already stored (or earlier in
 * the document) with the same XML is the same message, counted as a duplicate.
 */
import { childElements, element, type OfflineRecord } from '../../../records/model.js';
import { serializeElement } from '../../../xml/xml.js';
import { text } from '../../sql/columns.js';
import type { ImportTarget } from './target.js';

export class OfflineImport {
  /** `merge`: the XML of every message stored or written, read at the first message. */
  private seen: Set<string> | undefined;
  /** Messages not written because they were there already. */
  duplicates = 0;

  constructor(
    private readonly target: ImportTarget,
    private readonly merge: boolean,
  ) {}

  /** `replace`: the spool emptied. */
  async clear(): Promise<void> {
    const { db, t, ref } = this.target;
    await t.delete(db, ref, 'spool');
  }

  /** mod_offline serves the stored stanza as it is: the delay that says when it was stored must be in it. */
  async add(record: OfflineRecord): Promise<void> {
    const { db, t, ref, tally } = this.target;
    const { stanza } = record;
    let out = stanza;
    if (!childElements(stanza, 'delay', 'urn:xmpp:delay').length) {
      const stamp = record.timestamp ?? new Date().toISOString();
      out = { ...stanza, children: [...stanza.children, element('delay', 'urn:xmpp:delay', { from: ref.host, stamp }, ['Offline Storage'])] };
    }
    const xml = serializeElement(out);
    if (this.merge) {
      this.seen ??= new Set((await t.select(db, ref, 'spool', ['xml'])).map((r) => text(r.xml, 'spool.xml')));
      if (this.seen.has(xml)) {
        this.duplicates++;
        return;
      }
      this.seen.add(xml);
    }
    await t.insert(db, ref, 'spool', { xml });
    tally.count('offline');
  }
}
