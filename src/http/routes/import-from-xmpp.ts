/**
 * `POST /v1/users/{jid}/import-from-xmpp`: logs in to another server as the user (client
 * protocol, the user's own password), reads the account and imports it into the local account
 * through the same import function as the other import routes, in one transaction. It runs
 * synchronously: the answer is the import report once everything is applied (or nothing is).
 *
 * The password lives in this request only: it is not stored, logged, put in the audit line, or
 * echoed in an error.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ServiceContext } from '../../core/context.js';
import { importAccount } from '../../core/import-pipeline.js';
import { importMode } from '../../core/import-options.js';
import { bareJid, JidError } from '../../lib/jid.js';
import { pullAccount, pullSettings, UNREADABLE_KINDS } from '../../storage/xmpp-client/index.js';
import { importUserDocument } from '../../transfer/account-transfer.js';
import { auditNote } from '../audit-trail.js';
import { abortWhenClientLeaves } from '../client-abort.js';
import { guardAccount } from '../guard.js';
import { reportCounts } from '../import-spool.js';
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

export const importFromXmppRoutes: FastifyPluginAsync<{ ctx: ServiceContext }> = async (app, { ctx }) => {
  const { config, storage } = ctx;

  app.post<{ Params: JidParams; Body: ImportFromXmppBody }>('/v1/users/:jid/import-from-xmpp', { schema: routeSchemas.importUserFromXmpp, config: { guard: { account: 'import' } } }, async (request, reply) => {
    const { ref, jid, principal } = guardAccount(ctx, request, request.params.jid, 'import');
    const body = request.body;
    const password = body.password;
    let source: string;
    try {
      source = bareJid(body.jid);
    } catch (err) {
      throw problems.badRequest(`jid is not a valid JID${err instanceof JidError ? `: ${err.reason}` : ''}`);
    }
    if (!source.includes('@')) throw problems.badRequest('jid must be a user JID (user@domain)');
    const kinds = kindsParam(body);
    // Kinds the client protocol cannot read (credentials, offline messages, server-specific
    // stores) are left out of the import, so `replace` does not clear the local account's own.
    for (const kind of UNREADABLE_KINDS) kinds.delete(kind);
    const mode = importMode(body.mode, 'replace');
    const dryRun = body.dryRun === true;
    const createAccount = body.createAccount === true;
    auditNote(request, { account: jid, kinds: [...kinds], mode, dryRun });

    const signal = abortWhenClientLeaves(reply);
    const options = { mode, dryRun, include: kinds, createAccount, signal };
    let notes: ReturnType<typeof pullAccount>['notes'] | undefined;
    const report = await importAccount(ctx, { jid, source: 'xmpp', options, principal }, {
      apply: (run) => {
        const pull = pullAccount({ ...pullSettings(config, source), jid: source, password, include: kinds, signal });
        notes = pull.notes;
        return importUserDocument(storage, ref, run.countRecords(pull.events), options);
      },
    });
    auditNote(request, { counts: reportCounts(report) });
    const pulled = notes as NonNullable<typeof notes>;
    return reply.send({
      ...report,
      warnings: [...report.warnings, ...pulled.warnings],
      refused: pulled.refused,
      source,
      ...(pulled.archiveTotal !== undefined ? { archiveTotal: pulled.archiveTotal } : {}),
    });
  });
};
