/**
 * The `blocklist` store (keyval, mod_blocklist.lua): `[jid] = time blocked` (or `true` when
 * migrated from privacy lists), and under `false` `{created, modified?, migrated?}`. The `false`
 * entry also tells mod_blocklist not to migrate the privacy store's default list over it.
 */
import type { BlocklistRecord } from '../../records/model.js';
import { LuaTable } from './lua.js';
import { compareStrings } from './util.js';

export function blocklistFromStore(data: LuaTable): BlocklistRecord {
  const items: string[] = [];
  for (const [jid, value] of data.hash) if (value !== false) items.push(jid);
  items.sort(compareStrings);
  return { kind: 'blocklist', items };
}

/**
 * The stored blocklist: `existing` entries first (merge), then the record's JIDs. A JID already
 * blocked keeps its time; new ones get `now`.
 */
export function blocklistToStore(record: BlocklistRecord, now: number, existing?: LuaTable): LuaTable {
  const data = new LuaTable();
  const oldMeta = existing?.get(false);
  const meta = LuaTable.of({ created: oldMeta instanceof LuaTable ? oldMeta.get('created') ?? now : now });
  if (existing) meta.set('modified', now);
  data.set(false, meta);
  for (const [jid, value] of existing?.hash ?? []) if (value !== false) data.set(jid, value);
  for (const jid of record.items) if (data.get(jid) === undefined) data.set(jid, now);
  return data;
}
