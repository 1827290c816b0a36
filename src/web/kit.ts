/**
 * What every screen of the web page shares: the session store and cookies, CSRF checks, rendering
 * a page, one-time messages, redirects, and failures in words. Built once per registration of the
 * page (src/web/plugin.ts); the screens' routes (sign-in.ts, account.ts, import.ts, move.ts) take it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebConfig } from '../config/config.js';
import type { ServiceContext } from '../core/context.js';
import { BusyError } from '../core/errors.js';
import { MoveError } from '../core/move.js';
import { DATA_KINDS, type DataKind } from '../records/model.js';
import { StorageError } from '../storage/backend.js';
import { TransferError } from '../transfer/account-transfer.js';
import { isXep0227Error } from '../xep0227/errors.js';
import { html, layout, notice, type SafeHtml } from './html.js';
import { randomToken, SessionStore, tokensEqual, type Session } from './sessions.js';
import { strings } from './strings.js';
import { UploadError } from './upload.js';

export const WEB_BASE = '/web';
export const SESSION_COOKIE = 'xporta_web';
export const SIGN_IN_COOKIE = 'xporta_web_signin';
/** A failed sign-in is answered no sooner than this after it arrived, whatever failed. */
export const FAILURE_FLOOR_MS = 400;

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

export const ALL_KINDS: ReadonlySet<DataKind> = new Set(DATA_KINDS);
export const WITHOUT_ARCHIVE: ReadonlySet<DataKind> = new Set(DATA_KINDS.filter((k) => k !== 'archive'));

export function cookies(request: FastifyRequest): Map<string, string> {
  const jar = new Map<string, string>();
  for (const part of String(request.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) jar.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return jar;
}

export function formField(body: unknown, name: string): string | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const value = (body as Record<string, unknown>)[name];
  return typeof value === 'string' ? value : undefined;
}

export function megabytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

