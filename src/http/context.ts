/**
 * What every route needs, built once per app, and the guard that turns a request into an
 * authorised principal.
 */
import { join } from 'node:path';
import type { FastifyRequest } from 'fastify';
import { AuditLog } from '../core/audit.js';
import type { TokenStore } from '../core/auth/token-store.js';
import type { Config, Scope } from '../config/config.js';
import { ExportFiles } from '../core/export-files.js';
import { bareJid, JidError, normaliseDomain } from '../lib/jid.js';
import type { JobStore } from '../core/job-store.js';
import { AccountLocks, crossProcessLocker, Slots } from '../core/locks.js';
import type { ApplyReport, StorageBackend, UserRef } from '../storage/backend.js';
import { refOf } from '../transfer/account-transfer.js';
import { attemptedTokenId, Authenticator, authorize, bearerFrom, FailedAuthLimiter, RequestQuota, USER_TOKEN_PREFIX, type Principal } from './auth.js';
import { Metrics } from '../core/metrics.js';
import { Problem, problems } from './problem.js';

/** An import into one account finished; dry runs too, so a command that handed out a check link can show its result. */
export interface ImportFinished {
  readonly jid: string;
  readonly report: ApplyReport;
  readonly principal: Principal;
}

/** Tells an account's owner what an import changed (the XMPP component does: src/xmpp). */
export interface AccountNotifier {
  /** Returns at once and never throws: an HTTP answer does not wait for XMPP. */
  importFinished(event: ImportFinished): void;
}

export interface ServiceContext {
  readonly config: Config;
  readonly storage: StorageBackend;
  readonly auth: Authenticator;
  /** Failed authentications per client address. */
  readonly limiter: FailedAuthLimiter;
  /** Failed authentications per attempted user-token id: apart, so a spray of made-up ids cannot evict address counts. */
  readonly tokenIdLimiter: FailedAuthLimiter;
  readonly quota: RequestQuota;
  /** xporta's token state; absent only where a caller built a context without one. */
  readonly tokens?: TokenStore;
  readonly audit: AuditLog;
  readonly locks: AccountLocks;
  /** Background jobs in xporta's state; absent only where a caller built a context without one. */
  readonly jobs?: JobStore;
  readonly importSlots: Slots;
  readonly metrics: Metrics;
  /** Downloadable export files under `dataDir/exports`. */
  readonly exportFiles: ExportFiles;
  /** Not readonly: the component attaches itself once the app (and so this context) exists; absent when it is disabled. */
  notifier?: AccountNotifier;
}

export interface ContextParts {
  readonly tokens?: TokenStore;
  readonly jobs?: JobStore;
  readonly audit?: AuditLog;
}

export function createContext(config: Config, storage: StorageBackend, parts: ContextParts = {}): ServiceContext {
  const metrics = new Metrics();
  return {
    config,
    storage,
    auth: new Authenticator(config.auth.tokens, config.auth.userTokenSecret, config.auth.userTokenMaxTtlSeconds, {
      ...(parts.tokens ? { store: parts.tokens } : {}),
      previousSecrets: config.auth.previousUserTokenSecrets,
    }),
    limiter: new FailedAuthLimiter(config.auth.failedAuthPerMinute),
    tokenIdLimiter: new FailedAuthLimiter(config.auth.failedAuthPerMinute),
    quota: new RequestQuota(config.auth.requestsPerMinutePerToken),
    ...(parts.tokens ? { tokens: parts.tokens } : {}),
    ...(parts.jobs ? { jobs: parts.jobs } : {}),
    audit: parts.audit ?? AuditLog.none(),
    locks: new AccountLocks(crossProcessLocker(config, storage)),
    // Every holder of a slot (user, host and pulled imports) shows in the gauge.
    importSlots: new Slots(config.limits.maxConcurrentImports, (inUse) => metrics.set('xporta_imports_in_progress', inUse)),
    metrics,
    exportFiles: new ExportFiles(join(config.dataDir, 'exports'), config.files.mode, config.exports.ttlSeconds),
  };
}

/** Principals already established, so a hook and a handler may both ask without consuming a link twice. */
const principals = new WeakMap<FastifyRequest, Principal>();

/** The principal this request authenticated as, if it did. */
export function knownPrincipal(request: FastifyRequest): Principal | undefined {
  return principals.get(request);
}

