/** Which Prosody stores xporta maps to which record kind, and which it leaves alone. */
import type { DataKind } from '../../records/model.js';
import { ARCHIVE_STORE, OFFLINE_STORE } from './archive.js';
import { PEP_ITEMS_PREFIX, PEP_STORE } from './pep.js';

/** keyval/map stores with a typed record kind. */
export const TYPED_STORES: ReadonlyMap<string, DataKind> = new Map<string, DataKind>([
  ['accounts', 'credentials'],
  ['roster', 'roster'],
  ['vcard', 'vcard'],
  ['private', 'private'],
  [PEP_STORE, 'pep'],
  ['blocklist', 'blocklist'],
  ['privacy', 'privacy'],
]);

/** Archive stores with a typed record kind (`pep_<node>` by prefix). */
export function typedArchiveKind(store: string): DataKind | undefined {
  if (store === ARCHIVE_STORE) return 'archive';
  if (store === OFFLINE_STORE) return 'offline';
  if (store.startsWith(PEP_ITEMS_PREFIX)) return 'pep';
  return undefined;
}

/**
 * Stores never exported or imported: credentials other than the password (tokens, which would let
 * a document grant access), authorisation (`roles`, `account_roles`), moderation state, and the
 * server's own bookkeeping.
 */
export const PRIVATE_STORES: ReadonlySet<string> = new Set([
  'auth_tokens',
  'fast_tokens',
  'roles',
  // Prosody 13: the account's roles (server authority; an import creating an account writes the
  // host's newAccountRole instead), pending deletion and moderation flags (server moderation state).
  'account_roles',
  'accounts_cleanup',
  'account_flags',
  'invite_token',
  'invite_api_keys',
  'smacks_h',
  'cron',
  'archive_cleanup',
  'muc_log_cleanup',
  'tombstones',
  'cloud_notify',
]);

/**
 * Opaque stores an import writes unless configured otherwise. A document may come from the user, so
 * only stores whose content the user could set anyway are on it; a module store (say
 * `firewall_marks`) could otherwise lift a restriction.
 */
export const DEFAULT_IMPORTABLE_STORES: readonly string[] = ['account_details', 'archive_prefs'];

/** True for a store read as an opaque record. */
export function isOpaqueStore(store: string, archive: boolean): boolean {
  if (PRIVATE_STORES.has(store)) return false;
  return archive ? typedArchiveKind(store) === undefined : !TYPED_STORES.has(store);
}
