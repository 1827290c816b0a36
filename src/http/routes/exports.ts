/**
 * Exports as downloadable files: `POST /v1/users/{jid}/exports` writes the account's document
 * once to a private file, and `/v1/exports/{id}` serves it (ranges, validators, a cheap HEAD)
 * to whoever may export that account, until it expires or is deleted.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { authorize } from '../../core/auth/authenticator.js';
import type { ExportFile } from '../../core/export-files.js';
import { exportUserDocument, refOf } from '../../transfer/account-transfer.js';
import { writeDocument } from '../../xep0227/writer.js';
import { auditNote } from '../audit-trail.js';
import { abortWhenClientLeaves } from '../client-abort.js';
import type { ServiceContext } from '../../core/context.js';
import { countRecords, countStreamedBytes } from '../../core/counting.js';
import { guardAccount, principalOf } from '../guard.js';
import { kindsParam } from '../params.js';
import { sendDownload } from '../download.js';
import { problems } from '../problem.js';
import { routeSchemas } from '../schemas/routes.js';

interface ExportQuery {
  include?: string;
  exclude?: string;
}

/** The export `:id` names, when the caller may export its account; 404 otherwise, so ids of others' exports are not confirmed. */
function exportFor(ctx: ServiceContext, request: FastifyRequest<{ Params: { id: string } }>): ExportFile {
  const principal = principalOf(ctx, request);
  const file = ctx.exportFiles.get(request.params.id);
  const missing = problems.notFound('no such export (it may have expired)');
  if (!file) throw missing;
  try {
    authorize(principal, 'export', refOf(file.jid).host, file.jid);
  } catch {
    throw missing;
  }
  auditNote(request, { account: file.jid, target: file.id });
  return file;
}

function describe(ctx: ServiceContext, file: ExportFile): Record<string, unknown> {
  return { ...file, url: `${ctx.config.publicUrl.replace(/\/$/, '')}/v1/exports/${file.id}` };
}

export const exportRoutes: FastifyPluginAsync<{ ctx: ServiceContext }> = async (app, { ctx }) => {
  const { storage, metrics } = ctx;

  app.post<{ Params: { jid: string }; Querystring: ExportQuery }>(
    '/v1/users/:jid/exports',
    { schema: routeSchemas.createExportFile, config: { guard: { account: 'export' } } },
    async (request, reply) => {
      const { ref, jid } = guardAccount(ctx, request, request.params.jid, 'export');
      const kinds = kindsParam(request.query);
      auditNote(request, { account: jid, kinds: [...kinds] });
      if (!(await storage.userExists(ref))) throw problems.notFound(`no account ${jid}`);
      const lease = await ctx.locks.tryAcquire(jid, 'shared');
      if (!lease) throw problems.conflict(`an import into ${jid} is running`);
      const signal = abortWhenClientLeaves(reply);
      const timed = metrics.time('export_file');
      let file: ExportFile;
      try {
        const events = countRecords(exportUserDocument(storage, ref, kinds, signal), metrics, 'export');
        file = await ctx.exportFiles.create(jid, [...kinds], countStreamedBytes(writeDocument(events), metrics, 'export'));
        timed('ok');
      } catch (err) {
        timed('error');
        throw err;
      } finally {
        lease.release();
      }
      auditNote(request, { target: file.id });
      return reply.code(201).header('location', `/v1/exports/${file.id}`).header('cache-control', 'no-store').send(describe(ctx, file));
    },
  );

  app.get<{ Params: { id: string } }>('/v1/exports/:id', { schema: routeSchemas.downloadExportFile, config: { guard: 'authenticated' } }, async (request, reply) => {
    const file = exportFor(ctx, request);
    return sendDownload(request, reply, {
      path: ctx.exportFiles.documentPath(file.id),
      size: file.size,
      etag: file.etag,
      filename: `${file.jid}.xml`,
      contentType: 'application/xml; charset=utf-8',
    });
  });

  app.delete<{ Params: { id: string } }>('/v1/exports/:id', { schema: routeSchemas.deleteExportFile, config: { guard: 'authenticated' } }, async (request, reply) => {
    const file = exportFor(ctx, request);
    ctx.exportFiles.remove(file.id);
    return reply.code(204).send();
  });
};
