/**
 * Runs Lua code against Prosody's own libraries (/usr/lib/prosody), so codec tests can compare
 * with the real implementation. Only available where Prosody 0.12 and lua5.4 are installed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const PROSODY_LIB = '/usr/lib/prosody';

export function prosodyLuaAvailable(): boolean {
  if (!existsSync(`${PROSODY_LIB}/util/json.lua`)) return false;
  try {
    execFileSync('lua5.4', ['-v'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Runs `script` with Prosody's libraries on the path; `input` is its stdin, stdout is returned. */
export function runProsodyLua(script: string, input = ''): string {
  const prelude = `package.path = "${PROSODY_LIB}/?.lua;" .. package.path; package.cpath = "${PROSODY_LIB}/?.so;" .. package.cpath;\n`;
  return execFileSync('lua5.4', ['-e', prelude + script], { input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
}
