/**
 * `POST /v1/users/{jid}/import-from-xmpp`: logs in to another server as the user (client
 * protocol, the user's own password), reads the account and imports it into the local account
 * in one transaction, as a background job (src/core/pull-import-job.ts). The answer is 202 with
 * the job as soon as the account is held and the remote login succeeded, so that the request's
 * own mistakes (a busy or missing account, no free pull, a wrong password, an unreachable or
 * insecure server) are still answered as problems; the job then carries the progress and the
 * report. A dry run is a job too: it reads the whole remote account as the import does.
 *
 * `POST /v1/xmpp-export`: the same pull, streamed as a XEP-0227 document (operator tokens).
 *
 * The password lives in the request only: it is not stored, logged, put in the audit line or
 * the job, or echoed in an error.
 */
import { join } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import type { ServiceContext } from '../../core/context.js';
import { documentStream } from '../../core/export-stream.js';
import { importMode } from '../../core/import-options.js';
import { JOBS_FILE, JobStore } from '../../core/job-store.js';
import { openPull, pullableKinds } from '../../core/pull-import.js';
import { startPullImportJob } from '../../core/pull-import-job.js';
import { bareJid, JidError } from '../../lib/jid.js';
import { acceptsGzip } from '../account-io.js';
import { actorOf, auditNote } from '../audit-trail.js';
import { abortWhenClientLeaves } from '../client-abort.js';
import { attachmentDisposition } from '../download.js';
import { guardAccount, principalOf } from '../guard.js';
import { kindsParam } from '../params.js';
import { problems } from '../problem.js';
import { routeSchemas } from '../schemas/routes.js';

interface JidParams {
  jid: string;
}

/** As the route schema admits it: `jid` a string, `password` a non-empty string, no other fields. */
interface ImportFromXmppBody {
  jid: string;
  password: string;
  mode?: unknown;
  dryRun?: unknown;
  createAccount?: unknown;
  include?: unknown;
  exclude?: unknown;
}

interface ExportXmppBody {
  jid: string;
  password: string;
  include?: unknown;
  exclude?: unknown;
}

/** The remote account's bare JID, or a 400. */
function remoteJid(raw: string): string {
  let source: string;
  try {
    source = bareJid(raw);
  } catch (err) {
    throw problems.badRequest(`jid is not a valid JID${err instanceof JidError ? `: ${err.reason}` : ''}`);
  }
  if (!source.includes('@')) throw problems.badRequest('jid must be a user JID (user@domain)');
  return source;
}

export const importFromXmppRoutes: FastifyPluginAsync<{ ctx: ServiceContext }> = async (app, { ctx }) => {
  const { config } = ctx;
  const jobs = ctx.jobs ?? JobStore.open(join(config.dataDir, JOBS_FILE), config.files.mode);

  app.post<{ Params: JidParams; Body: ImportFromXmppBody }>('/v1/users/:jid/import-from-xmpp', { schema: routeSchemas.importUserFromXmpp, config: { guard: { account: 'import' } } }, async (request, reply) => {
    const { jid, principal } = guardAccount(ctx, request, request.params.jid, 'import');
    const body = request.body;
    const source = remoteJid(body.jid);
    const kinds = pullableKinds(kindsParam(body));
    const mode = importMode(body.mode, 'replace');
    const dryRun = body.dryRun === true;
    const createAccount = body.createAccount === true;
    auditNote(request, { account: jid, kinds: [...kinds], mode, dryRun });
    const job = await startPullImportJob(
      ctx,
      jobs,
      { jid, from: { jid: source, password: body.password }, options: { mode, dryRun, include: kinds, createAccount }, source: 'xmpp', principal },
      { audit: { action: 'import', actor: actorOf(principal), account: jid, kinds: [...kinds], mode, dryRun, target: source, requestId: request.id } },
    );
    return reply.code(202).header('location', `/v1/jobs/${job.id}`).send(job);
  });

  app.post<{ Body: ExportXmppBody }>('/v1/xmpp-export', { schema: routeSchemas.exportRemoteXmpp, config: { guard: 'operator' } }, async (request, reply) => {
    // The account is on another server: an operator's export scope is what counts, whatever its hosts.
    if (!principalOf(ctx, request).scopes.includes('export')) throw problems.forbidden('the token lacks the export scope');
    const source = remoteJid(request.body.jid);
    const kinds = pullableKinds(kindsParam(request.body));
    auditNote(request, { kinds: [...kinds], target: source });
    const signal = abortWhenClientLeaves(reply);
    // Signed in before the answer starts: a failed login is a problem, not a cut document.
    const pull = await openPull(ctx, { jid: source, password: request.body.password, include: kinds, signal });
    const gzip = acceptsGzip(request.headers);
    const body = documentStream(pull.events, ctx.metrics, { gzip });
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) body.destroy();
      pull.release();
    });
    reply.header('content-type', 'application/xml; charset=utf-8').header('content-disposition', attachmentDisposition(`${source}.xml`)).header('vary', 'accept-encoding');
    if (gzip) reply.header('content-encoding', 'gzip');
    return reply.send(body);
  });
};
