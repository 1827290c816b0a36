/**
 * Per-account endpoints: streamed export, atomic import, user tokens. Imports go through the
 * core's pipeline (src/core/import-pipeline.ts); errors are answered by the problem map.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Scope } from '../../config/config.js';
import type { ServiceContext } from '../../core/context.js';
import { importMode } from '../../core/import-options.js';
import { importUploadInto, sendAccountExport } from '../account-io.js';
import { auditNote } from '../audit-trail.js';
import { guardAccount } from '../guard.js';
import { booleanParam, kindsParam } from '../params.js';
import { problems } from '../problem.js';
import { routeSchemas } from '../schemas/routes.js';

interface JidParams {
  jid: string;
}

interface ExportQuery {
  include?: string;
  exclude?: string;
}

interface ImportQuery extends ExportQuery {
  mode?: string;
  dryRun?: string;
  createAccount?: string;
  keepSubscriptions?: string;
}

/** As the route schema admits it: no body (null), or these fields with their types and ranges. */
interface TokenBody {
  scopes?: Scope[];
  ttlSeconds?: number;
}

export const userRoutes: FastifyPluginAsync<{ ctx: ServiceContext }> = async (app, { ctx }) => {
  const { storage } = ctx;

  app.get<{ Params: JidParams; Querystring: ExportQuery }>('/v1/users/:jid/export', { schema: routeSchemas.exportUser, config: { guard: { account: 'export' } } }, async (request, reply) => {
    const account = guardAccount(ctx, request, request.params.jid, 'export');
    const kinds = kindsParam(request.query);
    auditNote(request, { account: account.jid, kinds: [...kinds] });
    return sendAccountExport(ctx, request, reply, account, kinds);
  });

  app.put<{ Params: JidParams; Querystring: ImportQuery }>('/v1/users/:jid/import', { schema: routeSchemas.importUser, config: { guard: { account: 'import' }, upload: true } }, async (request, reply) => {
    const account = guardAccount(ctx, request, request.params.jid, 'import');
    const kinds = kindsParam(request.query);
    const mode = importMode(request.query.mode, 'replace');
    const dryRun = booleanParam('dryRun', request.query.dryRun);
    const createAccount = booleanParam('createAccount', request.query.createAccount);
    const keepSubscriptions = booleanParam('keepSubscriptions', request.query.keepSubscriptions);
    auditNote(request, { account: account.jid, kinds: [...kinds], mode, dryRun });
    const report = await importUploadInto(ctx, request, account, { mode, dryRun, include: kinds, createAccount, keepSubscriptions });
    return reply.code(200).send(report);
  });

  app.post<{ Params: JidParams; Body: TokenBody | null }>('/v1/users/:jid/tokens', { schema: routeSchemas.mintUserToken, config: { guard: { account: 'admin' } } }, async (request, reply) => {
    const { jid, ref } = guardAccount(ctx, request, request.params.jid, 'admin');
    auditNote(request, { account: jid });
    const body = request.body ?? {};
    const scopes = body.scopes ?? ['export'];
    const ttlSeconds = body.ttlSeconds ?? 900;
    if (!(await storage.userExists(ref))) throw problems.notFound(`no account ${jid}`);
    const { token, claims } = ctx.auth.mintUserToken({ jid, scopes, ttlSeconds });
    auditNote(request, { target: claims.jti });
    return reply
      .code(201)
      .header('cache-control', 'no-store')
      .send({ token, jid, jti: claims.jti, scopes: claims.scp, expiresAt: new Date(claims.exp * 1000).toISOString() });
  });
};

