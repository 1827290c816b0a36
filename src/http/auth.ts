/**
 * Bearer authentication. Operator tokens are configured as SHA-256 hashes; user tokens are
 * HMAC-signed, bound to one JID, a set of scopes and an expiry (at most an hour), and may be
 * single-use. Every comparison is constant-time, and failed attempts are rate-limited per client.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { OperatorToken, Scope } from '../config.js';
import { SCOPES } from '../config.js';
import { sha256Hex } from '../operator-token.js';
import { problems } from './problem.js';

export type Principal =
  | { readonly kind: 'operator'; readonly name: string; readonly scopes: readonly Scope[]; readonly hosts: readonly string[] }
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

export class Authenticator {
  private readonly operatorHashes: { token: OperatorToken; hash: Buffer }[];
  private readonly key: Buffer;
  /** jti → expiry of single-use tokens already presented. */
  private readonly consumed = new Map<string, number>();

  constructor(
    tokens: readonly OperatorToken[],
    userTokenSecret: string | undefined,
    readonly maxTtlSeconds: number,
  ) {
    this.operatorHashes = tokens.map((token) => ({ token, hash: Buffer.from(token.sha256, 'hex') }));
    // Without a configured key, user tokens are valid for this process only: safe, if forgetful.
    this.key = userTokenSecret !== undefined ? Buffer.from(userTokenSecret, 'utf8') : randomBytes(32);
  }

  mintUserToken(options: MintOptions): { token: string; claims: UserTokenClaims } {
    if (options.ttlSeconds <= 0 || options.ttlSeconds > this.maxTtlSeconds) {
      throw problems.badRequest(`ttlSeconds must be between 1 and ${this.maxTtlSeconds}`);
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
    return { token: `${USER_TOKEN_PREFIX}${payload}.${this.sign(payload)}`, claims };
  }

  /**
   * The principal a bearer token stands for, or a 401 problem. Single-use tokens are consumed
   * here, so a replay of the same link fails.
   */
  authenticate(bearer: string, now = Math.floor(Date.now() / 1000)): Principal {
    if (bearer.startsWith(USER_TOKEN_PREFIX)) return this.authenticateUser(bearer.slice(USER_TOKEN_PREFIX.length), now);
    const presented = Buffer.from(sha256Hex(bearer), 'hex');
    let match: OperatorToken | undefined;
    // Compare against every token, so timing says nothing about which (if any) matched.
    for (const { token, hash } of this.operatorHashes) {
      if (timingSafeEqual(presented, hash) && match === undefined) match = token;
    }
    if (!match) throw problems.invalidToken('unknown token');
    return { kind: 'operator', name: match.name, scopes: match.scopes, hosts: match.hosts };
  }

  private authenticateUser(body: string, now: number): Principal {
    const [payload, signature] = body.split('.');
    if (payload === undefined || signature === undefined) throw problems.invalidToken('malformed token');
    const expected = Buffer.from(this.sign(payload), 'utf8');
    const given = Buffer.from(signature, 'utf8');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw problems.invalidToken('bad signature');
    let claims: UserTokenClaims;
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as UserTokenClaims;
    } catch {
      throw problems.invalidToken('malformed token');
    }
    if (typeof claims.exp !== 'number' || claims.exp <= now) throw problems.invalidToken('token expired');
    if (typeof claims.sub !== 'string' || !Array.isArray(claims.scp) || typeof claims.jti !== 'string') {
      throw problems.invalidToken('malformed token');
    }
    const scopes = claims.scp.filter((s): s is Scope => (SCOPES as readonly string[]).includes(s));
    if (claims.one) {
      this.forgetExpired(now);
      if (this.consumed.has(claims.jti)) throw problems.invalidToken('token already used');
      this.consumed.set(claims.jti, claims.exp);
    }
    return { kind: 'user', jid: claims.sub, scopes, jti: claims.jti, expiresAt: claims.exp, singleUse: claims.one === true };
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.key).update(`${USER_TOKEN_PREFIX}${payload}`).digest('base64url');
  }

  private forgetExpired(now: number): void {
    for (const [jti, exp] of this.consumed) if (exp <= now) this.consumed.delete(jti);
  }
}

/**
 * Throws 403 unless the principal holds `scope` for this host (and, for a user token, this JID).
 * Authentication succeeded by then, so 403 (not 401) is the honest answer.
 */
export function authorize(principal: Principal, scope: Scope, host: string, jid?: string): void {
  if (!principal.scopes.includes(scope)) throw problems.forbidden(`the token lacks the ${scope} scope`);
  if (principal.kind === 'operator') {
    if (!principal.hosts.includes('*') && !principal.hosts.includes(host)) throw problems.forbidden(`the token may not act on host ${host}`);
    return;
  }
  if (jid === undefined || principal.jid !== jid) throw problems.forbidden('a user token may act only on its own account');
}

/** The bearer token from an Authorization header, or a 401 problem. */
export function bearerFrom(header: string | undefined): string {
  if (header === undefined || header === '') throw problems.unauthorized('an Authorization: Bearer token is required');
  const match = /^Bearer[ ]+([\x21-\x7e]+)\s*$/i.exec(header);
  if (!match?.[1]) throw problems.unauthorized('the Authorization header must use the Bearer scheme');
  return match[1];
}

/** Failed authentications per client address in a sliding minute. */
export class FailedAuthLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly perMinute: number,
    private readonly maxTrackedClients = 10_000,
  ) {}

  /** Throws 429 when the client is over the limit. */
  check(client: string, now = Date.now()): void {
    const recent = this.recent(client, now);
    if (recent.length >= this.perMinute) {
      const retryAfter = Math.max(1, Math.ceil((recent[0]! + 60_000 - now) / 1000));
      throw problems.tooManyRequests('too many failed authentication attempts', retryAfter);
    }
  }

  fail(client: string, now = Date.now()): void {
    if (!this.failures.has(client) && this.failures.size >= this.maxTrackedClients) {
      // Bounded memory under a spray of addresses: forget the oldest client first.
      const oldest = this.failures.keys().next().value;
      if (oldest !== undefined) this.failures.delete(oldest);
    }
    const recent = this.recent(client, now);
    recent.push(now);
    this.failures.set(client, recent);
  }

  private recent(client: string, now: number): number[] {
    return (this.failures.get(client) ?? []).filter((t) => t > now - 60_000);
  }
}
