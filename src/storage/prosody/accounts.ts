/**
 * The `accounts` store (keyval) ↔ the `<user>` element's credentials.
 *
 * mod_auth_internal_hashed keeps `stored_key`/`server_key` as lower-case hex, `salt` as the text of
 * a UUID used as raw salt bytes, and `iteration_count`; the hash is the host's `password_hash`
 * option (SHA-1 unless set). mod_auth_internal_plain keeps `password`. Any other key is kept as an
 * attribute of `<user>` in Prosody's extended-xep0227 namespace, as mod_storage_xep0227 does.
 *
 * Prosody 13 adds `created` and `updated` (numbers: Unix seconds; mod_tokenauth compares a
 * grant's time with `updated`, and a string there breaks every token of the account), `disabled`
 * (boolean) and `disabled_meta` (table). The last two are the server's moderation state: an
 * existing account keeps its own in both modes, whatever the document says.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type { SkippedItem } from '../backend.js';
import { NS, type ScramCredentials, type ScramMechanism, type UserStart } from '../../records/model.js';
import { splitClark } from '../../xml/xml.js';
import { ProsodyJsonError, decodeJson, encodeJson } from './json.js';
import { LuaFloat, LuaTable, isLuaInteger, isStanzaValue, luaNumber, luaNumberToString, parseLuaNumber, type LuaValue } from './lua.js';
import { saslprep } from '../../lib/saslprep.js';
import { serializeXmlValue } from './stanza.js';
import { generateUuid, nowSeconds } from './util.js';

export type PasswordHash = 'SHA-1' | 'SHA-256' | 'plain';

/** The Prosody generations whose storage xporta knows. */
export type ProsodyVersion = '0.12' | '13';

/** What Prosody 13 gives an account an admin creates (`default_provisioned_role`). */
export const DEFAULT_NEW_ACCOUNT_ROLE = 'prosody:member';

/** What Prosody 13 assumes without an `account_roles` row (`default_user_role`): never stored. */
export const IMPLICIT_USER_ROLE = 'prosody:registered';

/** What xporta must know about a Prosody host's configuration. */
export interface ProsodyHostOptions {
  /** The host's `password_hash` (mod_auth_internal_hashed), or `plain` for mod_auth_internal_plain. */
  readonly passwordHash: PasswordHash;
  /**
   * Prosody 13: the primary role (`account_roles` `_default`) of an account an import creates;
   * default {@link DEFAULT_NEW_ACCOUNT_ROLE}. `null` or `prosody:registered` stores none.
   */
  readonly newAccountRole?: string | null;
}

/** Account keys that are the server's moderation state, never taken from a document for an existing account. */
const SERVER_STATE_KEYS: ReadonlySet<string> = new Set(['disabled', 'disabled_meta']);

/** Account keys Prosody 13 keeps as numbers. */
const TIME_KEYS: ReadonlySet<string> = new Set(['created', 'updated']);

/** mod_auth_internal_hashed `default_iteration_count`. */
export const DEFAULT_ITERATION_COUNT = 10000;

export const PASSWORD_RESET_WARNING = 'password must be reset';
export const CREDENTIALS_KEPT_WARNING = 'the existing credentials were kept';

const CREDENTIAL_KEYS: ReadonlySet<string> = new Set(['password', 'salt', 'stored_key', 'server_key', 'iteration_count']);

interface HashSpec {
  readonly mechanism: ScramMechanism;
  readonly digest: 'sha1' | 'sha256';
  readonly bytes: number;
}

const HASHES: Record<'SHA-1' | 'SHA-256', HashSpec> = {
  'SHA-1': { mechanism: 'SCRAM-SHA-1', digest: 'sha1', bytes: 20 },
  'SHA-256': { mechanism: 'SCRAM-SHA-256', digest: 'sha256', bytes: 32 },
};

function specForKeyLength(bytes: number): HashSpec | undefined {
  return Object.values(HASHES).find((h) => h.bytes === bytes);
}

