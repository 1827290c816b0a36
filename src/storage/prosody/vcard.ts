/**
 * The `vcard` store (keyval, mod_vcard.lua): `st.preserialize(vCard)`. In SQL the table is split by
 * the keyval rule (`name` and `attr` rows, the children under `""`); the mapping here works on the
 * whole table.
 */
import { NS, type VCardRecord, type XmlElement } from '../../records/model.js';
import { isStanzaValue, type LuaTable } from './lua.js';
import { fromPreserialized, toPreserialized } from './stanza.js';

export function vcardFromStore(data: LuaTable | XmlElement): VCardRecord {
  const vcard = isStanzaValue(data) ? data : fromPreserialized(data, NS.vcardTemp);
  return { kind: 'vcard', vcard };
}

export function vcardToStore(record: VCardRecord): LuaTable {
  return toPreserialized(record.vcard);
}
