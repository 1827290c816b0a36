/**
 * Token authentication, face-neutral: errors are {@link AuthError}s. Operator tokens are configured as SHA-256 hashes; user tokens are
 * HMAC-signed, bound to one JID, a set of scopes and an expiry (at most an hour), and may be
 * single-use. Operator tokens made at run time, revocations and consumed links live in the token
 * store. Every comparison is constant-time.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { OperatorToken, Scope } from '../../config/config.js';
import { SCOPES } from '../../config/config.js';
import { sha256Hex } from './operator-token.js';
import type { TokenStore } from './token-store.js';
import { AuthError } from './errors.js';

export type Principal =
  | {
      readonly kind: 'operator';
      readonly name: string;
      readonly scopes: readonly Scope[];
      readonly hosts: readonly string[];
      /** Set for tokens from the token store (revocable, rotatable); absent for config-file tokens. */
      readonly tokenId?: string;
    }
  | {
      readonly kind: 'user';
      /** The one bare JID this token may act on. */
      readonly jid: string;
      readonly scopes: readonly Scope[];
      /** Token id, for single-use bookkeeping and logs. */
      readonly jti: string;
      readonly expiresAt: number;
      readonly singleUse: boolean;
    };

export const USER_TOKEN_PREFIX = 'xpu_';

export interface UserTokenClaims {
  readonly sub: string;
  readonly scp: readonly Scope[];
  /** Expiry, unix seconds. */
  readonly exp: number;
  readonly jti: string;
  /** Single use: the first request that presents it consumes it. */
  readonly one?: true;
}

export interface MintOptions {
  readonly jid: string;
  readonly scopes: readonly Scope[];
  readonly ttlSeconds: number;
  readonly singleUse?: boolean;
  readonly now?: number;
}

export interface AuthenticatorOptions {
  /** xporta's token state: operator tokens made at run time, revocations, consumed links. */
  readonly store?: TokenStore;
  /** Earlier user-token keys still accepted (never used to sign) while their tokens run out. */
  readonly previousSecrets?: readonly string[];
}

/** `xpu_` + base64url claims + `.` + base64url HMAC-SHA-256 (32 bytes, 43 characters), nothing else. */
const USER_TOKEN_SHAPE = /^xpu_([A-Za-z0-9_-]{1,4096})\.([A-Za-z0-9_-]{43})$/;
const CLAIM_KEYS = new Set(['sub', 'scp', 'exp', 'jti', 'one']);

export class Authenticator {
  private operatorHashes: { token: OperatorToken; hash: Buffer }[] = [];
  private key: Buffer;
  private previousKeys: Buffer[] = [];
  private readonly store: TokenStore | undefined;
  /** jti → expiry of single-use tokens already presented, when there is no store to keep them. */
  private readonly consumed = new Map<string, number>();

  constructor(
    tokens: readonly OperatorToken[],
    userTokenSecret: string | undefined,
    readonly maxTtlSeconds: number,
    options: AuthenticatorOptions = {},
  ) {
    this.store = options.store;
    // Without a configured key, user tokens are valid for this process only: safe, if forgetful.
    this.key = userTokenSecret !== undefined ? Buffer.from(userTokenSecret, 'utf8') : randomBytes(32);
    this.reload(tokens, userTokenSecret, options.previousSecrets);
  }

  /**
   * Takes a reloaded configuration's tokens and keys (SIGHUP). Without a configured key the
   * process's random one stays, so tokens already handed out keep working.
   */
  reload(tokens: readonly OperatorToken[], userTokenSecret: string | undefined, previousSecrets: readonly string[] = []): void {
    this.operatorHashes = tokens.map((token) => ({ token, hash: Buffer.from(token.sha256, 'hex') }));
    if (userTokenSecret !== undefined) this.key = Buffer.from(userTokenSecret, 'utf8');
    this.previousKeys = previousSecrets.map((s) => Buffer.from(s, 'utf8'));
  }

  /** The configured operator tokens (names, scopes, hosts), without their hashes. */
  configTokens(): { name: string; scopes: readonly Scope[]; hosts: readonly string[] }[] {
    return this.operatorHashes.map(({ token }) => ({ name: token.name, scopes: token.scopes, hosts: token.hosts }));
  }

