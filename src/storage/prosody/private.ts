/**
 * The `private` store (map, mod_private.lua): key `<name>:<namespace>`, value the preserialized
 * element. Prosody deletes the entry instead of storing an element without children.
 */
import type { PrivateRecord, XmlElement } from '../../records/model.js';
import { LuaTable, isStanzaValue, type LuaValue } from './lua.js';
import { fromPreserialized, toPreserialized } from './stanza.js';

export function privateKey(el: XmlElement): string {
  return `${el.name}:${el.xmlns}`;
}

export function privateFromStore(key: string, value: LuaValue): PrivateRecord | undefined {
  if (isStanzaValue(value)) return { kind: 'private', element: value };
  if (!(value instanceof LuaTable)) return undefined;
  // The key names the namespace for an element stored without attr.xmlns.
  const sep = key.indexOf(':');
  return { kind: 'private', element: fromPreserialized(value, sep >= 0 ? key.slice(sep + 1) : '') };
}

/** The entry to store, or undefined when Prosody would store nothing (no children). */
export function privateToStore(record: PrivateRecord): { key: string; value: LuaTable } | undefined {
  if (record.element.children.length === 0) return undefined;
  return { key: privateKey(record.element), value: toPreserialized(record.element) };
}
