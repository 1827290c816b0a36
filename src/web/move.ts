/**
 * The XEP-0283 move through the core's MoveService: publish that the account moved, then the
 * contacts and their state, read again while the page is open.
 */
import type { FastifyInstance } from 'fastify';
import { MoveError, MoveService } from '../core/move.js';
import { html } from './html.js';
import { failureText, formField, type WebKit } from './kit.js';
import { strings } from './strings.js';

export function moveRoutes(app: FastifyInstance, kit: WebKit): void {
  const { ctx, web, base, publicRoute, sessionOf, page, takeFlash, seeOther, postSession } = kit;

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
<form method="post" action="${base}/move" data-busy="moving" novalidate>
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
}
