/** A Lua string literal; bytes outside printable ASCII become decimal escapes so any path survives. */
export function luaString(value: string): string {
  let out = '"';
  for (const byte of Buffer.from(value, 'utf8')) {
    if (byte === 0x22) out += '\\"';
    else if (byte === 0x5c) out += '\\\\';
    else if (byte >= 0x20 && byte < 0x7f) out += String.fromCharCode(byte);
    else out += `\\${byte.toString(10).padStart(3, '0')}`;
  }
  return `${out}"`;
}
