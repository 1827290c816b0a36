/**
 * Per-account endpoints: streamed export, atomic import, user tokens. Imports go through the
 * core's pipeline (src/core/import-pipeline.ts); errors are answered by the problem map.
 */
import { Readable } from 'node:stream';
import type { FastifyPluginAsync } from 'fastify';
import type { Scope } from '../../config/config.js';
import type { ServiceContext } from '../../core/context.js';
import { countRecords } from '../../core/counting.js';
import { documentStream } from '../../core/export-stream.js';
import { importAccount } from '../../core/import-pipeline.js';
import { importMode } from '../../core/import-options.js';
import { exportUserDocument } from '../../transfer/account-transfer.js';
import type { InvalidCharsReplaced } from '../../xep0227/writer.js';
import { auditNote } from '../audit-trail.js';
import { attachmentDisposition } from '../download.js';
import { guardAccount } from '../guard.js';
import { importThroughSpool, reportCounts } from '../import-spool.js';
import { booleanParam, kindsParam } from '../params.js';
import { problems } from '../problem.js';
import { importBody } from '../upload.js';
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

/** True when the client takes a gzip-encoded answer. */
export function acceptsGzip(headers: { readonly 'accept-encoding'?: string | string[] | undefined }): boolean {
  return /\bgzip\b/.test(String(headers['accept-encoding'] ?? ''));
}

export const userRoutes: FastifyPluginAsync<{ ctx: ServiceContext }> = async (app, { ctx }) => {
  const { config, storage, metrics } = ctx;

  app.get<{ Params: JidParams; Querystring: ExportQuery }>('/v1/users/:jid/export', { schema: routeSchemas.exportUser, config: { guard: { account: 'export' } } }, async (request, reply) => {
    const { ref, jid } = guardAccount(ctx, request, request.params.jid, 'export');
    const kinds = kindsParam(request.query);
    auditNote(request, { account: jid, kinds: [...kinds] });
    if (!(await storage.userExists(ref))) throw problems.notFound(`no account ${jid}`);
    reply
      .header('content-type', 'application/xml; charset=utf-8')
      .header('content-disposition', attachmentDisposition(`${jid}.xml`))
      .header('vary', 'accept-encoding');
    // The streamed export has no length or validator to give; a HEAD reads nothing.
    if (request.method === 'HEAD') return reply.send(Readable.from([]));
    const lease = await ctx.locks.tryAcquire(jid, 'shared');
    if (!lease) throw problems.conflict(`an import into ${jid} is running`);

    const abort = new AbortController();
    const timed = metrics.time('export');
    // A client that goes away stops the storage read, not just the socket writes.
    reply.raw.on('finish', () => timed('ok'));
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) abort.abort();
      timed(reply.raw.writableFinished ? 'ok' : 'error');
      lease.release();
    });

    const counted = countRecords(exportUserDocument(storage, ref, kinds, abort.signal), metrics, 'export');
    const onInvalidChars = (r: InvalidCharsReplaced): void =>
      request.log.warn({ jid, kind: r.kind, detail: r.detail, codePoint: r.codePoint }, 'stored text XML 1.0 cannot carry was exported with U+FFFD in its place');
    const gzip = acceptsGzip(request.headers);
    if (gzip) reply.header('content-encoding', 'gzip');
    return reply.send(documentStream(counted, metrics, { gzip, onInvalidChars }));
  });

  app.put<{ Params: JidParams; Querystring: ImportQuery }>('/v1/users/:jid/import', { schema: routeSchemas.importUser, config: { guard: { account: 'import' }, upload: true } }, async (request, reply) => {
    const { ref, jid, principal } = guardAccount(ctx, request, request.params.jid, 'import');
    const kinds = kindsParam(request.query);
    const mode = importMode(request.query.mode, 'replace');
    const dryRun = booleanParam('dryRun', request.query.dryRun);
    const createAccount = booleanParam('createAccount', request.query.createAccount);
    const keepSubscriptions = booleanParam('keepSubscriptions', request.query.keepSubscriptions);
    auditNote(request, { account: jid, kinds: [...kinds], mode, dryRun });

    const options = { mode, dryRun, include: kinds, createAccount, keepSubscriptions };
    let source: Readable | undefined;
    try {
      const report = await importAccount(ctx, { jid, source: 'upload', options, principal }, {
        // The lease first: it may wait on another process's storage, and the body must not flow
        // into its size and deadline checks while nobody listens for their errors.
        accept: async () => {
          source = await importBody(request, config.limits);
        },
        apply: (run) => importThroughSpool(ctx, run, request, source as Readable, 'user', ref, options),
      });
      auditNote(request, { counts: reportCounts(report) });
      return reply.code(200).send(report);
    } finally {
      source?.destroy();
    }
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

