/**
 * Stores xporta has no typed record for (`account_details`, `archive_prefs`, module stores) travel
 * as opaque records in xporta's own namespace, value for value in mod_storage_sql's encoding, so a
 * Prosody → Prosody move keeps them exactly:
 *
 * ```xml
 * <store xmlns='urn:xporta:prosody-store:0' name='account_details'>
 *   <entry key='email' type='string'>zoe@mail.example</entry>
 *   <entry key='registered' type='number'>1795368035</entry>
 *   <entry type='json'>{"__hash":[false,true]}</entry>         (the non-string keys, the keyval rule)
 * </store>
 * <archive-item xmlns='urn:xporta:prosody-store:0' store='muc_log' key='…' when='1795367897' with='…' type='xml'><message…/></archive-item>
 * ```
 * An `xml` value is the element itself rather than escaped text.
 */
import { element, isElement, type XmlElement, type XmlNode } from '../../records/model.js';
import { splitKeyval, mergeKeyval, type KeyvalEntry } from './keyval.js';
import { isStanzaValue, parseLuaNumber, type LuaTable, type LuaValue } from './lua.js';
import type { ArchiveItem } from './archive.js';
import { StoredValueError, deserializeValue, serializeValue } from './values.js';

export const PROSODY_STORE_NS = 'urn:xporta:prosody-store:0';

function valueElement(name: string, attrs: Record<string, string>, value: LuaValue): XmlElement {
  if (isStanzaValue(value)) return element(name, PROSODY_STORE_NS, { ...attrs, type: 'xml' }, [value]);
  const stored = serializeValue(value);
  return element(name, PROSODY_STORE_NS, { ...attrs, type: stored.type }, stored.value === '' ? [] : [stored.value]);
}

function valueOf(el: XmlElement): LuaValue {
  const type = el.attrs.type ?? '';
  if (type === 'xml') {
    const child = el.children.find(isElement);
    if (!child) throw new StoredValueError('xml entry without an element');
    return child;
  }
  const text = el.children.filter((c: XmlNode): c is string => typeof c === 'string').join('');
  return deserializeValue(type, text);
}

/** A keyval or map store as one opaque element. */
export function storeToElement(store: string, data: LuaTable): XmlElement {
  const entries = splitKeyval(data).map(({ key, value }) => valueElement('entry', key === '' ? {} : { key }, value));
  return element('store', PROSODY_STORE_NS, { name: store }, entries);
}

export function storeFromElement(el: XmlElement): { store: string; data: LuaTable } {
  const store = el.attrs.name;
  if (store === undefined || store === '') throw new StoredValueError('store without a name');
  const entries: KeyvalEntry[] = el.children.filter(isElement).map((entry) => ({ key: entry.attrs.key ?? '', value: valueOf(entry) }));
  return { store, data: mergeKeyval(entries) };
}

/** One item of an archive store as one opaque element. */
export function archiveItemToElement(store: string, item: ArchiveItem): XmlElement {
  return valueElement('archive-item', { store, key: item.key, when: String(item.when), with: item.with }, item.value);
}

export function archiveItemFromElement(el: XmlElement): { store: string; item: ArchiveItem } {
  const { store, key, when, with: withJid } = el.attrs;
  if (store === undefined || store === '' || key === undefined) throw new StoredValueError('archive item without store or key');
  const seconds = when === undefined ? undefined : parseLuaNumber(when);
  if (typeof seconds !== 'number') throw new StoredValueError('archive item without an integer time');
  return { store, item: { key, when: seconds, with: withJid ?? '', value: valueOf(el) } };
}

/** True for the opaque elements this module writes. */
export function isProsodyStoreElement(el: XmlElement): boolean {
  return el.xmlns === PROSODY_STORE_NS && (el.name === 'store' || el.name === 'archive-item');
}
