/**
 * The keyval rule of mod_storage_sql.lua (`keyval_store_set`/`keyval_store_get`): a table is kept
 * as one entry per non-empty string key, and everything else (keys `false`, integers, the array
 * part, the empty string) as one table under the key `""`. Reading merges that table back in.
 */
import { LuaTable, type LuaValue } from './lua.js';

export interface KeyvalEntry {
  readonly key: string;
  readonly value: LuaValue;
}

export function splitKeyval(data: LuaTable): KeyvalEntry[] {
  const entries: KeyvalEntry[] = [];
  const extra = new LuaTable();
  for (const [key, value] of data.entries()) {
    if (typeof key === 'string' && key !== '') entries.push({ key, value });
    else extra.set(key, value);
  }
  if (!extra.isEmpty) entries.push({ key: '', value: extra });
  return entries;
}

export function mergeKeyval(entries: Iterable<KeyvalEntry>): LuaTable {
  const data = new LuaTable();
  for (const { key, value } of entries) {
    if (key !== '') data.set(key, value);
    else if (value instanceof LuaTable) for (const [k, v] of value.entries()) data.set(k, v);
  }
  return data;
}
