/** The vCard (`vcard`) and the search index mod_vcard_sql keeps beside it (`vcard_search`). */
import { childElements, textOf, type XmlElement } from '../../../records/model.js';
import type { PepProfile } from '../../../records/vcard-legacy.js';
import { serializeElement } from '../../../xml/xml.js';
import type { ImportTarget } from './target.js';

/** `replace`: the stored vCard and its search row removed. */
export async function clearVCard(target: ImportTarget): Promise<void> {
  await target.t.delete(target.db, target.ref, 'vcard');
  await deleteVCardSearch(target);
}

async function hasStoredVCard(target: ImportTarget): Promise<boolean> {
  return (await target.t.select(target.db, target.ref, 'vcard', ['username'])).length > 0;
}

/** Replaces the stored vCard, and its search row with one made from it. */
export async function writeVCard(target: ImportTarget, vcard: XmlElement): Promise<void> {
  const { db, t, ref } = target;
  await t.delete(db, ref, 'vcard');
  await t.insert(db, ref, 'vcard', { vcard: serializeElement(vcard) });
  await deleteVCardSearch(target);
  // mod_vcard_sql keeps the search index in step on every set, search enabled or not.
  const text = (path: readonly string[]): string => {
    let el: XmlElement | undefined = vcard;
    for (const name of path) el = el ? childElements(el, name)[0] : undefined;
    return el ? textOf(el) : '';
  };
  const fields: Record<string, string> = {
    fn: text(['FN']),
    family: text(['N', 'FAMILY']),
    given: text(['N', 'GIVEN']),
    middle: text(['N', 'MIDDLE']),
    nickname: text(['NICKNAME']),
    bday: text(['BDAY']),
    ctry: text(['ADR', 'CTRY']),
    locality: text(['ADR', 'LOCALITY']),
    email: text(['EMAIL', 'USERID']) || text(['EMAIL']),
    orgname: text(['ORG', 'ORGNAME']),
    orgunit: text(['ORG', 'ORGUNIT']),
  };
  const row: Record<string, string> = { username: ref.user, lusername: ref.user.toLowerCase() };
  if (t.newSchema) row.server_host = ref.host;
  for (const [k, v] of Object.entries(fields)) {
    row[k] = v;
    row[`l${k}`] = v.toLowerCase();
  }
  const cols = Object.keys(row);
  await db.run(`INSERT INTO "vcard_search" (${cols.map((c) => `"${c}"`).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`, Object.values(row));
}

async function deleteVCardSearch({ db, t, ref }: ImportTarget): Promise<void> {
  const lu = ref.user.toLowerCase();
  if (t.newSchema) await db.run(`DELETE FROM "vcard_search" WHERE "lusername" = ? AND "server_host" = ?`, [lu, ref.host]);
  else await db.run(`DELETE FROM "vcard_search" WHERE "lusername" = ?`, [lu]);
}

/**
 * ejabberd serves vcard-temp from its vcard table only: an account whose profile lives in PEP
 * alone (Prosody's default with mod_vcard_legacy) gets the vcard-temp Prosody would have
 * answered, unless a vCard is stored already (merge). Counted and noted when written.
 */
export async function writeVCardFromProfile(target: ImportTarget, profile: PepProfile, merge: boolean): Promise<void> {
  if (!profile.present) return;
  if (merge && (await hasStoredVCard(target))) return;
  await writeVCard(target, profile.toVCardTemp());
  target.tally.count('vcard');
  target.tally.warnings.push('vcard-temp made from the PEP vCard4, nickname and avatar (as Prosody mod_vcard_legacy maps them): ejabberd serves no vCard from PEP');
}
