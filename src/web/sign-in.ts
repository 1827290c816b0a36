/**
 * Signing in and out: the chat address and password, checked by the core against the stored
 * credentials, or a one-time link from the component's commands. Failures are limited per client
 * address and per account, and look and take the same whether the account exists or not.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Scope } from '../config/config.js';
import { AuthError } from '../core/auth/errors.js';
import { FailedAuthLimiter } from '../core/auth/authenticator.js';
import { verifyPassword } from '../core/password-check.js';
import { bareJidIfValid } from '../lib/jid.js';
import { refOf } from '../transfer/account-transfer.js';
import { cookies, delay, FAILURE_FLOOR_MS, formField, SESSION_COOKIE, SIGN_IN_COOKIE, type WebKit } from './kit.js';
import { tokensEqual } from './sessions.js';
import { strings } from './strings.js';

export function signInRoutes(app: FastifyInstance, kit: WebKit): void {
  const { ctx, web, base, sessions, publicRoute, cookie, sessionOf, seeOther, signInPage } = kit;
  const { storage } = ctx;
  const byAddress = new FailedAuthLimiter(web.signInAttemptsPerMinute);
  const byAccount = new FailedAuthLimiter(web.signInAttemptsPerMinute);

  const startSession = (reply: FastifyReply, jid: string, scopes: readonly Scope[], how: string, request: FastifyRequest): FastifyReply => {
    const { id } = sessions.create(jid, scopes);
    ctx.audit.record({ action: 'web-sign-in', actor: { kind: 'web', jid }, outcome: 'ok', account: jid, reason: how, requestId: request.id });
    reply.header('set-cookie', [cookie(SESSION_COOKIE, id), cookie(SIGN_IN_COOKIE, '', 0)]);
    return seeOther(reply, '/');
  };

  const limited = (keys: { limiter: FailedAuthLimiter; key: string }[]): number | undefined => {
    for (const { limiter, key } of keys) {
      try {
        limiter.check(key);
      } catch (err) {
        if (err instanceof AuthError && err.code === 'rate-limited') return err.retryAfterSeconds ?? 60;
        throw err;
      }
    }
    return undefined;
  };

  app.post(`${base}/sign-in`, publicRoute, async (request, reply) => {
    const started = Date.now();
    const body = request.body;
    if (!tokensEqual(formField(body, 'csrf'), cookies(request).get(SIGN_IN_COOKIE))) return signInPage(reply, 400, { kind: 'error', text: strings.formExpired });
    const typed = (formField(body, 'jid') ?? '').trim();
    const password = formField(body, 'password') ?? '';
    const jid = bareJidIfValid(typed);
    // Counted per address, and per account as typed (so an unknown account is counted alike).
    const accountKey = jid ?? typed.toLowerCase();
    const waitSeconds = limited([
      { limiter: byAddress, key: request.ip },
      { limiter: byAccount, key: accountKey },
    ]);
    if (waitSeconds !== undefined) {
      await delay(started + FAILURE_FLOOR_MS - Date.now());
      return signInPage(reply, 429, { kind: 'error', text: strings.signInLimited(Math.max(1, Math.ceil(waitSeconds / 60))) }, typed);
    }
    const ok = jid !== undefined && jid.includes('@') && password.length > 0 && password.length <= 1024 && (await verifyPassword(storage, refOf(jid), password));
    if (ok) return startSession(reply, jid, ['export', 'import'], 'password', request);
    byAddress.fail(request.ip);
    byAccount.fail(accountKey);
    ctx.audit.record({ action: 'web-sign-in', actor: { kind: 'anonymous' }, outcome: 'refused', ...(jid ? { account: jid } : {}), reason: 'password', requestId: request.id });
    await delay(started + FAILURE_FLOOR_MS - Date.now());
    return signInPage(reply, 200, { kind: 'error', text: strings.signInFailed }, typed);
  });

  app.post(`${base}/sign-in-link`, publicRoute, async (request, reply) => {
    const started = Date.now();
    const body = request.body;
    if (!tokensEqual(formField(body, 'csrf'), cookies(request).get(SIGN_IN_COOKIE))) return signInPage(reply, 400, { kind: 'error', text: strings.formExpired });
    const waitSeconds = limited([{ limiter: byAddress, key: request.ip }]);
    if (waitSeconds !== undefined) return signInPage(reply, 429, { kind: 'error', text: strings.signInLimited(Math.max(1, Math.ceil(waitSeconds / 60))) });
    const pasted = (formField(body, 'link') ?? '').trim();
    let token = pasted;
    try {
      token = new URL(pasted).searchParams.get('token') ?? pasted;
    } catch {
      // Not a URL: the token itself was pasted.
    }
    try {
      const principal = ctx.auth.authenticate(token);
      if (principal.kind !== 'user') throw new AuthError('forbidden', 'an operator token is not an owner’s link');
      const scopes = principal.scopes.filter((s): s is Scope => s === 'export' || s === 'import');
      if (scopes.length === 0) throw new AuthError('forbidden', 'the link allows nothing the page offers');
      return startSession(reply, principal.jid, scopes, 'link', request);
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      byAddress.fail(request.ip);
      ctx.audit.record({ action: 'web-sign-in', actor: { kind: 'anonymous' }, outcome: 'refused', reason: `link: ${err.message}`, requestId: request.id });
      await delay(started + FAILURE_FLOOR_MS - Date.now());
      return signInPage(reply, 200, { kind: 'error', text: strings.linkFailed });
    }
  });

  app.post(`${base}/sign-out`, publicRoute, async (request, reply) => {
    const found = sessionOf(request);
    if (found && tokensEqual(formField(request.body, 'csrf'), found.session.csrf)) sessions.destroy(found.id);
    else if (found) return seeOther(reply, '/');
    reply.header('set-cookie', cookie(SESSION_COOKIE, '', 0));
    return seeOther(reply, '/?out=1');
  });
}
