/**
 * Bringing an account from another provider: xporta signs in there over the client protocol
 * with the owner's old address and password (held by the running pull only: never stored,
 * logged or shown again), writes what it reads to a spool file, checks it by a dry run through
 * the core's import pipeline, and hands it to the import's review and confirmation. The page
 * shows the pull's progress (messages read so far) and reloads itself until the review is ready.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Spool } from '../core/spool.js';
import { spoolUpload } from '../core/spool.js';
import { beginPull, UNREADABLE_KINDS, XmppPullError, type RemoteAccount } from '../core/pull-import.js';
import { bareJid } from '../lib/jid.js';
import { DATA_KINDS } from '../records/model.js';
import { writeDocument } from '../xep0227/writer.js';
import { html } from './html.js';
import type { CheckSpool } from './import.js';
import { failureText, formField, type WebKit } from './kit.js';
import { SessionStore, type PullTask, type Session } from './sessions.js';
import { strings } from './strings.js';

/** Everything the client protocol can read, without credentials (the other server never reveals them). */
const PULLED_KINDS = new Set(DATA_KINDS.filter((k) => k !== 'credentials' && !UNREADABLE_KINDS.has(k)));

function pullFailureText(err: unknown, maxUploadBytes: number): string {
  if (err instanceof XmppPullError) {
    switch (err.code) {
      case 'auth-failed':
        return strings.pullAuthFailed;
      case 'address-refused':
      case 'connect-failed':
        return strings.pullUnreachable;
      case 'tls-unavailable':
      case 'tls-verify-failed':
        return strings.pullInsecure;
      default:
        return strings.pullBroken;
    }
  }
  return failureText(err, maxUploadBytes);
}

export function pullRoutes(app: FastifyInstance, kit: WebKit, check: CheckSpool): void {
  const { ctx, web, base, publicRoute, sessionOf, page, takeFlash, seeOther, postSession } = kit;
  const { config } = ctx;

  const form = (session: Session): ReturnType<typeof html> => html`<p>${strings.pullIntro}</p>
<form method="post" action="${base}/import/xmpp" novalidate>
  <input type="hidden" name="csrf" value="${session.csrf}">
  <label for="oldjid">${strings.pullJidLabel}</label>
  <input id="oldjid" name="jid" type="email" inputmode="email" autocomplete="off" autocapitalize="none" spellcheck="false" required aria-describedby="oldjid-hint">
  <p class="hint" id="oldjid-hint">${strings.jidHint}</p>
  <label for="oldpassword">${strings.pullPasswordLabel}</label>
  <input id="oldpassword" name="password" type="password" autocomplete="off" required>
  <button type="submit">${strings.pullButton}</button>
</form>`;

  app.get(`${base}/import/xmpp`, publicRoute, async (request, reply) => {
    const found = sessionOf(request);
    if (!found) return seeOther(reply, '/?ended=1');
    const { session } = found;
    const task = session.pull;
    if (task?.state === 'checked') {
      session.pull = undefined;
      return seeOther(reply, '/import/review');
    }
    if (task?.state === 'failed') {
      session.pull = undefined;
      session.flash = { kind: 'error', text: task.failure ?? strings.errorInternal };
    }
    const flash = takeFlash(session);
    if (!session.scopes.includes('import')) return page(reply, 200, strings.pullTitle, html`${flash}<p>${strings.noImportRight}</p>`, session, 'import');
    if (task && (task.state === 'reading' || task.state === 'checking')) {
      const { notes } = task;
      return page(
        reply,
        200,
        strings.pullTitle,
        html`${flash}
<div id="pull-progress" role="status">
<p>${task.state === 'reading' ? strings.pullReading(task.source) : strings.pullChecking}</p>
<p>${strings.pullProgress(notes.archiveRead, notes.archiveTotal)}</p>
${notes.archiveTotal !== undefined && notes.archiveTotal > 0 ? html`<progress max="${String(notes.archiveTotal)}" value="${String(notes.archiveRead)}" aria-label="${strings.pullProgress(notes.archiveRead, notes.archiveTotal)}"></progress>` : html``}
</div>
<p>${strings.pullKeepOpen}</p>
<p><a href="${base}/import/xmpp" data-refresh="2">${strings.pullRefresh}</a></p>`,
        session,
        'import',
      );
    }
    return page(reply, 200, strings.pullTitle, html`${flash}${form(session)}`, session, 'import');
  });

  app.post(`${base}/import/xmpp`, publicRoute, async (request, reply) => {
    const session = postSession(request, reply, formField(request.body, 'csrf'));
    if (!session) return reply;
    if (!session.scopes.includes('import')) {
      session.flash = { kind: 'error', text: strings.noImportRight };
      return seeOther(reply, '/import/xmpp');
    }
    if (session.pull && (session.pull.state === 'reading' || session.pull.state === 'checking')) {
      session.flash = { kind: 'info', text: strings.pullRunning };
      return seeOther(reply, '/import/xmpp');
    }
    const password = formField(request.body, 'password') ?? '';
    let source: string;
    try {
      source = bareJid((formField(request.body, 'jid') ?? '').trim());
      if (!source.includes('@')) throw new Error('no localpart');
    } catch {
      session.flash = { kind: 'error', text: strings.pullBadJid };
      return seeOther(reply, '/import/xmpp');
    }
    if (password === '') {
      session.flash = { kind: 'error', text: strings.pullNoPassword };
      return seeOther(reply, '/import/xmpp');
    }
    await SessionStore.dropPending(session);
    const controller = new AbortController();
    let pull: RemoteAccount;
    try {
      pull = beginPull(ctx, { jid: source, password, include: PULLED_KINDS, signal: controller.signal });
    } catch (err) {
      session.flash = { kind: 'error', text: failureText(err, web.maxUploadBytes) };
      return seeOther(reply, '/import/xmpp');
    }
    const task: PullTask = { source, notes: pull.notes, state: 'reading', controller };
    session.pull = task;
    const audit = (outcome: 'ok' | 'refused', reason?: string): void =>
      ctx.audit.record({ action: 'import', actor: { kind: 'web', jid: session.jid }, outcome, account: session.jid, dryRun: true, mode: 'merge', target: source, ...(reason !== undefined ? { reason } : {}), requestId: request.id });
    void (async () => {
      let spool: Spool | undefined;
      try {
        spool = await spoolUpload(Readable.from(writeDocument(pull.events)), config.dataDir, 'pull', config.files.mode);
        if (session.pull !== task) throw new XmppPullError('connection-lost', 'cancelled');
        task.state = 'checking';
        await check(session, spool, { kinds: PULLED_KINDS, pulledFrom: source });
        if (session.pull !== task) {
          // The session ended while the check ran: its review has no one to show it to.
          await SessionStore.dropPending(session);
          return;
        }
        task.state = 'checked';
        audit('ok');
      } catch (err) {
        await spool?.remove();
        task.failure = pullFailureText(err, web.maxUploadBytes);
        task.state = 'failed';
        if (task.failure === strings.errorInternal) request.log.error({ err }, 'web pull failed');
        audit('refused', err instanceof Error ? err.message : String(err));
      } finally {
        pull.release();
      }
    })();
    return seeOther(reply, '/import/xmpp');
  });
}
