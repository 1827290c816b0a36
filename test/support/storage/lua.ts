/**
 * Runs Lua code against Prosody's own libraries (/usr/lib/prosody), so codec tests can compare
 * with the real implementation. Only available where Prosody 0.12 and lua5.4 are installed.
 * Also the Lua value helpers the codec tests share (a comparable form, Lua's own round trip).
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
import { LuaFloat, LuaTable, type LuaKey, type LuaValue } from '../../../src/storage/prosody/lua.js';
import { serializeLuaNumber } from '../../../src/storage/prosody-files/lua-serialize.js';
import { isCI } from '../prosody.js';

export const LUA = process.env.XPORTA_LUA_BIN ?? '/usr/bin/lua5.4';
export const PROSODY_LIB = process.env.XPORTA_PROSODY_LIB ?? '/usr/lib/prosody';

/**
 * True when lua5.4 and the named files of Prosody's library are there. Under CI always true:
 * the cross-checks then run and fail, they never skip.
 */
export function luaAvailable(prosodyFiles: readonly string[] = []): boolean {
  try {
    accessSync(LUA, fsConstants.X_OK);
    for (const file of prosodyFiles) accessSync(path.join(PROSODY_LIB, file), fsConstants.R_OK);
    return true;
  } catch {
    if (isCI) return true;
    console.warn(`[xporta tests] skipping Lua cross-checks: ${LUA} or Prosody's ${prosodyFiles.join(', ')} missing`);
    return false;
  }
}

export function prosodyLuaAvailable(): boolean {
  return luaAvailable(['util/json.lua']);
}

/** Runs `script` with Prosody's libraries on the path; `input` is its stdin, stdout is returned. */
export function runProsodyLua(script: string, input = ''): string {
  const prelude = `package.path = "${PROSODY_LIB}/?.lua;" .. package.path; package.cpath = "${PROSODY_LIB}/?.so;" .. package.cpath;\n`;
  return execFileSync(LUA, ['-e', prelude + script], { input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}

/** A comparable plain form: key order does not matter in Lua, number subtypes do. */
export function canon(value: LuaValue | undefined): unknown {
  if (value === undefined) return { nil: true };
  if (typeof value === 'string') return { s: value };
  if (typeof value === 'boolean') return { b: value };
  if (typeof value === 'number' && Number.isInteger(value)) return { i: value === 0 ? 0 : value };
  if (typeof value === 'number' || value instanceof LuaFloat) {
    const x = typeof value === 'number' ? value : value.value;
    return { f: Number.isNaN(x) ? 'nan' : Object.is(x, -0) ? '-0' : x };
  }
  if (value instanceof LuaTable) {
    const keyed = [...value.hash.entries()].map(([k, v]) => [JSON.stringify(k), canon(v)] as const);
    const others = value.otherEntries().map(({ key, value: v }) => [`#${JSON.stringify(canon(key as LuaValue))}`, canon(v)] as const);
    return { array: value.array.map(canon), keys: Object.fromEntries([...keyed, ...others].sort(([a], [b]) => (a < b ? -1 : 1))) };
  }
  return { stanza: value };
}

/** What Lua makes of a value on the way through text: a float printed without `.`/`e` reads back as an integer. */
export function luaRoundTrip(value: LuaValue): LuaValue {
  if (value instanceof LuaFloat) {
    const text = serializeLuaNumber(value);
    return /^-?\d+$/.test(text) ? Number(text) + 0 : value;
  }
  if (value instanceof LuaTable) {
    const t = new LuaTable();
    for (const [k, v] of value.entries()) t.set(k instanceof LuaFloat && Number.isInteger(k.value) ? k.value : k, luaRoundTrip(v));
    return t;
  }
  return value;
}

/** A Lua table of `members`, `array` and `others` (keys of any other type). */
export function table(members: Record<string, LuaValue> = {}, array: LuaValue[] = [], others: [LuaKey, LuaValue][] = []): LuaTable {
  const t = LuaTable.of(members, array);
  for (const [k, v] of others) t.set(k, v);
  return t;
}
