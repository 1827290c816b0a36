/**
 * Importing a file: upload (spooled once, gzip told by its first bytes), a dry run through the
 * core's import pipeline shown in words, then the owner's choice (merge or replace, the file's
 * password or not) applied from the same spooled file, and a summary. The file stays bound to
 * the session until it is applied, cancelled or expires.
 */
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { OverviewTally, type AccountOverview } from '../core/account-overview.js';
import type { ImportSource } from '../core/context.js';
import type { Spool } from '../core/spool.js';
import { importAccount } from '../core/import-pipeline.js';
import { importReaderOptions } from '../core/import-options.js';
import { DATA_KINDS, type DataKind, type DocumentEvent } from '../records/model.js';
import type { ImportMode } from '../storage/backend.js';
import { DEFAULT_RETRY_POLICY, withRetries } from '../storage/retry.js';
import { importUserDocument, refOf, type UserImportReport } from '../transfer/account-transfer.js';
import { readDocument } from '../xep0227/reader.js';
import { html, type SafeHtml } from './html.js';
import { ALL_KINDS, failureText, formField, megabytes, type WebKit } from './kit.js';
import { SessionStore, type Session } from './sessions.js';
import { strings } from './strings.js';
import { spoolFormFile, UploadError } from './upload.js';

/** Checks a spooled document by a dry run and keeps it, bound to the session, for the review. */
export type CheckSpool = (session: Session, spool: Spool, from: { readonly kinds: ReadonlySet<DataKind>; readonly pulledFrom: string }) => Promise<void>;

