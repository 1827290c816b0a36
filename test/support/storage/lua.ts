/**
 * Runs Lua code against Prosody's own libraries (/usr/lib/prosody), so codec tests can compare
 * with the real implementation. Only available where Prosody 0.12 and lua5.4 are installed.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import path from 'node:path';
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