function hexToBytes(hex: string): Buffer | undefined {
  if (!/^(?:[0-9a-fA-F]{2})+$/.test(hex)) return undefined;
  return Buffer.from(hex, 'hex');
}

/** How a non-credential account key travels as an attribute value. */
function attributeText(value: LuaValue): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number' || value instanceof LuaFloat) return luaNumberToString(value);
  if (isStanzaValue(value)) return serializeXmlValue(value);
  return encodeJson(value);
}

/** The account's `<user>` content. `name` is the normalised localpart. */
export function accountFromStore(name: string, data: LuaTable): UserStart {
  const scram: ScramCredentials[] = [];
  const storedKey = data.get('stored_key');
  const serverKey = data.get('server_key');
  const salt = data.get('salt');
  const iterations = data.get('iteration_count');
  if (typeof storedKey === 'string' && typeof serverKey === 'string' && typeof salt === 'string' && isLuaInteger(iterations)) {
    const stored = hexToBytes(storedKey);
    const server = hexToBytes(serverKey);
    // The key length says which hash made them, whatever the host is configured with now.
    const spec = stored && server && stored.length === server.length ? specForKeyLength(stored.length) : undefined;
    if (stored && server && spec) {
      scram.push({
        mechanism: spec.mechanism,
        iterationCount: iterations,
        salt: Buffer.from(salt, 'utf8').toString('base64'),
        storedKey: stored.toString('base64'),
        serverKey: server.toString('base64'),
      });
    }
  }
  const password = data.get('password');
  const extraAttributes: Record<string, string> = {};
  for (const [key, value] of data.hash) {
    if (CREDENTIAL_KEYS.has(key)) continue;
    extraAttributes[`{${NS.prosodyExtended}}${key}`] = attributeText(value);
  }
  return {
    kind: 'user',
    name,
    ...(typeof password === 'string' && password !== '' ? { password } : {}),
    scram,
    extraAttributes,
  };
}

/** SCRAM keys as mod_auth_internal_hashed derives them (util/sasl/scram.lua `get_scram_hasher`). */
export function deriveScramKeys(
  password: string,
  hash: 'SHA-1' | 'SHA-256',
  salt: string = generateUuid(),
  iterationCount: number = DEFAULT_ITERATION_COUNT,
): LuaTable | undefined {
  const prepared = saslprep(password);
  if (prepared === undefined) return undefined;
  const { digest, bytes } = HASHES[hash];
  const salted = pbkdf2Sync(Buffer.from(prepared, 'utf8'), Buffer.from(salt, 'utf8'), iterationCount, bytes, digest);
  const clientKey = createHmac(digest, salted).update('Client Key').digest();
  const storedKey = createHash(digest).update(clientKey).digest();
  const serverKey = createHmac(digest, salted).update('Server Key').digest();
  return LuaTable.of({
    stored_key: storedKey.toString('hex'),
    server_key: serverKey.toString('hex'),
    salt,
    iteration_count: iterationCount,
  });
}

/** A SCRAM set's values as Prosody would store them, or why it cannot be stored. */
function scramToStore(cred: ScramCredentials, spec: HashSpec): LuaTable | string {
  const stored = Buffer.from(cred.storedKey, 'base64');
  const server = Buffer.from(cred.serverKey, 'base64');
  if (stored.length !== spec.bytes || server.length !== spec.bytes) return `keys are not ${spec.bytes} bytes`;
  if (!Number.isSafeInteger(cred.iterationCount) || cred.iterationCount < 1) return 'invalid iteration count';
  const saltBytes = Buffer.from(cred.salt, 'base64');
  const salt = saltBytes.toString('utf8');
  // The salt is stored as text: bytes that are not UTF-8 (or contain NUL) cannot be kept exactly.
  if (saltBytes.length === 0 || !Buffer.from(salt, 'utf8').equals(saltBytes) || salt.includes('\u0000')) {
    return 'salt is not storable as text';
  }
  return LuaTable.of({
    stored_key: stored.toString('hex'),
    server_key: server.toString('hex'),
    salt,
    iteration_count: cred.iterationCount,
  });
}

