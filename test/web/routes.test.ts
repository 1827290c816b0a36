/**
 * The web page's guards, without a browser: headers, CSRF, the session before any body is read,
 * rate-limited sign-in, and the page being off unless configured. Embedded SQLite store.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { ServiceContext } from '../../src/core/context.js';
import { webPage } from '../../src/web/plugin.js';
import { strings } from '../../src/web/strings.js';
import { escapeHtml } from '../../src/web/html.js';
import { accountDocument } from '../support/documents.js';
import { importDoc, startService } from '../support/service.js';

function cookieOf(res: LightMyRequestResponse, name: string): string | undefined {
  const raw = res.headers['set-cookie'];
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [String(raw)];
  const found = list.find((c) => c.startsWith(`${name}=`));
  return found?.slice(name.length + 1).split(';')[0];
}

function csrfOf(body: string): string {
  const match = /name="csrf" value="([^"]+)"/.exec(body);
  if (!match?.[1]) throw new Error('no csrf field');
  return match[1];
}

function withPage(app: FastifyInstance & { readonly ctx: ServiceContext }): void {
  app.register(webPage, { ctx: app.ctx });
}

describe('the web page’s routes', () => {
  it('is not there unless the composition root registers it (web.enabled)', async () => {
    const local = await startService(undefined);
    try {
      expect((await local.app.inject({ method: 'GET', url: '/web/' })).statusCode).toBe(404);
    } finally {
      await local.close();
    }
  });

  it('serves the sign-in page with its headers, and its own script and stylesheet', async () => {
    const local = await startService(undefined, { XPORTA_WEB__ENABLED: 'true' }, false, withPage);
    try {
      const instance = local.app;
      const res = await instance.inject({ method: 'GET', url: '/web/' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.headers['content-security-policy']).toContain("script-src 'self'");
      expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).not.toMatch(/<script>/);
      expect(res.body).toContain(escapeHtml(strings.signInTitle));
      const cookie = (Array.isArray(res.headers['set-cookie']) ? res.headers['set-cookie'] : [String(res.headers['set-cookie'])]).join('\n');
      expect(cookie).toMatch(/xporta_web_signin=[^;]+; Path=\/web; HttpOnly; SameSite=Strict/);
      expect((await instance.inject({ method: 'GET', url: '/web/static/app.js' })).headers['content-type']).toMatch(/^text\/javascript/);
      expect((await instance.inject({ method: 'GET', url: '/web/static/app.css' })).headers['content-type']).toMatch(/^text\/css/);
    } finally {
      await local.close();
    }
  });

  it('refuses a sign-in without the form’s token, limits failures per account, and lets the right password in', async () => {
    const local = await startService(undefined, { XPORTA_WEB__ENABLED: 'true', XPORTA_WEB__SIGN_IN_ATTEMPTS_PER_MINUTE: '3' }, false, withPage);
    try {
      const instance = local.app;
      expect((await importDoc(instance, 'alice@localhost', accountDocument({ host: 'localhost', user: 'alice', password: 'alice-pw' }))).status).toBe(200);
      const form = await instance.inject({ method: 'GET', url: '/web/' });
      const pre = cookieOf(form, 'xporta_web_signin') ?? '';
      const csrf = csrfOf(form.body);
      const post = (fields: Record<string, string>, withCookie = true) =>
        instance.inject({
          method: 'POST',
          url: '/web/sign-in',
          headers: { 'content-type': 'application/x-www-form-urlencoded', ...(withCookie ? { cookie: `xporta_web_signin=${pre}` } : {}) },
          payload: new URLSearchParams(fields).toString(),
        });

      const forged = await post({ jid: 'alice@localhost', password: 'alice-pw', csrf: 'forged' });
      expect(forged.statusCode).toBe(400);
      expect(forged.body).toContain(escapeHtml(strings.formExpired));
      expect(cookieOf(forged, 'xporta_web')).toBeUndefined();

      // Sent side by side: each failure is answered no sooner than the failure floor.
      const [wrong, unknown] = await Promise.all([post({ jid: 'alice@localhost', password: 'nope', csrf }), post({ jid: 'nobody@localhost', password: 'nope', csrf })]);
      for (const res of [wrong, unknown]) {
        expect(res.statusCode).toBe(200);
        expect(res.body).toContain(escapeHtml(strings.signInFailed));
        expect(res.body).not.toContain('nope');
      }
      await Promise.all([post({ jid: 'alice@localhost', password: 'nope', csrf }), post({ jid: 'alice@localhost', password: 'nope', csrf })]);
      // Three failures for alice in this minute: now even her right password waits.
      const limited = await post({ jid: 'alice@localhost', password: 'alice-pw', csrf });
      expect(limited.statusCode).toBe(429);
      expect(limited.body).toContain(escapeHtml(strings.signInLimited(1)));
    } finally {
      await local.close();
    }
  });

  it('reads no upload without a session and its token, and never answers in JSON', async () => {
    const local = await startService(undefined, { XPORTA_WEB__ENABLED: 'true' }, false, withPage);
    try {
      const instance = local.app;
      expect((await importDoc(instance, 'alice@localhost', accountDocument({ host: 'localhost', user: 'alice', password: 'alice-pw' }))).status).toBe(200);
      const boundary = 'xxBOUNDARYxx';
      const body = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.xml"\r\nContent-Type: application/xml\r\n\r\n<x/>\r\n--${boundary}--\r\n`;
      const noSession = await instance.inject({ method: 'POST', url: '/web/import?csrf=x', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload: body });
      expect(noSession.statusCode).toBe(303);
      expect(noSession.headers.location).toBe('/web/?ended=1');

      // Signed in, but the token in the form's address is not the session's.
      const form = await instance.inject({ method: 'GET', url: '/web/' });
      const pre = cookieOf(form, 'xporta_web_signin') ?? '';
      const signedIn = await instance.inject({
        method: 'POST',
        url: '/web/sign-in',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `xporta_web_signin=${pre}` },
        payload: new URLSearchParams({ jid: 'alice@localhost', password: 'alice-pw', csrf: csrfOf(form.body) }).toString(),
      });
      expect(signedIn.statusCode).toBe(303);
      const session = cookieOf(signedIn, 'xporta_web') ?? '';
      expect(session.length).toBeGreaterThan(40);
      const forged = await instance.inject({ method: 'POST', url: '/web/import?csrf=forged', headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, cookie: `xporta_web=${session}` }, payload: body });
      expect(forged.statusCode).toBe(303);
      expect(forged.headers.location).toBe('/web/');
      const overview = await instance.inject({ method: 'GET', url: '/web/', headers: { cookie: `xporta_web=${session}` } });
      expect(overview.body).toContain(escapeHtml(strings.formExpired));
      expect(overview.body).toContain(escapeHtml(strings.countContacts));
      expect(readdirSync(join(local.dir, 'spool'))).toEqual([]);
    } finally {
      await local.close();
    }
  });

  it('starts no pull from another provider without the session’s token, an address or a password, and says why in words', async () => {
    const local = await startService(undefined, { XPORTA_WEB__ENABLED: 'true' }, false, withPage);
    try {
      const instance = local.app;
      expect((await importDoc(instance, 'alice@localhost', accountDocument({ host: 'localhost', user: 'alice', password: 'alice-pw' }))).status).toBe(200);
      const form = await instance.inject({ method: 'GET', url: '/web/' });
      const pre = cookieOf(form, 'xporta_web_signin') ?? '';
      const signedIn = await instance.inject({
        method: 'POST',
        url: '/web/sign-in',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `xporta_web_signin=${pre}` },
        payload: new URLSearchParams({ jid: 'alice@localhost', password: 'alice-pw', csrf: csrfOf(form.body) }).toString(),
      });
      const cookie = `xporta_web=${cookieOf(signedIn, 'xporta_web') ?? ''}`;
      const pullForm = await instance.inject({ method: 'GET', url: '/web/import/xmpp', headers: { cookie } });
      expect(pullForm.statusCode).toBe(200);
      expect(pullForm.body).toContain(escapeHtml(strings.pullJidLabel));
      const csrf = csrfOf(pullForm.body);
      const post = (fields: Record<string, string>) =>
        instance.inject({ method: 'POST', url: '/web/import/xmpp', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie }, payload: new URLSearchParams(fields).toString() });

      const forged = await post({ jid: 'alice@old.example', password: 'old-secret', csrf: 'forged' });
      expect(forged.headers.location).toBe('/web/');
      for (const [fields, words] of [
        [{ jid: 'not an address@@', password: 'old-secret', csrf }, strings.pullBadJid],
        [{ jid: 'old.example', password: 'old-secret', csrf }, strings.pullBadJid],
        [{ jid: 'alice@old.example', password: '', csrf }, strings.pullNoPassword],
      ] as const) {
        const res = await post(fields);
        expect(res.statusCode).toBe(303);
        expect(res.headers.location).toBe('/web/import/xmpp');
        const next = await instance.inject({ method: 'GET', url: '/web/import/xmpp', headers: { cookie } });
        expect(next.body).toContain(escapeHtml(words));
        expect(next.body).not.toContain('old-secret');
        // The form again, no pull running.
        expect(next.body).toContain(escapeHtml(strings.pullButton));
      }
    } finally {
      await local.close();
    }
  });
});
