/**
 * What every route needs, built once per app, and the guard that turns a request into an
 * authorised principal.
 */
import type { FastifyRequest } from 'fastify';
import type { Config, Scope } from '../config.js';
import { bareJid, JidError, normaliseDomain } from '../jid.js';
import { AccountLocks, Slots } from '../jobs.js';
import type { ApplyReport, StorageBackend, UserRef } from '../storage/backend.js';
import { refOf } from '../transfer.js';
import { Authenticator, authorize, bearerFrom, FailedAuthLimiter, USER_TOKEN_PREFIX, type Principal } from './auth.js';
import { Metrics } from './metrics.js';
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
  readonly limiter: FailedAuthLimiter;
  readonly locks: AccountLocks;
  readonly importSlots: Slots;
  readonly metrics: Metrics;
  /** Not readonly: the component attaches itself once the app (and so this context) exists; absent when it is disabled. */
  notifier?: AccountNotifier;
}

export function createContext(config: Config, storage: StorageBackend): ServiceContext {
  const metrics = new Metrics();
  return {
    config,
    storage,
    auth: new Authenticator(config.auth.tokens, config.auth.userTokenSecret, config.auth.userTokenMaxTtlSeconds),
    limiter: new FailedAuthLimiter(config.auth.failedAuthPerMinute),
    locks: new AccountLocks(),
    // Every holder of a slot (user, host and pulled imports) shows in the gauge.
    importSlots: new Slots(config.limits.maxConcurrentImports, (inUse) => metrics.set('xporta_imports_in_progress', inUse)),
    metrics,
  };
}

/**
 * Principals already established, per request: the edge guard authenticates before the body is
 * read and the handler asks again; a single-use token must not be consumed twice.
 */
const principals = new WeakMap<FastifyRequest, Principal>();

/** Authenticates the request (once; later calls return the same principal); failures count against the client address. */
export function principalOf(ctx: ServiceContext, request: FastifyRequest): Principal {
  const known = principals.get(request);
  if (known !== undefined) return known;
  ctx.limiter.check(request.ip);
  try {
    const principal = ctx.auth.authenticate(bearerOf(request));
    principals.set(request, principal);
    return principal;
  } catch (err) {
    if (err instanceof Problem && err.status === 401) ctx.limiter.fail(request.ip);
    throw err;
  }
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
