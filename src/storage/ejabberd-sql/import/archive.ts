/**
 * MAM messages (`archive`), handed to the {@link EjabberdArchiveWriter} that batches them; how
 * many went in (and how many were already stored) is known once it is flushed.
 */
import { firstChild, textOf, type ArchiveRecord, type XmlElement } from '../../../records/model.js';
import { serializeElement } from '../../../xml/xml.js';
import type { EjabberdArchiveWriter } from '../archive-writer.js';
import { MICROS_ID } from '../archive-writer.js';
import { isoToMicros } from '../pep.js';
import { storedBareJid } from '../../../lib/jid.js';
import type { ImportTarget } from './target.js';

/** `<origin-id xmlns='urn:xmpp:sid:0' id/>`'s id, else the message id, else '' (what ejabberd 24.12 stores). */
export function originIdOf(stanza: XmlElement): string {
  const origin = firstChild(stanza, 'origin-id', 'urn:xmpp:sid:0');
  const id = origin?.attrs.id;
  if (id !== undefined && id !== '') return id;
  return stanza.attrs.id ?? '';
}

/** `replace`: the user's archive emptied. */
export async function clearArchive({ db, t, ref }: ImportTarget): Promise<void> {
  await t.delete(db, ref, 'archive');
}

/**
 * ejabberd's MAM id is the archive time in µs. An id that already is one is kept; any other id
 * (Prosody's UUIDs) cannot be, and the message gets a fresh time-based one. A message with
 * neither is skipped.
 */
export async function addArchiveMessage(target: ImportTarget, writer: EjabberdArchiveWriter, record: ArchiveRecord): Promise<void> {
  const { id, stanza } = record;
  const micros = MICROS_ID.test(id) ? Number(id) : isoToMicros(record.timestamp);
  if (micros === undefined) {
    target.tally.skip('archive', 'no usable archive time', id);
    return;
  }
  const from = stanza.attrs.from ?? '';
  const to = stanza.attrs.to ?? '';
  const outgoing = from === '' || storedBareJid(from) === target.jid;
  const peer = outgoing ? to : from;
  const barePeer = record.with ?? storedBareJid(peer);
  const body = firstChild(stanza, 'body');
  await writer.add({
    id,
    micros,
    xml: serializeElement(stanza),
    peer: peer === '' ? barePeer : peer,
    barePeer,
    txt: body ? textOf(body) : '',
    kind: stanza.attrs.type === 'groupchat' ? 'groupchat' : 'chat',
    originId: originIdOf(stanza),
  });
}
