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
import type { Readable } from 'node:stream';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Scope } from '../config/config.js';
import { accountOverview, OverviewTally, type AccountOverview } from '../core/account-overview.js';
import type { ServiceContext } from '../core/context.js';
import { BusyError } from '../core/errors.js';
import { documentStream } from '../core/export-stream.js';
import { importAccount } from '../core/import-pipeline.js';
import { importReaderOptions } from '../core/import-options.js';
import { MoveError, MoveService } from '../core/move.js';
import { AuthError } from '../core/auth/errors.js';
import { FailedAuthLimiter } from '../core/auth/authenticator.js';
import { verifyPassword } from '../core/password-check.js';
import { bareJidIfValid } from '../lib/jid.js';
import { DATA_KINDS, type DataKind, type DocumentEvent } from '../records/model.js';
import { StorageError, type ImportMode } from '../storage/backend.js';
import { DEFAULT_RETRY_POLICY, withRetries } from '../storage/retry.js';
import { exportUserDocument, importUserDocument, refOf, TransferError, type UserImportReport } from '../transfer/account-transfer.js';
import { isXep0227Error } from '../xep0227/errors.js';
import { readDocument } from '../xep0227/reader.js';
import { APP_CSS, APP_JS } from './assets.js';
import { html, layout, notice, type SafeHtml } from './html.js';
import { randomToken, SessionStore, tokensEqual, type Session } from './sessions.js';
import { strings } from './strings.js';
import { spoolFormFile, UploadError } from './upload.js';

export const WEB_BASE = '/web';
const SESSION_COOKIE = 'xporta_web';
const SIGN_IN_COOKIE = 'xporta_web_signin';
/** A failed sign-in is answered no sooner than this after it arrived, whatever failed. */
const FAILURE_FLOOR_MS = 400;

const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

const ALL_KINDS: ReadonlySet<DataKind> = new Set(DATA_KINDS);
const WITHOUT_ARCHIVE: ReadonlySet<DataKind> = new Set(DATA_KINDS.filter((k) => k !== 'archive'));