export interface AccountStoreResult {
  /** The `accounts` value to store. */
  readonly data: LuaTable;
  /** The document's credentials were usable; otherwise existing or locked credentials were kept. */
  readonly credentialsApplied: boolean;
  readonly warnings: readonly string[];
  readonly skipped: readonly SkippedItem[];
}

export interface AccountStoreOptions {
  /** The account's current value, when it exists. */
  readonly existing?: LuaTable;
  /** The target's generation: 13 keeps `created`/`updated` on every account. Default 0.12. */
  readonly serverVersion?: ProsodyVersion;
  /** Unix seconds for `created`/`updated`; default now. */
  readonly now?: number;
  /** Apply the document's credentials (the `credentials` kind is selected). */
  readonly applyCredentials: boolean;
  /** `merge` keeps existing non-credential keys the document does not mention. */
  readonly mode: 'replace' | 'merge';
}

/**
 * The `accounts` value for an imported `<user>`. Credentials the host cannot use are skipped;
 * when none are usable, an existing account keeps its credentials and a new one gets a random,
 * unknown password, with a warning in both cases.
 */
export function accountToStore(account: UserStart, host: ProsodyHostOptions, options: AccountStoreOptions): AccountStoreResult {
  const warnings: string[] = [];
  const skipped: SkippedItem[] = [];
  const credentials = options.applyCredentials ? chooseCredentials(account, host, skipped) : undefined;
  if (!credentials && options.existing && options.applyCredentials) {
    // The password still works: nothing to reset, but the operator should know the document's were not used.
    warnings.push(`${CREDENTIALS_KEPT_WARNING}: the document has no credentials this host can use`);
  } else if (!credentials && !options.existing) {
    warnings.push(`${PASSWORD_RESET_WARNING}: no usable credentials were imported; the account got a random password`);
  }
  const existing = options.existing;
  const data = new LuaTable();
  if (existing && options.mode === 'merge') {
    for (const [key, value] of existing.hash) data.set(key, value);
  }
  const kept = credentials ?? (existing ? pickCredentials(existing) : lockedCredentials(host));
  for (const key of CREDENTIAL_KEYS) data.set(key, undefined);
  for (const [key, value] of kept.hash) data.set(key, value);
  if (options.applyCredentials) {
    for (const [key, text] of Object.entries(account.extraAttributes)) {
      const clark = splitClark(key);
      if (!clark || clark.uri !== NS.prosodyExtended) continue;
      const name = clark.local;
      if (CREDENTIAL_KEYS.has(name) || name === '' || TIME_KEYS.has(name)) continue;
      if (SERVER_STATE_KEYS.has(name)) continue;
      data.set(name, text);
    }
  }
  applyServerState(data, account, existing);
  applyTimes(data, account, existing, options, credentials !== undefined);
  return { data, credentialsApplied: credentials !== undefined, warnings, skipped };
}

/**
 * `disabled`/`disabled_meta`: an existing account keeps its own (both modes, so a replace never
 * re-enables an account an admin disabled or one pending deletion). A new account is disabled
 * when the document says it was, with its meta, so a move never enables one.
 */
function applyServerState(data: LuaTable, account: UserStart, existing: LuaTable | undefined): void {
  for (const key of SERVER_STATE_KEYS) data.set(key, undefined);
  if (existing) {
    for (const key of SERVER_STATE_KEYS) data.set(key, existing.get(key));
    return;
  }
  const attr = (name: string): string | undefined => account.extraAttributes[`{${NS.prosodyExtended}}${name}`];
  if (attr('disabled') !== 'true') return;
  data.set('disabled', true);
  const meta = attr('disabled_meta');
  if (meta === undefined) return;
  try {
    const value = decodeJson(meta);
    if (value instanceof LuaTable) data.set('disabled_meta', value);
  } catch (err) {
    if (!(err instanceof ProsodyJsonError)) throw err;
  }
}

/** An attribute's text as Unix seconds, when it is a whole non-negative number. */
function secondsOf(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = parseLuaNumber(text);
  const value = typeof n === 'number' ? n : n?.value;
  return value !== undefined && Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined;
}

