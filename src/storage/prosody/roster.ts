/**
 * The `roster` store (core/rostermanager.lua): one entry per contact
 * `{name?, groups = {[group] = true}, subscription, ask?, approved? = "true"}`, and under the key
 * `false` the metadata `{version = N, pending = {[jid] = preserialized subscribe presence | true}}`.
 */
import { NS, element, type PendingSubscriptionRecord, type RosterItem, type RosterRecord, type Subscription, type XmlElement } from '../../records/model.js';
import { LuaTable, isLuaInteger, isStanzaValue, luaNumber, type LuaValue } from './lua.js';
import { fromPreserialized, toPreserialized } from './stanza.js';
import { compareStrings } from './util.js';

const SUBSCRIPTIONS = new Set<string>(['none', 'to', 'from', 'both']);

export interface RosterContent {
  readonly roster: RosterRecord;
  readonly pending: PendingSubscriptionRecord[];
}

function itemFromStore(jid: string, value: LuaTable): RosterItem | undefined {
  const subscription = value.get('subscription');
  if (typeof subscription !== 'string' || !SUBSCRIPTIONS.has(subscription)) return undefined;
  const name = value.get('name');
  const ask = value.get('ask');
  const approved = value.get('approved');
  const groupsTable = value.get('groups');
  const groups: string[] = [];
  if (groupsTable instanceof LuaTable) {
    for (const [group, member] of groupsTable.hash) if (member !== false) groups.push(group);
  }
  groups.sort(compareStrings);
  return {
    jid,
    ...(typeof name === 'string' ? { name } : {}),
    subscription: subscription as Subscription,
    ...(ask === 'subscribe' ? { ask } : {}),
    ...(approved === 'true' || approved === true ? { approved: true } : {}),
    groups,
  };
}

/** The pending table: rostermanager's `[false].pending`, or the pre-0.10 top-level `pending` entry. */
function pendingTable(data: LuaTable): LuaTable | undefined {
  const legacy = data.get('pending');
  if (legacy instanceof LuaTable && typeof legacy.get('subscription') !== 'string') return legacy;
  const meta = data.get(false);
  const pending = meta instanceof LuaTable ? meta.get('pending') : undefined;
  return pending instanceof LuaTable ? pending : undefined;
}

function pendingPayload(value: LuaValue): XmlElement[] {
  if (value instanceof LuaTable) {
    return fromPreserialized(value).children.filter((c): c is XmlElement => typeof c !== 'string');
  }
  if (isStanzaValue(value)) return value.children.filter((c): c is XmlElement => typeof c !== 'string');
  return [];
}

/** The roster and inbound subscription requests of `userJid` (whose self-contact Prosody drops). */
export function rosterFromStore(data: LuaTable, userJid: string): RosterContent {
  const items: RosterItem[] = [];
  const legacyPending = pendingTable(data) === data.get('pending');
  for (const [jid, value] of data.hash) {
    if (jid === userJid || (jid === 'pending' && legacyPending) || !(value instanceof LuaTable)) continue;
    const item = itemFromStore(jid, value);
    if (item) items.push(item);
  }
  items.sort((a, b) => compareStrings(a.jid, b.jid));
  const meta = data.get(false);
  const version = meta instanceof LuaTable ? luaNumber(meta.get('version')) : undefined;
  const pending: PendingSubscriptionRecord[] = [];
  const table = pendingTable(data);
  if (table) {
    for (const [from, value] of table.hash) {
      if (value === false) continue;
      pending.push({ kind: 'pending-subscription', from, payload: pendingPayload(value) });
    }
  }
  pending.sort((a, b) => compareStrings(a.from, b.from));
  return {
    roster: { kind: 'roster', ...(version !== undefined ? { version: String(version) } : {}), items },
    pending,
  };
}

/** One contact's stored value, undefined for `subscription='remove'` (nothing is stored). */
export function rosterItemToStore(item: RosterItem): LuaTable | undefined {
  if (item.subscription === 'remove') return undefined;
  const groups = new LuaTable();
  for (const group of item.groups) groups.set(group, true);
  return LuaTable.of({
    name: item.name,
    groups,
    subscription: item.subscription,
    ask: item.ask,
    // rostermanager.lua compares with the string "true".
    approved: item.approved ? 'true' : undefined,
  });
}

/** The subscribe presence as rostermanager stores it for a pending inbound request. */
export function pendingToStore(record: PendingSubscriptionRecord, userJid: string): LuaTable {
  return toPreserialized(element('presence', NS.client, { from: record.from, to: userJid, type: 'subscribe' }, record.payload));
}

/** A roster version Prosody can increment: only integers survive `version + 1` in Lua. */
export function parseRosterVersion(version: string | undefined): number | undefined {
  if (version === undefined || !/^\d{1,15}$/.test(version)) return undefined;
  return Number(version);
}

/** The existing metadata's version, when it is a number. */
export function storedRosterVersion(meta: LuaValue | undefined): number | undefined {
  if (!(meta instanceof LuaTable)) return undefined;
  const version = meta.get('version');
  return isLuaInteger(version) ? version : undefined;
}

/**
 * The `[false]` metadata. When the user already had a roster, the version moves past both so
 * that no client holding the old version mistakes the imported roster for the one it cached.
 */
export function rosterMetaToStore(pending: ReadonlyMap<string, LuaValue>, incomingVersion: number | undefined, existingVersion: number | undefined): LuaTable {
  const pendingTable = new LuaTable();
  for (const [jid, value] of pending) pendingTable.set(jid, value);
  const version = existingVersion === undefined ? incomingVersion : Math.max(existingVersion, incomingVersion ?? 0) + 1;
  return LuaTable.of({ version, pending: pendingTable });
}
