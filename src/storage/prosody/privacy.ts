/**
 * The `privacy` store (keyval, mod_privacy_lists.lua): `default` = list name and
 * `lists = {[name] = {name, items = {{type?, value?, action, order, message, iq, presence-in,
 * presence-out}, …}}}`, items sorted by order.
 */
import type { PrivacyItem, PrivacyList, PrivacyRecord } from '../../records/model.js';
import { LuaTable, luaNumber, type LuaValue } from './lua.js';
import { compareStrings } from './util.js';

const STANZA_KINDS = ['message', 'iq', 'presence-in', 'presence-out'] as const;
const ITEM_TYPES = new Set(['jid', 'group', 'subscription']);

function itemFromStore(value: LuaValue): PrivacyItem | undefined {
  if (!(value instanceof LuaTable)) return undefined;
  const action = value.get('action');
  const order = luaNumber(value.get('order'));
  if ((action !== 'allow' && action !== 'deny') || order === undefined) return undefined;
  const type = value.get('type');
  const itemValue = value.get('value');
  return {
    ...(typeof type === 'string' && ITEM_TYPES.has(type) ? { type: type as PrivacyItem['type'] } : {}),
    ...(typeof itemValue === 'string' ? { value: itemValue } : {}),
    action,
    order,
    stanzas: STANZA_KINDS.filter((k) => value.get(k) === true),
  };
}

export function privacyFromStore(data: LuaTable): PrivacyRecord {
  const lists: PrivacyList[] = [];
  const listsTable = data.get('lists');
  if (listsTable instanceof LuaTable) {
    for (const [name, list] of listsTable.hash) {
      if (!(list instanceof LuaTable)) continue;
      const itemsTable = list.get('items');
      const items = itemsTable instanceof LuaTable ? itemsTable.array.map(itemFromStore).filter((i) => i !== undefined) : [];
      items.sort((a, b) => a.order - b.order);
      lists.push({ name, items });
    }
  }
  lists.sort((a, b) => compareStrings(a.name, b.name));
  const defaultList = data.get('default');
  return { kind: 'privacy', ...(typeof defaultList === 'string' ? { defaultList } : {}), lists };
}

function itemToStore(item: PrivacyItem): LuaTable {
  const table = LuaTable.of({ type: item.type, value: item.value, action: item.action, order: item.order });
  for (const kind of STANZA_KINDS) table.set(kind, item.stanzas.includes(kind));
  return table;
}

/** The stored value; `existing` lists the record does not name are kept (merge). */
export function privacyToStore(record: PrivacyRecord, existing?: LuaTable): LuaTable {
  const lists = new LuaTable();
  const oldLists = existing?.get('lists');
  if (oldLists instanceof LuaTable) for (const [name, list] of oldLists.hash) lists.set(name, list);
  for (const list of record.lists) {
    const items = [...list.items].sort((a, b) => a.order - b.order).map(itemToStore);
    lists.set(list.name, LuaTable.of({ name: list.name, items: LuaTable.of({}, items) }));
  }
  const oldDefault = existing?.get('default');
  const defaultList = record.defaultList ?? (typeof oldDefault === 'string' ? oldDefault : undefined);
  return LuaTable.of({ default: defaultList, lists });
}
