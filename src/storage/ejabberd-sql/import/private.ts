/** Private XML storage (`private_storage`): one element per namespace. */
import type { XmlElement } from '../../../records/model.js';
import { serializeElement } from '../../../xml/xml.js';
import type { ImportTarget } from './target.js';

/** `replace`: every stored element removed. */
export async function clearPrivate({ db, t, ref }: ImportTarget): Promise<void> {
  await t.delete(db, ref, 'private_storage');
}

/** Stores `element`, replacing what its namespace held. */
export async function writePrivate({ db, t, ref }: ImportTarget, element: XmlElement): Promise<void> {
  await t.delete(db, ref, 'private_storage', ` AND "namespace" = ?`, [element.xmlns]);
  await t.insert(db, ref, 'private_storage', { namespace: element.xmlns, data: serializeElement(element) });
}