  mintUserToken(options: MintOptions): { token: string; claims: UserTokenClaims } {
    if (options.ttlSeconds <= 0 || options.ttlSeconds > this.maxTtlSeconds) {
      throw new AuthError('invalid-request', `ttlSeconds must be between 1 and ${this.maxTtlSeconds}`);
    }
    const now = options.now ?? Math.floor(Date.now() / 1000);
    const claims: UserTokenClaims = {
      sub: options.jid,
      scp: [...new Set(options.scopes)],
      exp: now + options.ttlSeconds,
      jti: randomBytes(12).toString('base64url'),
      ...(options.singleUse ? { one: true as const } : {}),
    };
    const payload = Buffer.from(JSON.stringify(claims), 'utf8').toString('base64url');
    this.store?.recordUserToken({ jti: claims.jti, jid: claims.sub, scopes: claims.scp, expiresAt: claims.exp, singleUse: claims.one === true });
    return { token: `${USER_TOKEN_PREFIX}${payload}.${this.sign(this.key, payload)}`, claims };
  }

  /**
   * The principal a bearer token stands for, or an `invalid-token` error. Single-use tokens are consumed
   * here, so a replay of the same link fails (across restarts too, with a store).
   */
  authenticate(bearer: string, now = Math.floor(Date.now() / 1000)): Principal {
    if (bearer.startsWith(USER_TOKEN_PREFIX)) return this.authenticateUser(bearer, now);
    const presented = Buffer.from(sha256Hex(bearer), 'hex');
    let match: Principal | undefined;
    // Compare against every token, so timing says nothing about which (if any) matched.
    for (const { token, hash } of this.operatorHashes) {
      if (timingSafeEqual(presented, hash) && match === undefined) {
        match = { kind: 'operator', name: token.name, scopes: token.scopes, hosts: token.hosts };
      }
    }
    for (const stored of this.store?.activeOperatorTokens() ?? []) {
      if (timingSafeEqual(presented, Buffer.from(stored.sha256, 'hex')) && match === undefined) {
        match = { kind: 'operator', name: stored.name, scopes: stored.scopes, hosts: stored.hosts, tokenId: stored.id };
      }
    }
    if (!match) throw new AuthError('invalid-token', 'unknown token');
    return match;
  }

  /** Revokes a user token by jti until it would have expired; false if it was revoked already. */
  revokeUserToken(jti: string, expiresAt?: number): boolean {
    if (!this.store) throw new AuthError('unavailable', 'user tokens cannot be revoked without the token store');
    const known = this.store.userToken(jti);
    const until = expiresAt ?? known?.expiresAt ?? Math.floor(Date.now() / 1000) + this.maxTtlSeconds;
    return this.store.revokeUserToken(jti, until);
  }

  private authenticateUser(bearer: string, now: number): Principal {
    const shape = USER_TOKEN_SHAPE.exec(bearer);
    const payload = shape?.[1];
    const signature = shape?.[2];
    // A payload that does not round-trip is not the one that was signed (stray bits, padding).
    if (payload === undefined || signature === undefined || Buffer.from(payload, 'base64url').toString('base64url') !== payload) {
      throw new AuthError('invalid-token', 'malformed token');
    }
    const given = Buffer.from(signature, 'utf8');
    let valid = false;
    for (const key of [this.key, ...this.previousKeys]) {
      const expected = Buffer.from(this.sign(key, payload), 'utf8');
      if (expected.length === given.length && timingSafeEqual(given, expected)) valid = true;
    }
    if (!valid) throw new AuthError('invalid-token', 'bad signature');
    const claims = parseClaims(payload);
    if (claims.exp <= now) throw new AuthError('invalid-token', 'token expired');
    if (this.store?.isRevoked(claims.jti)) throw new AuthError('invalid-token', 'token revoked');
    if (claims.one) {
      if (this.store) {
        if (!this.store.consume(claims.jti, claims.exp)) throw new AuthError('invalid-token', 'token already used');
      } else {
        this.forgetExpired(now);
        if (this.consumed.has(claims.jti)) throw new AuthError('invalid-token', 'token already used');
        this.consumed.set(claims.jti, claims.exp);
      }
    }
    return { kind: 'user', jid: claims.sub, scopes: claims.scp, jti: claims.jti, expiresAt: claims.exp, singleUse: claims.one === true };
  }

  private sign(key: Buffer, payload: string): string {
    return createHmac('sha256', key).update(`${USER_TOKEN_PREFIX}${payload}`).digest('base64url');
  }

  private forgetExpired(now: number): void {
    for (const [jti, exp] of this.consumed) if (exp <= now) this.consumed.delete(jti);
  }
}

