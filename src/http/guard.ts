/**
 * The guard that turns a request into an authorised principal: bearer parsing, failure counting
 * per address and token id, the per-token quota, and the account and host path parameters.
 */
import type { FastifyRequest } from 'fastify';
import type { Scope } from '../config/config.js';
import { attemptedTokenId, authorize, USER_TOKEN_PREFIX, type FailedAuthLimiter, type Principal } from '../core/auth/authenticator.js';
import { AuthError } from '../core/auth/errors.js';
import type { ServiceContext } from '../core/context.js';
import { bareJid, JidError, normaliseDomain } from '../lib/jid.js';
import type { UserRef } from '../storage/backend.js';
import { refOf } from '../transfer/account-transfer.js';
import { Problem, problems } from './problem.js';
import { toProblem } from './problem-map.js';

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
 * token then spends one request of its per-minute quota. Errors are thrown as problems.
 */
export function principalOf(ctx: ServiceContext, request: FastifyRequest): Principal {
  try {
    return authenticated(ctx, request);
  } catch (err) {
    throw toProblem(err);
  }
}

function authenticated(ctx: ServiceContext, request: FastifyRequest): Principal {
  const known = principals.get(request);
  if (known) return known;
  let bearer: string | undefined;
  let principal: Principal;
  try {
    bearer = bearerOf(request);
    principal = ctx.auth.authenticate(bearer);
  } catch (err) {
    if (err instanceof AuthError && (err.code === 'invalid-token' || err.code === 'unauthenticated')) {
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

/** The bearer token from an Authorization header, or an `unauthenticated` error. */
export function bearerFrom(header: string | undefined): string {
  if (header === undefined || header === '') throw new AuthError('unauthenticated', 'an Authorization: Bearer token is required');
  const match = /^Bearer[ ]+([\x21-\x7e]+)\s*$/i.exec(header);
  if (!match?.[1]) throw new AuthError('unauthenticated', 'the Authorization header must use the Bearer scheme');
  return match[1];
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
  authorized(principal, scope, parsed.ref.host, parsed.jid);
  return { principal, ...parsed };
}

/**
 * Authenticates and authorises for the account a user token is bound to, for routes whose path
 * names no account (as mod_http_xep227's do: Prosody's token names the account). An operator
 * token is refused 403 with the path that names the account instead.
 */
export function guardTokenAccount(
  ctx: ServiceContext,
  request: FastifyRequest,
  scope: Scope,
  operatorPath: string,
): { principal: Principal; jid: string; ref: UserRef } {
  const principal = principalOf(ctx, request);
  if (principal.kind !== 'user') throw problems.forbidden(`an operator token names the account: ${operatorPath}`);
  let parsed: { jid: string; ref: UserRef };
  try {
    parsed = accountParam(ctx, principal.jid);
  } catch (err) {
    // The token's host is no longer served here; tell its holder no more than for another account.
    if (err instanceof Problem && err.status === 404) throw problems.forbidden('a user token may act only on its own account');
    throw err;
  }
  authorized(principal, scope, parsed.ref.host, parsed.jid);
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
  authorized(principal, scope, host);
  if (!(host in ctx.config.hosts)) throw problems.notFound(`host ${host} is not served here`);
  return host;
}

/** {@link authorize}, its refusal as a 403 problem. */
export function authorized(principal: Principal, scope: Scope, host: string, jid?: string): void {
  try {
    authorize(principal, scope, host, jid);
  } catch (err) {
    throw toProblem(err);
  }
}
