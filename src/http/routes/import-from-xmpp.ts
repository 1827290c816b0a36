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
import { bareJid, JidError } from '../../lib/jid.js';
import { pullAccount, pullSettings, UNREADABLE_KINDS, XmppPullError, type PullFailure } from '../../storage/xmpp-client/index.js';
import { importUserDocument } from '../../transfer/account-transfer.js';
import { auditNote } from '../audit-trail.js';
import { guardAccount, type ServiceContext } from '../context.js';
import { Problem, problems } from '../problem.js';
import { onlyFields } from './tokens.js';
import { kindsOrProblem, toProblem } from './users.js';
import { routeSchemas } from '../schemas/routes.js';

interface JidParams {
  jid: string;
}

const FIELDS = new Set(['jid', 'password', 'mode', 'dryRun', 'createAccount', 'include', 'exclude']);

/** HTTP status per pull failure: the remote's fault is a bad gateway, the caller's a 4xx. */
const STATUS: Readonly<Record<PullFailure, number>> = {
  'address-refused': 422,
  'connect-failed': 502,
  'tls-unavailable': 502,
  'tls-verify-failed': 502,
  'auth-failed': 401,
  'connection-lost': 502,
  timeout: 504,
  protocol: 502,
};

export function pullProblem(err: XmppPullError): Problem {
  // 401 would ask the xporta client to re-authenticate to xporta: the remote login failed, so 422.
  const status = err.code === 'auth-failed' ? 422 : STATUS[err.code];
  return new Problem(status, `xmpp-${err.code}`, 'The remote XMPP account could not be read', err.message);
}

export const importFromXmppRoutes: FastifyPluginAsync<{ ctx: ServiceContext }> = async (app, { ctx }) => {
  const { config, storage } = ctx;

  app.post<{ Params: JidParams }>('/v1/users/:jid/import-from-xmpp', { schema: routeSchemas.importUserFromXmpp, config: { guard: { account: 'import' } } }, async (request, reply) => {
    const { ref, jid, principal } = guardAccount(ctx, request, request.params.jid, 'import');
    const body = onlyFields(request.body, FIELDS) as Record<string, unknown>;
    if (typeof body.jid !== 'string') throw problems.badRequest('jid (the remote account) is required');
    if (typeof body.password !== 'string' || body.password === '') throw problems.badRequest('password is required');
    let source: string;
    try {
      source = bareJid(body.jid);
    } catch (err) {
      throw problems.badRequest(`jid is not a valid JID${err instanceof JidError ? `: ${err.reason}` : ''}`);
    }
    if (!source.includes('@')) throw problems.badRequest('jid must be a user JID (user@domain)');
    const kinds = kindsOrProblem({
      ...(typeof body.include === 'string' ? { include: body.include } : {}),
      ...(typeof body.exclude === 'string' ? { exclude: body.exclude } : {}),
    });
    // Kinds the client protocol cannot read (credentials, offline messages, server-specific
    // stores) are left out of the import, so `replace` does not clear the local account's own.
    for (const kind of UNREADABLE_KINDS) kinds.delete(kind);
    const mode = body.mode ?? 'replace';
    if (mode !== 'replace' && mode !== 'merge') throw problems.badRequest('mode must be replace or merge');
    const dryRun = body.dryRun === true;
    const createAccount = body.createAccount === true;
    auditNote(request, { account: jid, kinds: [...kinds], mode, dryRun });

    const lease = await ctx.locks.tryAcquire(jid, 'exclusive');
    if (!lease) throw problems.conflict(`another operation on ${jid} is running`);
    const slot = ctx.importSlots.tryTake();
    if (!slot) {
      lease.release();
      throw problems.tooManyRequests('too many imports are running; try again later', 30);
    }
    const abort = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
    });
    try {
      if (!createAccount && !(await storage.userExists(ref))) throw problems.notFound(`no account ${jid} (use createAccount=true to create it)`);
      const pull = pullAccount({ ...pullSettings(config, source), jid: source, password: body.password, include: kinds, signal: abort.signal });
      const report = await importUserDocument(storage, ref, pull.events, { mode, dryRun, include: kinds, createAccount, signal: abort.signal });
      const counts: Record<string, number> = {};
      for (const [kind, n] of Object.entries(report.counts)) if (typeof n === 'number') counts[kind] = n;
      auditNote(request, { counts });
      ctx.notifier?.importFinished({ jid, report, principal });
      return reply.send({
        ...report,
        warnings: [...report.warnings, ...pull.notes.warnings],
        refused: pull.notes.refused,
        source,
        ...(pull.notes.archiveTotal !== undefined ? { archiveTotal: pull.notes.archiveTotal } : {}),
      });
    } catch (err) {
      if (err instanceof XmppPullError) throw pullProblem(err);
      throw toProblem(err);
    } finally {
      slot.release();
      lease.release();
    }
  });
};
