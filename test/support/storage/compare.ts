import { LuaTable, type LuaValue } from '../../../src/storage/prosody/index.js';

/** A plain representation of a Lua value whose equality ignores key order (Lua's pairs() has none). */
export function comparable(value: LuaValue): unknown {
  if (!(value instanceof LuaTable)) return value;
  return {
    hash: Object.fromEntries([...value.hash].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, comparable(v)])),
    array: value.array.map(comparable),
    others: value
      .otherEntries()
      .map(({ key, value: v }) => [JSON.stringify(key), comparable(v)] as const)
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  };
}