/**
 * `created`/`updated` as numbers, never strings. `created`: the existing account's, else the
 * document's, else now. `updated` (mod_tokenauth's "password changed at"): for an existing
 * account, now when the document's credentials replaced its own, so grants made before stop
 * working as after a password change, else its own; a new account (which has no grants) keeps the
 * document's, else now. On 0.12 they are only kept where already present.
 */
function applyTimes(data: LuaTable, account: UserStart, existing: LuaTable | undefined, options: AccountStoreOptions, credentialsApplied: boolean): void {
  const now = options.now ?? nowSeconds();
  const attr = (name: string): string | undefined => account.extraAttributes[`{${NS.prosodyExtended}}${name}`];
  // A string here is what an earlier xporta wrote: read as the number it should have been.
  const stored = (name: string): number | undefined => {
    const value = existing?.get(name);
    const n = luaNumber(value);
    if (n !== undefined) return Number.isFinite(n) && n >= 0 ? Math.floor(n) : undefined;
    return typeof value === 'string' ? secondsOf(value) : undefined;
  };
  const wanted = options.serverVersion === '13' || stored('created') !== undefined || attr('created') !== undefined;
  for (const key of TIME_KEYS) data.set(key, undefined);
  if (!wanted) return;
  const created = existing ? stored('created') ?? secondsOf(attr('created')) ?? now : secondsOf(attr('created')) ?? now;
  const updated = existing ? (credentialsApplied ? now : stored('updated') ?? now) : secondsOf(attr('updated')) ?? now;
  data.set('created', created);
  data.set('updated', updated);
}

/** The `account_roles` value for an account an import creates on Prosody 13, if one is stored. */
export function newAccountRoles(host: ProsodyHostOptions): LuaTable | undefined {
  const role = host.newAccountRole === undefined ? DEFAULT_NEW_ACCOUNT_ROLE : host.newAccountRole;
  if (role === null || role === '' || role === IMPLICIT_USER_ROLE) return undefined;
  return LuaTable.of({ _default: role });
}

function pickCredentials(existing: LuaTable): LuaTable {
  const picked = new LuaTable();
  for (const key of CREDENTIAL_KEYS) picked.set(key, existing.get(key));
  return picked;
}

/** Credentials nobody knows the password of: the account exists, an operator must reset it. */
function lockedCredentials(host: ProsodyHostOptions): LuaTable {
  const secret = randomBytes(32).toString('base64');
  if (host.passwordHash === 'plain') return LuaTable.of({ password: secret });
  return deriveScramKeys(secret, host.passwordHash) as LuaTable;
}

function chooseCredentials(account: UserStart, host: ProsodyHostOptions, skipped: SkippedItem[]): LuaTable | undefined {
  if (host.passwordHash === 'plain') {
    for (const cred of account.scram) {
      skipped.push({ kind: 'credentials', reason: 'this host stores plain passwords, SCRAM keys cannot be used', detail: cred.mechanism });
    }
    if (account.password === undefined) return undefined;
    const prepared = saslprep(account.password);
    if (prepared === undefined) {
      skipped.push({ kind: 'credentials', reason: 'the password is refused by SASLprep' });
      return undefined;
    }
    return LuaTable.of({ password: prepared });
  }
  const spec = HASHES[host.passwordHash];
  let chosen: LuaTable | undefined;
  for (const cred of account.scram) {
    if (cred.mechanism !== spec.mechanism) {
      skipped.push({ kind: 'credentials', reason: `this host uses ${spec.mechanism}`, detail: cred.mechanism });
      continue;
    }
    const stored = scramToStore(cred, spec);
    if (typeof stored === 'string') skipped.push({ kind: 'credentials', reason: stored, detail: cred.mechanism });
    else chosen ??= stored;
  }
  if (chosen) return chosen;
  if (account.password !== undefined) {
    const derived = deriveScramKeys(account.password, host.passwordHash);
    if (derived) return derived;
    skipped.push({ kind: 'credentials', reason: 'the password is refused by SASLprep' });
  }
  return undefined;
}