function cookies(request: FastifyRequest): Map<string, string> {
  const jar = new Map<string, string>();
  for (const part of String(request.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) jar.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return jar;
}

function formField(body: unknown, name: string): string | undefined {
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

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** The words for a failed upload, check or import. */
function failureText(err: unknown, maxBytes: number): string {
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
  if (err instanceof StorageError) {
    if (err.code === 'unavailable' || err.code === 'conflict') return strings.errorBusy;
    if (err.code === 'insufficient-storage') return strings.errorNoSpace;
    if (err.code === 'user-not-found') return strings.errorNoAccount;
    return strings.errorRefused(err.message);
  }
  if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return strings.errorNoSpace;
  return strings.errorInternal;
}

export interface WebPageOptions {
  readonly ctx: ServiceContext;
}

export const webPage: FastifyPluginAsync<WebPageOptions> = async (app, { ctx }) => {
  const { config, storage } = ctx;
  const web = config.web;
  const base = WEB_BASE;
  const secure = config.publicUrl.startsWith('https:');
  const sessions = new SessionStore(web.sessionTtlSeconds);
  const byAddress = new FailedAuthLimiter(web.signInAttemptsPerMinute);
  const byAccount = new FailedAuthLimiter(web.signInAttemptsPerMinute);
  app.addHook('onClose', async () => sessions.close());

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

  const cookie = (name: string, value: string, maxAge?: number): string =>
    `${name}=${value}; Path=${base}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}${maxAge !== undefined ? `; Max-Age=${maxAge}` : ''}`;

  const sessionOf = (request: FastifyRequest): { id: string; session: Session } | undefined => {
    const id = cookies(request).get(SESSION_COOKIE);
    const session = sessions.get(id);
    return id !== undefined && session ? { id, session } : undefined;
  };

  const page = (reply: FastifyReply, status: number, title: string, body: SafeHtml, session?: Session, current?: 'overview' | 'import' | 'move'): FastifyReply =>
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

  const publicRoute = { config: { guard: 'public' as const } };

  app.get(`${base}/static/app.css`, publicRoute, async (_request, reply) =>
    reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(APP_CSS),
  );
  app.get(`${base}/static/app.js`, publicRoute, async (_request, reply) =>
    reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=3600').send(APP_JS),
  );
  app.get(base, publicRoute, async (_request, reply) => seeOther(reply, '/'));

  app.get<{ Querystring: { ended?: string; out?: string } }>(`${base}/`, publicRoute, async (request, reply) => {
    const found = sessionOf(request);
    if (!found) {
      const message = request.query.out !== undefined ? { kind: 'info' as const, text: strings.signedOut } : request.query.ended !== undefined ? { kind: 'error' as const, text: strings.sessionEnded } : undefined;
      return signInPage(reply, 200, message);
    }
    const { session } = found;
    const flash = takeFlash(session);
    if (!session.scopes.includes('export')) {
      return page(reply, 200, strings.overviewTitle, html`${flash}<p>${strings.noExportRight}</p><p><a href="${base}/import">${strings.navImport}</a></p>`, session, 'overview');
    }
    const overview = await accountOverview(storage, refOf(session.jid));
    if (!overview) {
      sessions.destroy(found.id);
      return signInPage(reply, 200, { kind: 'error', text: strings.errorNoAccount });
    }
    const row = (label: string, value: number | string): SafeHtml => html`<tr><th scope="row">${label}</th><td class="num">${value}</td></tr>`;
    return page(
      reply,
      200,
      strings.overviewTitle,
      html`${flash}
<p>${strings.overviewIntro}</p>
<table id="counts">
  <caption>${strings.countsCaption}</caption>
  <thead><tr><th scope="col">${strings.kindHeader}</th><th scope="col" class="num">${strings.countHeader}</th></tr></thead>
  <tbody>
  ${row(strings.countContacts, overview.contacts)}
  ${row(strings.countMessages, overview.messages)}
  ${row(strings.countBookmarks, overview.bookmarks)}
  ${row(strings.countPepItems, overview.pepItems)}
  ${row(strings.countOffline, overview.offlineMessages)}
  ${row(strings.countBlocked, overview.blocked)}
  ${row(strings.countVcard, overview.vcard > 0 ? strings.yes : strings.no)}
  </tbody>
</table>
<h2>${strings.downloadTitle}</h2>
<p>${strings.downloadIntro}</p>
<form method="get" action="${base}/download">
  <fieldset>
    <legend>${strings.downloadKindsLegend}</legend>
    <label class="choice"><input type="radio" name="kinds" value="all" checked> ${strings.downloadEverything}</label>
    <label class="choice"><input type="radio" name="kinds" value="no-archive"> ${strings.downloadNoArchive}</label>
  </fieldset>
  <button type="submit">${strings.downloadButton}</button>
</form>`,
      session,
      'overview',
    );
  });

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

  app.get<{ Querystring: { kinds?: string } }>(`${base}/download`, publicRoute, async (request, reply) => {
    const found = sessionOf(request);
    if (!found) return seeOther(reply, '/?ended=1');
    const { session } = found;
    if (!session.scopes.includes('export')) {
      session.flash = { kind: 'error', text: strings.noExportRight };
      return seeOther(reply, '/');
    }
    const jid = session.jid;
    const ref = refOf(jid);
    const withoutArchive = request.query.kinds === 'no-archive';
    const kinds = withoutArchive ? WITHOUT_ARCHIVE : ALL_KINDS;
    if (!(await storage.userExists(ref))) return seeOther(reply, '/');
    const lease = await ctx.locks.tryAcquire(jid, 'shared');
    if (!lease) {
      session.flash = { kind: 'error', text: strings.errorBusy };
      return seeOther(reply, '/');
    }
    ctx.audit.record({ action: 'export', actor: { kind: 'web', jid }, outcome: 'ok', account: jid, kinds: [...kinds], requestId: request.id });
    const abort = new AbortController();
    const timed = ctx.metrics.time('export');
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
      timed(reply.raw.writableFinished ? 'ok' : 'error');
      lease.release();
    });
    const name = `${jid}${withoutArchive ? '-without-messages' : ''}.xml`;
    reply.header('content-type', 'application/xml; charset=utf-8').header('content-disposition', downloadDisposition(name));
    return reply.send(documentStream(exportUserDocument(storage, ref, kinds, abort.signal), ctx.metrics, { gzip: false }));
  });

  const importForm = (session: Session, flash: SafeHtml): SafeHtml =>
    html`${flash}
<p>${strings.importIntro}</p>
<form method="post" action="${base}/import?csrf=${session.csrf}" enctype="multipart/form-data" data-upload
  data-uploading="${strings.uploading}" data-progress="${strings.uploadProgress(0).replace('0', '{percent}')}" data-checking="${strings.checking}" data-failed="${strings.uploadFailed}">
  <label for="file">${strings.fileLabel}</label>
  <input id="file" name="file" type="file" accept=".xml,.gz,application/xml,text/xml,application/gzip" required aria-describedby="file-hint">
  <p class="hint" id="file-hint">${strings.fileHint(megabytes(web.maxUploadBytes))}</p>
  <div class="progress" id="upload-progress" hidden>
    <progress max="100" value="0" aria-label="${strings.uploading}"></progress>
    <p data-text role="status"></p>
  </div>
  <button type="submit">${strings.checkButton}</button>
</form>`;

  app.get(`${base}/import`, publicRoute, async (request, reply) => {
    const found = sessionOf(request);
    if (!found) return seeOther(reply, '/?ended=1');
    const { session } = found;
    const flash = takeFlash(session);
    if (!session.scopes.includes('import')) return page(reply, 200, strings.importTitle, html`${flash}<p>${strings.noImportRight}</p>`, session, 'import');
    return page(reply, 200, strings.importTitle, importForm(session, flash), session, 'import');
  });

  const readerOptions = importReaderOptions({ ...config.limits, maxUploadBytes: web.maxUploadBytes }, ALL_KINDS, { from: 'upload' });

  /** Applies (or checks) the spooled file under the core's pipeline, retrying a transient storage failure. */
  const runImport = async (session: Session, open: () => Readable, mode: ImportMode, include: ReadonlySet<DataKind>, dryRun: boolean, onUser?: (e: DocumentEvent) => void): Promise<UserImportReport> => {
    const jid = session.jid;
    const ref = refOf(jid);
    const options = { mode, dryRun, include, createAccount: false };
    return importAccount(ctx, { jid, source: 'upload', options, createHint: strings.errorNoAccount }, {
      apply: (run) =>
        withRetries(
          async (attempt) => {
            const events = readDocument(open(), { ...readerOptions, credentials: include.has('credentials') });
            const tapped = onUser ? tap(events, onUser) : events;
            return importUserDocument(storage, ref, attempt === 1 ? run.countRecords(tapped) : tapped, options);
          },
          DEFAULT_RETRY_POLICY,
          (err, attempt, delayMs) => app.log.warn({ jid, attempt, delayMs, err: (err as Error).message }, 'web import failed for a transient reason; retrying'),
        ),
    });
  };

  app.post<{ Querystring: { csrf?: string } }>(`${base}/import`, { config: { guard: 'public', upload: true } }, async (request, reply) => {
    // The page's script uploads with XMLHttpRequest, which would follow a redirect itself and so
    // take the message meant for the next page: it is told where to go instead, and goes there.
    if (request.headers['x-xporta-upload'] === '1') scripted.add(request);
    // The session and its token are checked before a byte of the file is read.
    const session = postSession(request, reply, request.query.csrf);
    if (!session) return reply;
    if (!session.scopes.includes('import')) {
      session.flash = { kind: 'error', text: strings.noImportRight };
      return seeOther(reply, '/import');
    }
    await SessionStore.dropPending(session);
    let spool;
    try {
      if (!request.isMultipart()) throw new UploadError('no-file');
      spool = await spoolFormFile(request, web.maxUploadBytes, config.dataDir, config.files.mode);
      let hasPassword = false;
      let tally = new OverviewTally();
      const source = spool;
      const report = await runImport(session, () => source.open(), 'merge', ALL_KINDS, true, (event) => {
        // A retried attempt reads the file again from its start.
        if (event.kind === 'user') {
          tally = new OverviewTally();
          hasPassword ||= event.password !== undefined || event.scram.length > 0;
        } else tally.add(event);
      });
      session.pending = { spool, report, holds: tally.result(), hasPassword, expiresAt: Date.now() + web.pendingImportTtlSeconds * 1000 };
      ctx.audit.record({ action: 'import', actor: { kind: 'web', jid: session.jid }, outcome: 'ok', account: session.jid, dryRun: true, mode: 'merge', requestId: request.id });
      return seeOther(reply, '/import/review');
    } catch (err) {
      await spool?.remove();
      const text = failureText(err, web.maxUploadBytes);
      if (text === strings.errorInternal) request.log.error({ err }, 'web import check failed');
      ctx.audit.record({ action: 'import', actor: { kind: 'web', jid: session.jid }, outcome: 'refused', account: session.jid, dryRun: true, reason: err instanceof Error ? err.message : String(err), requestId: request.id });
      session.flash = { kind: 'error', text };
      return seeOther(reply, '/import');
    }
  });

  /** What a file holds, in words. */
  const holdings = (holds: AccountOverview, hasPassword: boolean): SafeHtml[] => {
    const items: string[] = [];
    const add = (n: number, [one, many]: readonly string[]): void => {
      if (n > 0) items.push(strings.plural(n, one ?? '', many ?? ''));
    };
    add(holds.contacts, strings.fileContacts);
    add(holds.messages, strings.fileMessages);
    add(holds.bookmarks, strings.fileBookmarks);
    add(holds.pepItems, strings.filePepItems);
    add(holds.offlineMessages, strings.fileOffline);
    add(holds.blocked, strings.fileBlocked);
    add(holds.privateElements, strings.filePrivate);
    if (holds.vcard > 0) items.push(strings.fileVcard);
    if (hasPassword) items.push(strings.filePassword);
    return items.map((item) => html`<li>${item}</li>`);
  };

  const kindList = (counts: Partial<Record<DataKind, number>>): SafeHtml[] =>
    (Object.entries(counts) as [DataKind, number][]).filter(([, n]) => n > 0).map(([kind, n]) => html`<li>${strings.kindCount(n, strings.kindNames[kind] ?? kind)}</li>`);

  app.get(`${base}/import/review`, publicRoute, async (request, reply) => {
    const found = sessionOf(request);
    if (!found) return seeOther(reply, '/?ended=1');
    const { session } = found;
    const pending = session.pending;
    if (!pending || pending.expiresAt <= Date.now()) {
      await SessionStore.dropPending(session);
      session.flash = { kind: 'error', text: strings.pendingGone };
      return seeOther(reply, '/import');
    }
    const { report } = pending;
    const counts = { ...report.counts };
    delete counts.credentials;
    const added = kindList(counts);
    const body = html`${takeFlash(session)}
<p>${strings.reviewIntro}</p>
<section aria-labelledby="added-h" id="report">
<h2 id="added-h">${strings.reviewAdd}</h2>
${added.length > 0 ? html`<p>${strings.reviewAddIntro}</p><ul class="report">${holdings(pending.holds, pending.hasPassword)}</ul><details><summary>${strings.recordsPerKind}</summary><ul class="report">${added}</ul></details>` : html`<p>${strings.reviewNothing}</p>`}
${report.skipped.length > 0 ? html`<h2>${strings.reviewSkipped}</h2><ul class="report">${report.skipped.map((s) => html`<li>${strings.kindNames[s.kind] ?? s.kind}: ${s.reason}${s.detail ? ` (${s.detail})` : ''}</li>`)}</ul>` : html``}
${report.unsupported.length > 0 ? html`<p>${strings.reviewUnsupported(report.unsupported.map((k) => strings.kindNames[k] ?? k).join(', '))}</p>` : html``}
${report.warnings.length > 0 ? html`<h2>${strings.reviewWarnings}</h2><ul class="report">${report.warnings.map((w) => html`<li>${w}</li>`)}</ul>` : html``}
</section>
<p>${strings.reviewReplaceNote}</p>
<form method="post" action="${base}/import/confirm" data-busy="applying">
  <input type="hidden" name="csrf" value="${session.csrf}">
  <fieldset>
    <legend>${strings.modeLegend}</legend>
    <label class="choice"><input type="radio" name="mode" value="merge" checked> ${strings.modeMerge}</label>
    <label class="choice"><input type="radio" name="mode" value="replace"> ${strings.modeReplace}</label>
  </fieldset>
  ${pending.hasPassword ? html`<label class="choice"><input type="checkbox" name="password" value="take"> ${strings.passwordChoice}</label>` : html`<p>${strings.passwordNone}</p>`}
  <p id="applying" role="status" hidden>${strings.applying}</p>
  <div class="actions">
    <button type="submit">${strings.confirmButton}</button>
    <button type="submit" class="secondary" formaction="${base}/import/cancel">${strings.cancelButton}</button>
  </div>
</form>`;
    return page(reply, 200, strings.reviewTitle, body, session, 'import');
  });

  app.post(`${base}/import/cancel`, publicRoute, async (request, reply) => {
    const session = postSession(request, reply, formField(request.body, 'csrf'));
    if (!session) return reply;
    await SessionStore.dropPending(session);
    session.flash = { kind: 'info', text: strings.cancelled };
    return seeOther(reply, '/import');
  });

  app.post(`${base}/import/confirm`, publicRoute, async (request, reply) => {
    const session = postSession(request, reply, formField(request.body, 'csrf'));
    if (!session) return reply;
    const pending = session.pending;
    session.pending = undefined;
    if (!pending || pending.expiresAt <= Date.now()) {
      await pending?.spool.remove();
      session.flash = { kind: 'error', text: strings.pendingGone };
      return seeOther(reply, '/import');
    }
    const mode: ImportMode = formField(request.body, 'mode') === 'replace' ? 'replace' : 'merge';
    const takePassword = pending.hasPassword && formField(request.body, 'password') === 'take';
    const include = takePassword ? ALL_KINDS : new Set(DATA_KINDS.filter((k) => k !== 'credentials'));
    try {
      const report = await runImport(session, () => pending.spool.open(), mode, include, false);
      session.done = { report, holds: pending.holds, tookPassword: takePassword };
      ctx.audit.record({ action: 'import', actor: { kind: 'web', jid: session.jid }, outcome: 'ok', account: session.jid, dryRun: false, mode, kinds: [...include], requestId: request.id });
      return seeOther(reply, '/import/done');
    } catch (err) {
      const text = failureText(err, web.maxUploadBytes);
      if (text === strings.errorInternal) request.log.error({ err }, 'web import failed');
      ctx.audit.record({ action: 'import', actor: { kind: 'web', jid: session.jid }, outcome: 'failed', account: session.jid, dryRun: false, mode, reason: err instanceof Error ? err.message : String(err), requestId: request.id });
      session.flash = { kind: 'error', text };
      return seeOther(reply, '/import');
    } finally {
      await pending.spool.remove();
    }
  });

  app.get(`${base}/import/done`, publicRoute, async (request, reply) => {
    const found = sessionOf(request);
    if (!found) return seeOther(reply, '/?ended=1');
    const { session } = found;
    const done = session.done;
    if (!done) return seeOther(reply, '/import');
    const { report } = done;
    const added = holdings(done.holds, done.tookPassword);
    return page(
      reply,
      200,
      strings.doneTitle,
      html`<div class="notice info" role="status" id="notice" tabindex="-1">${strings.doneIntro}</div>
<section id="summary">
${added.length > 0 ? html`<ul class="report">${added}</ul>` : html`<p>${strings.reviewNothing}</p>`}
<p>${strings.doneMode(report.mode)}</p>
${report.skipped.length > 0 ? html`<h2>${strings.reviewSkipped}</h2><ul class="report">${report.skipped.map((s) => html`<li>${strings.kindNames[s.kind] ?? s.kind}: ${s.reason}</li>`)}</ul>` : html``}
${report.warnings.length > 0 ? html`<h2>${strings.reviewWarnings}</h2><ul class="report">${report.warnings.map((w) => html`<li>${w}</li>`)}</ul>` : html``}
</section>
<p>${strings.doneNext}</p>
<p><a href="${base}/">${strings.backToOverview}</a></p>`,
      session,
      'import',
    );
  });

  const moves = new MoveService(ctx);

  app.get(`${base}/move`, publicRoute, async (request, reply) => {
    const found = sessionOf(request);
    if (!found) return seeOther(reply, '/?ended=1');
    const { session } = found;
    const flash = takeFlash(session);
    if (!session.scopes.includes('import')) return page(reply, 200, strings.moveTitle, html`${flash}<p>${strings.noImportRight}</p>`, session, 'move');
    const status = await moves.status(session.jid);
    if (status) {
      const rows = status.contacts.map((c) => html`<tr><td>${c.jid}</td><td>${strings.moveStates[c.state] ?? c.state}</td></tr>`);
      return page(
        reply,
        200,
        strings.moveTitle,
        html`${flash}
<p>${strings.moveCurrent(status.newJid)}</p>
<p>${strings.moveStepsIntro(status.newJid)}</p>
${
  rows.length > 0
    ? html`<table id="move-contacts"><caption>${strings.moveStatusCaption}</caption>
<thead><tr><th scope="col">${strings.moveContact}</th><th scope="col">${strings.moveState}</th></tr></thead>
<tbody>${rows}</tbody></table>`
    : html`<p>${strings.moveNoContacts}</p>`
}
<p><a href="${base}/move" data-refresh="15">${strings.moveRefresh}</a></p>`,
        session,
        'move',
      );
    }
    return page(
      reply,
      200,
      strings.moveTitle,
      html`${flash}
<p>${strings.moveIntro}</p>
<form method="post" action="${base}/move" data-busy="moving">
  <input type="hidden" name="csrf" value="${session.csrf}">
  <label for="newjid">${strings.moveNewJid}</label>
  <input id="newjid" name="newJid" type="email" inputmode="email" autocapitalize="none" spellcheck="false" required aria-describedby="newjid-hint">
  <p class="hint" id="newjid-hint">${strings.moveNewJidHint}</p>
  <label for="importurl">${strings.moveImportLink}</label>
  <input id="importurl" name="importUrl" type="url" autocomplete="off" spellcheck="false" aria-describedby="importurl-hint">
  <p class="hint" id="importurl-hint">${strings.moveImportLinkHint}</p>
  <p id="moving" role="status" hidden>${strings.applying}</p>
  <button type="submit">${strings.moveButton}</button>
</form>`,
      session,
      'move',
    );
  });

  app.post(`${base}/move`, publicRoute, async (request, reply) => {
    const session = postSession(request, reply, formField(request.body, 'csrf'));
    if (!session) return reply;
    if (!session.scopes.includes('import')) {
      session.flash = { kind: 'error', text: strings.noImportRight };
      return seeOther(reply, '/move');
    }
    const newJid = (formField(request.body, 'newJid') ?? '').trim();
    const importUrl = (formField(request.body, 'importUrl') ?? '').trim();
    try {
      const status = await moves.move(session.jid, newJid, importUrl === '' ? undefined : importUrl);
      ctx.audit.record({ action: 'move', actor: { kind: 'web', jid: session.jid }, outcome: 'ok', account: session.jid, target: status.newJid, requestId: request.id });
      session.flash = { kind: 'info', text: `${strings.moveDone(status.newJid)}${status.copied ? ` ${strings.moveCopied}` : ''}` };
    } catch (err) {
      ctx.audit.record({ action: 'move', actor: { kind: 'web', jid: session.jid }, outcome: 'refused', account: session.jid, reason: err instanceof Error ? err.message : String(err), requestId: request.id });
      if (err instanceof MoveError) {
        if (err.code === 'bad-request') session.flash = { kind: 'error', text: strings.moveBadJid(err.message) };
        else if (err.code === 'upstream' || err.code === 'refused') session.flash = { kind: 'error', text: strings.moveFailed };
        else session.flash = { kind: 'error', text: failureText(err, web.maxUploadBytes) };
      } else {
        const text = failureText(err, web.maxUploadBytes);
        if (text === strings.errorInternal) request.log.error({ err }, 'web move failed');
        session.flash = { kind: 'error', text };
      }
    }
    return seeOther(reply, '/move');
  });

  app.setErrorHandler((err, request, reply) => {
    request.log.error({ err }, 'web page error');
    const found = sessionOf(request);
    return page(reply, 500, strings.errorTitle, html`${notice('error', strings.errorInternal)}<p><a href="${base}/">${strings.backToOverview}</a></p>`, found?.session);
  });
};

async function* tap(events: AsyncIterable<DocumentEvent>, see: (e: DocumentEvent) => void): AsyncGenerator<DocumentEvent> {
  for await (const event of events) {
    see(event);
    yield event;
  }
}
