/**
 * File names of Prosody's internal storage (util/datamanager.lua `encode`, `store_encode`,
 * `getpath`): `<data_path>/<encode(host)>/<store_encode(store)>/<encode(user)>.dat|.list`.
 *
 * `encode` replaces every byte of the UTF-8 text that is not an ASCII letter or digit (Lua's
 * `%W` in the C locale) by `%xx` in lower-case hex; `store_encode` also keeps `_`. An encoded
 * name therefore consists of `[A-Za-z0-9_%]` only: it cannot contain `/`, `.` (so neither `..`
 * nor a leading dot) or NUL, whatever the JID, and a path built from encoded names stays one
 * level below each directory it is joined to. {@link getpath} still checks this on every call.
 */
import { join, resolve } from 'node:path';
import { utf8Bytes } from './lua-serialize.js';

export class PathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PathError';
  }
}

export type FileExtension = 'dat' | 'list';

function isAlnum(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

function encodeBytes(value: string, keep: (b: number) => boolean): string {
  let out = '';
  for (const b of utf8Bytes(value)) out += keep(b) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`;
  return out;
}

/** datamanager `encode`, for host and user names. */
export function encode(value: string): string {
  return encodeBytes(value, isAlnum);
}

/** datamanager `store_encode`, for store names: `_` stays as it is. */
export function storeEncode(value: string): string {
  return encodeBytes(value, (b) => isAlnum(b) || b === 0x5f);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** datamanager `decode` (`%xx`, either case, to the byte); undefined when not UTF-8. */
export function decode(name: string): string | undefined {
  const input = Buffer.from(name, 'utf8');
  const bytes: number[] = [];
  for (let i = 0; i < input.length; i++) {
    const b = input[i] as number;
    const hex = b === 0x25 ? input.toString('latin1', i + 1, i + 3) : '';
    if (/^[0-9a-fA-F]{2}$/.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(b);
    }
  }
  try {
    return UTF8.decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
}

/**
 * The name a directory entry stands for, only when Prosody would itself have produced exactly this
 * entry for it: a file `Alice.dat` or `a%2Eb.dat` is never read by Prosody (it would look for
 * `Alice` under its nodeprepped name and always encodes in lower case), so it is not an account.
 */
export function decodeCanonical(name: string, store = false): string | undefined {
  const decoded = decode(name);
  if (decoded === undefined || decoded === '') return undefined;
  return (store ? storeEncode(decoded) : encode(decoded)) === name ? decoded : undefined;
}

const SAFE_SEGMENT = /^[A-Za-z0-9_%]+$/;

function segment(encoded: string, what: string): string {
  // Holds by construction; checked anyway because a path escape would be a security bug.
  if (!SAFE_SEGMENT.test(encoded)) throw new PathError(`${what} does not encode to a safe file name`);
  return encoded;
}

/**
 * datamanager `getpath(username, host, datastore, ext)`. Unlike Prosody, empty names are refused:
 * an empty user would be the hidden file `.dat`, and host-level data (Prosody's `username = nil`)
 * is not something xporta writes.
 */
export function getpath(dataDir: string, host: string, store: string, user: string, ext: FileExtension): string {
  if (host === '' || store === '' || user === '') throw new PathError('host, store and user must not be empty');
  return join(hostDir(dataDir, host), segment(storeEncode(store), 'store'), `${segment(encode(user), 'user')}.${ext}`);
}

/** `<data_path>/<encode(host)>`. */
/** Prosody 13's item index beside a `.list` file (`<user>.lidx`, util/datamanager.lua). */
export function listIndexPath(listPath: string): string {
  if (!listPath.endsWith('.list')) throw new Error(`not a .list path: ${listPath}`);
  return `${listPath.slice(0, -'.list'.length)}.lidx`;
}

export function hostDir(dataDir: string, host: string): string {
  if (host === '') throw new PathError('host must not be empty');
  return join(resolve(dataDir), segment(encode(host), 'host'));
}

/** `<data_path>/<encode(host)>/<store_encode(store)>`. */
export function storeDir(dataDir: string, host: string, store: string): string {
  if (store === '') throw new PathError('store must not be empty');
  return join(hostDir(dataDir, host), segment(storeEncode(store), 'store'));
}