export function importRoutes(app: FastifyInstance, kit: WebKit): { check: CheckSpool } {
  const { ctx, web, base, publicRoute, sessionOf, page, takeFlash, seeOther, postSession, markScripted } = kit;
  const { config, storage } = ctx;

  const importForm = (session: Session, flash: SafeHtml): SafeHtml =>
    html`${flash}
<p>${strings.importIntro}</p>
<p><a href="${base}/import/xmpp">${strings.pullLink}</a></p>
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
  // A pulled document was written by xporta from what the other server served: no upload limit.
  const pulledReaderOptions = importReaderOptions(config.limits, ALL_KINDS, { from: 'file' });

  /** Applies (or checks) the spooled file under the core's pipeline, retrying a transient storage failure. */
  const runImport = async (session: Session, open: () => Readable, mode: ImportMode, include: ReadonlySet<DataKind>, dryRun: boolean, onUser?: (e: DocumentEvent) => void, source: ImportSource = 'upload'): Promise<UserImportReport> => {
    const jid = session.jid;
    const ref = refOf(jid);
    const options = { mode, dryRun, include, createAccount: false };
    const reading = source === 'xmpp' ? pulledReaderOptions : readerOptions;
    return importAccount(ctx, { jid, source, options, createHint: strings.errorNoAccount }, {
      apply: (run) =>
        withRetries(
          async (attempt) => {
            const events = readDocument(open(), { ...reading, credentials: include.has('credentials') });
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
    if (request.headers['x-xporta-upload'] === '1') markScripted(request);
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
    const pulled = pending.pulledFrom !== undefined;
    const counts = { ...report.counts };
    delete counts.credentials;
    const added = kindList(counts);
    const body = html`${takeFlash(session)}
<p>${pending.pulledFrom !== undefined ? strings.reviewIntroPulled(pending.pulledFrom) : strings.reviewIntro}</p>
<section aria-labelledby="added-h" id="report">
<h2 id="added-h">${pulled ? strings.pullReviewAdd : strings.reviewAdd}</h2>
${added.length > 0 ? html`<p>${strings.reviewAddIntro}</p><ul class="report">${holdings(pending.holds, pending.hasPassword)}</ul><details><summary>${strings.recordsPerKind}</summary><ul class="report">${added}</ul></details>` : html`<p>${pulled ? strings.pullReviewNothing : strings.reviewNothing}</p>`}
${report.skipped.length > 0 ? html`<h2>${strings.reviewSkipped}</h2><ul class="report">${report.skipped.map((s) => html`<li>${strings.kindNames[s.kind] ?? s.kind}: ${s.reason}${s.detail ? ` (${s.detail})` : ''}</li>`)}</ul>` : html``}
${report.unsupported.length > 0 ? html`<p>${strings.reviewUnsupported(report.unsupported.map((k) => strings.kindNames[k] ?? k).join(', '))}</p>` : html``}
${report.warnings.length > 0 ? html`<h2>${strings.reviewWarnings}</h2><ul class="report">${report.warnings.map((w) => html`<li>${w}</li>`)}</ul>` : html``}
</section>
<p>${pulled ? strings.pullReplaceNote : strings.reviewReplaceNote}</p>
<form method="post" action="${base}/import/confirm" data-busy="applying">
  <input type="hidden" name="csrf" value="${session.csrf}">
  <fieldset>
    <legend>${strings.modeLegend}</legend>
    <label class="choice"><input type="radio" name="mode" value="merge" checked> ${strings.modeMerge}</label>
    <label class="choice"><input type="radio" name="mode" value="replace"> ${strings.modeReplace}</label>
  </fieldset>
  ${pending.hasPassword ? html`<label class="choice"><input type="checkbox" name="password" value="take"> ${strings.passwordChoice}</label>` : html`<p>${pulled ? strings.pullPasswordNone : strings.passwordNone}</p>`}
  <p id="applying" role="status" hidden>${strings.applying}</p>
  <div class="actions">
    <button type="submit">${strings.confirmButton}</button>
    <button type="submit" class="secondary" formaction="${base}/import/cancel">${pulled ? strings.pullCancelButton : strings.cancelButton}</button>
  </div>
</form>`;
    return page(reply, 200, strings.reviewTitle, body, session, 'import');
  });

  app.post(`${base}/import/cancel`, publicRoute, async (request, reply) => {
    const session = postSession(request, reply, formField(request.body, 'csrf'));
    if (!session) return reply;
    const pulled = session.pending?.pulledFrom !== undefined;
    await SessionStore.dropPending(session);
    session.flash = { kind: 'info', text: pulled ? strings.pullCancelled : strings.cancelled };
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
    const kinds = pending.kinds ?? ALL_KINDS;
    const include = takePassword ? kinds : new Set(DATA_KINDS.filter((k) => k !== 'credentials' && kinds.has(k)));
    try {
      const report = await runImport(session, () => pending.spool.open(), mode, include, false, undefined, pending.pulledFrom !== undefined ? 'xmpp' : 'upload');
      session.done = { report, holds: pending.holds, tookPassword: takePassword, ...(pending.pulledFrom !== undefined ? { pulledFrom: pending.pulledFrom } : {}) };
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
      html`<div class="notice info" role="status" id="notice" tabindex="-1">${done.pulledFrom !== undefined ? strings.pullDoneIntro(done.pulledFrom) : strings.doneIntro}</div>
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

  const check: CheckSpool = async (session, spool, from) => {
    let tally = new OverviewTally();
    const report = await runImport(session, () => spool.open(), 'merge', from.kinds, true, (event) => {
      if (event.kind === 'user') tally = new OverviewTally();
      else tally.add(event);
    }, 'xmpp');
    await SessionStore.dropPending(session);
    session.pending = { spool, report, holds: tally.result(), hasPassword: false, expiresAt: Date.now() + web.pendingImportTtlSeconds * 1000, kinds: from.kinds, pulledFrom: from.pulledFrom };
  };
  return { check };
}

async function* tap(events: AsyncIterable<DocumentEvent>, see: (e: DocumentEvent) => void): AsyncGenerator<DocumentEvent> {
  for await (const event of events) {
    see(event);
    yield event;
  }
}