/**
 * Authenticates the request (once; later calls return the same principal). A valid token is
 * never refused for others' failures: the token is checked first, and only failures count, per
 * client address (`request.ip`, which honours X-Forwarded-For from trusted proxies only) and per
 * attempted token id; past the limit a failure is answered 429 instead of 401. An authenticated
 * token then spends one request of its per-minute quota.
 */
export function principalOf(ctx: ServiceContext, request: FastifyRequest): Principal {
  const known = principals.get(request);
  if (known) return known;
  let bearer: string | undefined;
  let principal: Principal;
  try {
    bearer = bearerOf(request);
    principal = ctx.auth.authenticate(bearer);
  } catch (err) {
    if (err instanceof Problem && err.status === 401) {
      const counts: [FailedAuthLimiter, string][] = [[ctx.limiter, request.ip]];
      const tokenId = bearer !== undefined ? attemptedTokenId(bearer) : undefined;
      if (tokenId !== undefined) counts.push([ctx.tokenIdLimiter, tokenId]);
      try {
        for (const [limiter, key] of counts) limiter.check(key);
      } finally {
        for (const [limiter, key] of counts) limiter.fail(key);
      }
    }
    throw err;
  }
  principals.set(request, principal);
  // A single-use link is spent by now: charging its quota could only waste it.
  if (!(principal.kind === 'user' && principal.singleUse)) ctx.quota.take(quotaKey(principal));
  return principal;
}

function quotaKey(principal: Principal): string {
  if (principal.kind === 'user') return `user:${principal.jti}`;
  return principal.tokenId !== undefined ? `operator-id:${principal.tokenId}` : `operator:${principal.name}`;
}

/**
 * The Authorization header's bearer token, else a user token in `?token=`: links handed to users
 * (ad-hoc commands) must work from a browser or a bare `curl -T`. Only user tokens may travel in
 * a URL (short-lived, one account, usually single-use); an operator token there is ignored.
 */
function bearerOf(request: FastifyRequest): string {
  const header = request.headers.authorization;
  if (header === undefined || header === '') {
    const token = (request.query as Record<string, unknown> | undefined)?.token;
    if (typeof token === 'string' && token.startsWith(USER_TOKEN_PREFIX)) return token;
  }
  return bearerFrom(header);
}

/** The normalised account a `{jid}` path parameter names, on a host this service serves. */
export function accountParam(ctx: ServiceContext, raw: string): { jid: string; ref: UserRef } {
  let jid: string;
  try {
    jid = bareJid(raw);
  } catch (err) {
    if (err instanceof JidError) throw problems.badRequest(`invalid JID ${JSON.stringify(raw)}: ${err.reason}`);
    throw err;
  }
  if (!jid.includes('@')) throw problems.badRequest(`${JSON.stringify(raw)} is not a user JID (no localpart)`);
  const ref = refOf(jid);
  if (!(ref.host in ctx.config.hosts)) throw problems.notFound(`host ${ref.host} is not served here`);
  return { jid, ref };
}

/** Authenticates and authorises for one account; 401, 403, then 404 for an unknown host. */
export function guardAccount(
  ctx: ServiceContext,
  request: FastifyRequest,
  rawJid: string,
  scope: Scope,
): { principal: Principal; jid: string; ref: UserRef } {
  const principal = principalOf(ctx, request);
  let parsed: { jid: string; ref: UserRef };
  try {
    parsed = accountParam(ctx, rawJid);
  } catch (err) {
    // Don't tell a user token holder which hosts exist: its own account is all it may see.
    if (principal.kind === 'user' && err instanceof Problem && err.status === 404) throw problems.forbidden('a user token may act only on its own account');
    throw err;
  }
  authorize(principal, scope, parsed.ref.host, parsed.jid);
  return { principal, ...parsed };
}

/** Authenticates and authorises a whole-host transfer: operator tokens only; 401, 403, then 404 for an unknown host. */
export function guardHost(ctx: ServiceContext, request: FastifyRequest, raw: string, scope: 'export' | 'import'): string {
  const principal = principalOf(ctx, request);
  if (principal.kind !== 'operator') throw problems.forbidden('whole-host transfers need an operator token');
  let host: string;
  try {
    host = normaliseDomain(raw);
  } catch {
    throw problems.badRequest(`invalid host ${JSON.stringify(raw)}`);
  }
  authorize(principal, scope, host);
  if (!(host in ctx.config.hosts)) throw problems.notFound(`host ${host} is not served here`);
  return host;
}