/** Claims exactly as minted: known keys, right types, known scopes; anything else is malformed. */
function parseClaims(payload: string): UserTokenClaims {
  let claims: unknown;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw new AuthError('invalid-token', 'malformed token');
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) throw new AuthError('invalid-token', 'malformed token');
  const c = claims as Record<string, unknown>;
  const wellFormed =
    Object.keys(c).every((k) => CLAIM_KEYS.has(k)) &&
    typeof c.sub === 'string' &&
    typeof c.jti === 'string' &&
    typeof c.exp === 'number' &&
    Number.isInteger(c.exp) &&
    Array.isArray(c.scp) &&
    c.scp.every((s) => (SCOPES as readonly unknown[]).includes(s)) &&
    (c.one === undefined || c.one === true);
  if (!wellFormed) throw new AuthError('invalid-token', 'malformed token');
  return claims as UserTokenClaims;
}

/**
 * The token id a failed attempt names, for counting failures per token: a user token's jti when
 * its claims can be read (signature unchecked: the count only ever slows failures down).
 */
export function attemptedTokenId(bearer: string): string | undefined {
  const shape = USER_TOKEN_SHAPE.exec(bearer);
  if (!shape?.[1]) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(shape[1], 'base64url').toString('utf8')) as { jti?: unknown };
    return typeof claims.jti === 'string' && claims.jti.length <= 64 ? claims.jti : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Throws a `forbidden` error unless the principal holds `scope` for this host (and, for a user
 * token, this JID). Authentication succeeded by then, so this is not an `invalid-token`.
 */
export function authorize(principal: Principal, scope: Scope, host: string, jid?: string): void {
  if (!principal.scopes.includes(scope)) throw new AuthError('forbidden', `the token lacks the ${scope} scope`);
  if (principal.kind === 'operator') {
    if (!principal.hosts.includes('*') && !principal.hosts.includes(host)) throw new AuthError('forbidden', `the token may not act on host ${host}`);
    return;
  }
  if (jid === undefined || principal.jid !== jid) throw new AuthError('forbidden', 'a user token may act only on its own account');
}

/**
 * Failed authentications per key (a client address, a token id) in a sliding minute. It only
 * ever changes how a failure is answered (`rate-limited` instead of `invalid-token`): a valid credential is checked
 * first and never refused for what others sent from the same address.
 */
export class FailedAuthLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly perMinute: number,
    private readonly maxTrackedClients = 10_000,
  ) {}

  /** Throws `rate-limited` when the key is over the limit. */
  check(key: string, now = Date.now()): void {
    const recent = this.recent(key, now);
    if (recent.length >= this.perMinute) {
      const retryAfter = Math.max(1, Math.ceil((recent[0]! + 60_000 - now) / 1000));
      throw new AuthError('rate-limited', 'too many failed authentication attempts', retryAfter);
    }
  }

  fail(key: string, now = Date.now()): void {
    if (!this.failures.has(key) && this.failures.size >= this.maxTrackedClients) {
      // Bounded memory under a spray of addresses: forget the oldest client first.
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
    const recent = this.recent(key, now);
    recent.push(now);
    // Only the newest perMinute entries matter for the answer; older ones would only grow the list.
    this.failures.set(key, recent.slice(-this.perMinute));
  }

  private recent(key: string, now: number): number[] {
    return (this.failures.get(key) ?? []).filter((t) => t > now - 60_000);
  }
}

/**
 * Requests per authenticated token in fixed one-minute windows; 0 disables the quota. Keys are
 * token names or ids, never token values.
 */
export class RequestQuota {
  private readonly windows = new Map<string, { start: number; count: number }>();

  constructor(
    private perMinute: number,
    private readonly maxTracked = 10_000,
  ) {}

  setLimit(perMinute: number): void {
    this.perMinute = perMinute;
  }

  /** Counts one request for `key`; throws `rate-limited` (with a retry delay) once the window's quota is spent. */
  take(key: string, now = Date.now()): void {
    if (this.perMinute <= 0) return;
    let window = this.windows.get(key);
    if (!window || now - window.start >= 60_000) {
      if (!window && this.windows.size >= this.maxTracked) {
        const oldest = this.windows.keys().next().value;
        if (oldest !== undefined) this.windows.delete(oldest);
      }
      window = { start: now, count: 0 };
      this.windows.delete(key);
      this.windows.set(key, window);
    }
    if (window.count >= this.perMinute) {
      throw new AuthError('rate-limited', 'this token made too many requests; try again later', Math.max(1, Math.ceil((window.start + 60_000 - now) / 1000)));
    }
    window.count++;
  }
}
