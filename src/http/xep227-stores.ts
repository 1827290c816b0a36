/**
 * The `stores=` parameter of the endpoints compatible with Prosody's mod_http_xep227: Prosody's
 * store names, comma-separated, mapped to xporta's data kinds. The names mod_http_xep227 knows
 * come first; `offline`, `blocklist` and `privacy` are Prosody's own store names for kinds the
 * module does not carry, accepted so that one vocabulary covers every kind xporta moves.
 */
import type { DataKind } from '../records/model.js';
import { problems } from './problem.js';

/** Prosody store name → the xporta data kind that holds it. */
export const PROSODY_STORES: Readonly<Record<string, DataKind>> = {
  accounts: 'credentials',
  roster: 'roster',
  private: 'private',
  pep: 'pep',
  vcard: 'vcard',
  archive: 'archive',
  pep_data: 'pep',
  offline: 'offline',
  blocklist: 'blocklist',
  privacy: 'privacy',
};

/** The stores mod_http_xep227 itself accepts (with its default `archive_store`). */
export const MOD_HTTP_XEP227_STORES: readonly string[] = ['accounts', 'roster', 'private', 'pep', 'vcard', 'archive', 'pep_data'];

/** A store name harmless to quote back in an error: a caller's typo, not a pasted secret. */
const QUOTABLE = /^[A-Za-z0-9_.:-]{1,40}$/;

/**
 * The data kinds `raw` selects. As in mod_http_xep227, empty names are skipped and an absent or
 * empty parameter selects nothing (an export of the bare account, an import that changes
 * nothing); an unknown name is a 400 naming it and the known names.
 */
export function kindsOfStores(raw: string | undefined): Set<DataKind> {
  const kinds = new Set<DataKind>();
  if (raw === undefined) return kinds;
  for (const name of raw.split(',')) {
    if (name === '') continue;
    const kind = Object.hasOwn(PROSODY_STORES, name) ? PROSODY_STORES[name] : undefined;
    if (kind === undefined) {
      const which = QUOTABLE.test(name) ? `unknown store ${JSON.stringify(name)}` : 'a store name that is not known';
      throw problems.badRequest(`${which} in stores (known: ${Object.keys(PROSODY_STORES).join(', ')})`);
    }
    kinds.add(kind);
  }
  return kinds;
}
