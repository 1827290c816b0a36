/**
 * The overview (what the account holds, counted from storage) and the download (streamed from
 * storage through the core's document stream, named by RFC 6266).
 */
import type { FastifyInstance } from 'fastify';
import { accountOverview } from '../core/account-overview.js';
import { documentStream } from '../core/export-stream.js';
import { exportUserDocument, refOf } from '../transfer/account-transfer.js';
import { html, type SafeHtml } from './html.js';
import { ALL_KINDS, downloadDisposition, WITHOUT_ARCHIVE, type WebKit } from './kit.js';
import { strings } from './strings.js';

export function accountRoutes(app: FastifyInstance, kit: WebKit): void {
  const { ctx, base, sessions, publicRoute, sessionOf, page, takeFlash, seeOther, signInPage } = kit;
  const { storage } = ctx;

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
}
