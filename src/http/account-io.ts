/**
 * The two account transfers every per-account route answers with, whatever its path and
 * parameters: the streamed export of an account, and an uploaded document imported into one
 * through the core's pipeline (src/core/import-pipeline.ts). The routes authenticate, parse their
 * parameters and note the audit details; these do the rest.
 */
import { Readable } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../core/auth/authenticator.js';
import type { ServiceContext } from '../core/context.js';
import { accountExportStream } from '../core/export-stream.js';
import { importAccount } from '../core/import-pipeline.js';
import type { DataKind } from '../records/model.js';
import type { UserRef } from '../storage/backend.js';
import type { UserImportOptions, UserImportReport } from '../transfer/account-transfer.js';
import type { InvalidCharsReplaced } from '../xep0227/writer.js';
import { auditNote } from './audit-trail.js';
import { attachmentDisposition } from './download.js';
import { importThroughSpool, reportCounts } from './import-spool.js';
import { problems } from './problem.js';
import { importBody } from './upload.js';

/** True when the client takes a gzip-encoded answer. */
export function acceptsGzip(headers: { readonly 'accept-encoding'?: string | string[] | undefined }): boolean {
  return /\bgzip\b/.test(String(headers['accept-encoding'] ?? ''));
}

/**
 * Answers with the account's document, streamed (gzip when the client takes it), under a shared
 * lease; a client that goes away stops the storage read. A HEAD reads nothing.
 */
export async function sendAccountExport(
  ctx: ServiceContext,
  request: FastifyRequest,
  reply: FastifyReply,
  account: { readonly jid: string; readonly ref: UserRef },
  kinds: ReadonlySet<DataKind>,
): Promise<FastifyReply> {
  const { storage, metrics } = ctx;
  const { jid, ref } = account;
  if (!(await storage.userExists(ref))) throw problems.notFound(`no account ${jid}`);
  reply
    .header('content-type', 'application/xml; charset=utf-8')
    .header('content-disposition', attachmentDisposition(`${jid}.xml`))
    .header('vary', 'accept-encoding');
  // The streamed export has no length or validator to give.
  if (request.method === 'HEAD') return reply.send(Readable.from([]));
  const lease = await ctx.locks.tryAcquire(jid, 'shared');
  if (!lease) throw problems.conflict(`an import into ${jid} is running`);

  const abort = new AbortController();
  const timed = metrics.time('export');
  reply.raw.on('finish', () => timed('ok'));
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) abort.abort();
    timed(reply.raw.writableFinished ? 'ok' : 'error');
    lease.release();
  });

  const onInvalidChars = (r: InvalidCharsReplaced): void =>
    request.log.warn({ jid, kind: r.kind, detail: r.detail, codePoint: r.codePoint }, 'stored text XML 1.0 cannot carry was exported with U+FFFD in its place');
  const gzip = acceptsGzip(request.headers);
  if (gzip) reply.header('content-encoding', 'gzip');
  return reply.send(accountExportStream(ctx, ref, kinds, { gzip, onInvalidChars, signal: abort.signal }));
}

/**
 * Imports the request's body (XML, gzip-encoded XML or multipart) into the account, all or
 * nothing: the body is read only once the account's lease is held, spooled, then applied. The
 * report's counts go to the audit line.
 */
export async function importUploadInto(
  ctx: ServiceContext,
  request: FastifyRequest,
  account: { readonly jid: string; readonly ref: UserRef; readonly principal: Principal },
  options: UserImportOptions,
): Promise<UserImportReport> {
  const { jid, ref, principal } = account;
  let source: Readable | undefined;
  try {
    const report = await importAccount(ctx, { jid, source: 'upload', options, principal }, {
      // The lease first: it may wait on another process's storage, and the body must not flow
      // into its size and deadline checks while nobody listens for their errors.
      accept: async () => {
        source = await importBody(request, ctx.config.limits);
      },
      apply: (run) => importThroughSpool(ctx, run, request, source as Readable, 'user', ref, options),
    });
    auditNote(request, { counts: reportCounts(report) });
    return report;
  } finally {
    source?.destroy();
  }
}
