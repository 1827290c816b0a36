/**
 * The self-service web page for account owners (`web.enabled`): sign in with the chat address
 * and password or a one-time link, see what the account holds, download it, and import a file
 * (checked first by a dry run, applied once the owner confirms). Plain server-rendered HTML; a
 * small script adds upload progress. Everything goes through the core: the import pipeline, the
 * export stream, the password check and the account overview.
 *
 * Security: sessions are random ids kept hashed (sessions.ts), in a Secure (for an https
 * publicUrl), HttpOnly, SameSite=Strict cookie; every POST carries the session's CSRF token
 * (the sign-in form a double-submitted one), checked before a body is read where the body is a
 * file; failed sign-ins are limited per client address and per account, and look and take the
 * same whether the account exists or not. The password is never stored or logged.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ServiceContext } from '../core/context.js';
import { accountRoutes } from './account.js';
import { APP_CSS, APP_JS } from './assets.js';
import { html, notice } from './html.js';
import { importRoutes } from './import.js';
import { createKit, CSP } from './kit.js';
import { moveRoutes } from './move.js';
import { pullRoutes } from './pull.js';
import { signInRoutes } from './sign-in.js';
import { strings } from './strings.js';

export { downloadDisposition, megabytes, WEB_BASE } from './kit.js';

export interface WebPageOptions {
  readonly ctx: ServiceContext;
}

export const webPage: FastifyPluginAsync<WebPageOptions> = async (app, { ctx }) => {
  const kit = createKit(app, ctx);
  const { base, publicRoute, sessionOf, page, seeOther } = kit;

  // Form posts (sign-in, confirm): small, under the edge's JSON body limit and deadline.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });

  app.addHook('onSend', async (_request, reply) => {
    reply.header('content-security-policy', CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    reply.header('cross-origin-opener-policy', 'same-origin');
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
  });

  app.get(`${base}/static/app.css`, publicRoute, async (_request, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(APP_CSS),
  );
  app.get(`${base}/static/app.js`, publicRoute, async (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=3600').send(APP_JS),
  );
  app.get(base, publicRoute, async (_request, reply) => seeOther(reply, '/'));

  signInRoutes(app, kit);
  accountRoutes(app, kit);
  const { check } = importRoutes(app, kit);
  pullRoutes(app, kit, check);
  moveRoutes(app, kit);

  app.setErrorHandler((err, request, reply) => {
    request.log.error({ err }, 'web page error');
    const found = sessionOf(request);
    return page(reply, 500, strings.errorTitle, html`${notice('error', strings.errorInternal)}<p><a href="${base}/">${strings.backToOverview}</a></p>`, found?.session);
  });
};