/** The file name of a download: the JID, UTF-8 in `filename*` (RFC 6266, RFC 8187), `_` for the rest in `filename`. */
export function downloadDisposition(name: string): string {
  const fallback = name.replace(/[^\x20-\x7e]|["\\/%;]/gu, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** The words for a failed upload, check or import. */
export function failureText(err: unknown, maxBytes: number): string {
  if (err instanceof UploadError) {
    switch (err.code) {
      case 'too-large':
        return strings.errorTooLarge(megabytes(maxBytes));
      case 'no-file':
        return strings.errorNoFile;
      case 'broken-gzip':
        return strings.errorBrokenGzip;
      default:
        return strings.uploadFailed;
    }
  }
  if (isXep0227Error(err)) {
    if (err.status === 413) return strings.errorTooLarge(megabytes(maxBytes));
    return strings.errorBrokenFile(err.message);
  }
  if (err instanceof TransferError) return strings.errorBrokenFile(err.message);
  if (err instanceof BusyError) return strings.errorBusy;
  if (err instanceof MoveError && err.code === 'not-found') return strings.errorNoAccount;
  if (err instanceof StorageError) {
    if (err.code === 'unavailable' || err.code === 'conflict') return strings.errorBusy;
    if (err.code === 'insufficient-storage') return strings.errorNoSpace;
    if (err.code === 'user-not-found') return strings.errorNoAccount;
    return strings.errorRefused(err.message);
  }
  if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return strings.errorNoSpace;
  return strings.errorInternal;
}


export type Screen = 'overview' | 'import' | 'move';

export interface WebKit {
  readonly ctx: ServiceContext;
  readonly web: WebConfig;
  readonly base: string;
  readonly sessions: SessionStore;
  readonly publicRoute: { readonly config: { readonly guard: 'public' } };
  cookie(name: string, value: string, maxAge?: number): string;
  sessionOf(request: FastifyRequest): { id: string; session: Session } | undefined;
  page(reply: FastifyReply, status: number, title: string, body: SafeHtml, session?: Session, current?: Screen): FastifyReply;
  takeFlash(session: Session): SafeHtml;
  /** Marks a request as sent by the page's script: it is told where to go instead of redirected. */
  markScripted(request: FastifyRequest): void;
  seeOther(reply: FastifyReply, path: string): FastifyReply;
  /** The session of a POST whose CSRF token matches; otherwise the answer (a redirect) was sent. */
  postSession(request: FastifyRequest, reply: FastifyReply, token: string | undefined): Session | undefined;
  signInPage(reply: FastifyReply, status: number, message?: { kind: 'error' | 'info'; text: string }, jid?: string): FastifyReply;
}

export function createKit(app: FastifyInstance, ctx: ServiceContext): WebKit {
  const { config } = ctx;
  const web = config.web;
  const base = WEB_BASE;
  const secure = config.publicUrl.startsWith('https:');
  const sessions = new SessionStore(web.sessionTtlSeconds);
  app.addHook('onClose', async () => sessions.close());

  const cookie = (name: string, value: string, maxAge?: number): string =>
    `${name}=${value}; Path=${base}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}${maxAge !== undefined ? `; Max-Age=${maxAge}` : ''}`;
  const sessionOf = (request: FastifyRequest): { id: string; session: Session } | undefined => {
    const id = cookies(request).get(SESSION_COOKIE);
    const session = sessions.get(id);
    return id !== undefined && session ? { id, session } : undefined;
  };

  const page = (reply: FastifyReply, status: number, title: string, body: SafeHtml, session?: Session, current?: Screen): FastifyReply =>
    reply
      .code(status)
      .type('text/html; charset=utf-8')
      .send(layout({ title, base, showMove: true, ...(session ? { jid: session.jid, csrf: session.csrf } : {}), ...(current ? { current } : {}) }, body));

  const takeFlash = (session: Session): SafeHtml => {
    const flash = session.flash;
    session.flash = undefined;
    return flash ? notice(flash.kind, flash.text) : html``;
  };

  /** Uploads sent by the page's script, answered with where to go next instead of a redirect. */
  const scripted = new WeakSet<FastifyRequest>();
  const seeOther = (reply: FastifyReply, path: string): FastifyReply =>
    scripted.has(reply.request)
      ? reply.code(204).header('x-xporta-next', `${base}${path}`).send()
      : reply.code(303).header('location', `${base}${path}`).send();

  /** The session of a POST whose CSRF token matches; otherwise the answer (a redirect) was sent. */
  const postSession = (request: FastifyRequest, reply: FastifyReply, token: string | undefined): Session | undefined => {
    const found = sessionOf(request);
    if (!found) {
      void seeOther(reply, '/?ended=1');
      return undefined;
    }
    if (!tokensEqual(token, found.session.csrf)) {
      found.session.flash = { kind: 'error', text: strings.formExpired };
      void seeOther(reply, '/');
      return undefined;
    }
    return found.session;
  };

  const signInPage = (reply: FastifyReply, status: number, message?: { kind: 'error' | 'info'; text: string }, jid = ''): FastifyReply => {
    const token = randomToken();
    reply.header('set-cookie', cookie(SIGN_IN_COOKIE, token));
    return page(
      reply,
      status,
      strings.signInTitle,
      html`${message ? notice(message.kind, message.text) : html``}
<p>${strings.signInIntro}</p>
<form method="post" action="${base}/sign-in" novalidate>
  <input type="hidden" name="csrf" value="${token}">
  <label for="jid">${strings.jidLabel}</label>
  <input id="jid" name="jid" type="email" inputmode="email" autocomplete="username" autocapitalize="none" spellcheck="false" required value="${jid}" aria-describedby="jid-hint">
  <p class="hint" id="jid-hint">${strings.jidHint}</p>
  <label for="password">${strings.passwordLabel}</label>
  <input id="password" name="password" type="password" autocomplete="current-password" required>
  <button type="submit">${strings.signInButton}</button>
</form>
<hr class="divider">
<h2>${strings.linkTitle}</h2>
<p id="link-intro">${strings.linkIntro}</p>
<form method="post" action="${base}/sign-in-link" novalidate>
  <input type="hidden" name="csrf" value="${token}">
  <label for="link">${strings.linkLabel}</label>
  <input id="link" name="link" type="url" autocomplete="off" spellcheck="false" required aria-describedby="link-intro">
  <button type="submit" class="secondary">${strings.linkButton}</button>
</form>`,
    );
  };

  return {
    ctx,
    web,
    base,
    sessions,
    publicRoute: { config: { guard: 'public' } },
    cookie,
    sessionOf,
    page,
    takeFlash,
    markScripted: (request) => scripted.add(request),
    seeOther,
    postSession,
    signInPage,
  };
}
