/**
 * Which Prosody generation keeps a data directory, told from what 13 leaves in a host's
 * directory: its own stores (`account_roles`, `account_activity`) or a `.lidx` list index in the
 * archive store. Nothing of this kind means 0.12, or a 13 that has not run yet:
 * `storage.serverVersion` in the config settles it then.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProsodyVersion } from '../prosody/accounts.js';
import { hostDir, storeEncode } from './paths.js';

const THIRTEEN_STORES = ['account_roles', 'account_activity'].map(storeEncode);

async function names(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

export async function detectProsodyVersion(dataDir: string, host: string): Promise<ProsodyVersion | undefined> {
  const dir = hostDir(dataDir, host);
  const stores = await names(dir);
  if (stores.some((s) => THIRTEEN_STORES.includes(s))) return '13';
  for (const store of ['archive', 'offline']) {
    if (stores.includes(store) && (await names(join(dir, store))).some((n) => n.endsWith('.lidx'))) return '13';
  }
  return undefined;
}
