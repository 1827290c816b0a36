/**
 * mod_storage_internal's archive items ↔ the driver-independent {@link ArchiveItem}.
 *
 * `archive:append` stores `st.preserialize(stanza)` with three extra string keys on the stanza
 * table itself, `key`, `when` and `with` (absent when the caller passed none, as mod_pep does for
 * items the server published), and the time once more as `attr.stamp`
 * (util.datetime.datetime: `YYYY-MM-DDTHH:MM:SSZ`). `archive:find` strips all of them again, and
 * `attr.stamp_legacy` too, and reads the time from `attr.stamp` when `when` is missing and the key
 * from the item's position when `key` is missing.
 */
import { NS } from '../../records/model.js';
import type { ArchiveItem } from '../prosody/archive.js';
import { LuaTable, isStanzaValue, luaNumber, type LuaValue } from '../prosody/lua.js';
import { fromPreserialized, toPreserialized } from '../prosody/stanza.js';
import { isoToSeconds } from '../prosody/util.js';

export class ListItemError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ListItemError';
  }
}

const STAMP = /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d*)?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

/** util.datetime.parse for the stamps Prosody writes (no zone means UTC, as written). */
function parseStamp(stamp: string): number | undefined {
  const m = STAMP.exec(stamp);
  if (!m) return undefined;
  let zone = m[8] ?? 'Z';
  if (zone !== 'Z' && !zone.includes(':')) zone = zone.length === 3 ? `${zone}:00` : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  return isoToSeconds(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${zone}`);
}

const TWO_DIGITS = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const DAY_SECONDS = 86_400;
/** The last day's `YYYY-MM-DDT`: an archive's items come in time order, so most share it. */
let dayNumber = Number.NaN;
let dayPrefix = '';

/**
 * `YYYY-MM-DDT` of the day holding `whole` seconds since the epoch, for the years 1970 to 9999
 * (the rest of {@link stampOf}'s text is the time of day); undefined outside them.
 */
export function stampDayPrefix(whole: number): string | undefined {
  if (whole < 0 || whole >= 253_402_300_800) return undefined;
  const day = Math.floor(whole / DAY_SECONDS);
  if (day !== dayNumber) {
    dayPrefix = new Date(day * DAY_SECONDS * 1000).toISOString().slice(0, 11);
    dayNumber = day;
  }
  return dayPrefix;
}

/** `YYYY-MM-DDTHH:MM:SS` of whole seconds since the epoch. */
function secondsToIsoBase(whole: number): string {
  // Runs once per archived item: the years 1970 to 9999 are formatted here.
  const prefix = stampDayPrefix(whole);
  if (prefix === undefined) return new Date(whole * 1000).toISOString().replace(/\.\d{3}Z$/, '');
  let t = whole % DAY_SECONDS;
  const hours = Math.floor(t / 3600);
  t -= hours * 3600;
  const minutes = Math.floor(t / 60);
  return `${prefix}${TWO_DIGITS[hours]}:${TWO_DIGITS[minutes]}:${TWO_DIGITS[t - minutes * 60]}`;
}

/** util.datetime.datetime(when): whole seconds, or (Prosody 13) a float's µs, floored as Prosody does. */
export function stampOf(when: number): string {
  const whole = Math.floor(when);
  const base = secondsToIsoBase(whole);
  if (when === whole) return `${base}Z`;
  return `${base}.${String(Math.floor((when - whole) * 1e6)).padStart(6, '0')}Z`;
}

/**
 * A `.list` item as an archive item whose value is still the preserialized stanza table, so that
 * each store's mapper resolves its namespaces as it does for SQL values. `position` is 1-based.
 */
export function archiveItemFromList(value: LuaValue, position: number): ArchiveItem {
  if (!(value instanceof LuaTable)) throw new ListItemError(`item ${position} is not a table`);
  const attr = value.get('attr');
  if (typeof value.get('name') !== 'string' || !(attr instanceof LuaTable)) {
    throw new ListItemError(`item ${position} is not a stanza (no name or attr)`);
  }
  const key = value.get('key');
  const withJid = value.get('with');
  const stamp = attr.get('stamp');
  const when = luaNumber(value.get('when')) ?? (typeof stamp === 'string' ? parseStamp(stamp) : undefined);
  if (when === undefined || !Number.isFinite(when)) throw new ListItemError(`item ${position} has no time`);

  const stanza = new LuaTable();
  for (const [k, v] of value.entries()) if (k !== 'key' && k !== 'when' && k !== 'with' && k !== 'attr') stanza.set(k, v);
  const cleanAttr = new LuaTable();
  for (const [k, v] of attr.entries()) if (k !== 'stamp' && k !== 'stamp_legacy') cleanAttr.set(k, v);
  stanza.set('attr', cleanAttr);
  return {
    key: typeof key === 'string' ? key : String(position),
    when,
    with: typeof withJid === 'string' ? withJid : '',
    value: stanza,
  };
}

/** The stanza of an item read by {@link archiveItemFromList}, as `archive:find` returns it. */
export function stanzaOfListItem(item: ArchiveItem): ArchiveItem {
  if (!(item.value instanceof LuaTable)) return item;
  return { ...item, value: fromPreserialized(item.value, NS.client) };
}

export interface ListItemOptions {
  /**
   * Write `with` even when it is empty. mod_offline passes `""` and mod_mam always a JID; mod_pep
   * passes nil for items the server published, which leaves the key out.
   */
  readonly keepEmptyWith: boolean;
}

/** The `.list` item `archive:append(user, key, value, when, with)` would write. */
export function archiveItemToList(item: ArchiveItem, options: ListItemOptions): LuaTable {
  let table: LuaTable;
  if (isStanzaValue(item.value)) table = toPreserialized(item.value);
  else if (item.value instanceof LuaTable) table = copyTable(item.value);
  else throw new ListItemError('Prosody keeps only stanzas in archive stores');
  const attr = table.get('attr');
  if (typeof table.get('name') !== 'string' || !(attr instanceof LuaTable)) throw new ListItemError('not a preserialized stanza');
  if (!Number.isFinite(item.when) || item.when < 0) throw new ListItemError(`time ${item.when} is not a time`);
  const newAttr = copyTable(attr);
  newAttr.set('stamp', stampOf(item.when));
  table.set('attr', newAttr);
  table.set('key', item.key);
  table.set('when', item.when);
  if (item.with !== '' || options.keepEmptyWith) table.set('with', item.with);
  return table;
}

function copyTable(source: LuaTable): LuaTable {
  const copy = new LuaTable();
  for (const [k, v] of source.entries()) copy.set(k, v);
  return copy;
}
