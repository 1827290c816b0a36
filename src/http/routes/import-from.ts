/**
 * `POST /v1/users/{jid}/import-from`: pulls a XEP-0227 export from another service (another
 * xporta's export link, say) and imports it into the account, through the core's pipeline.
 */
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { FastifyPluginAsync } from 'fastify';
import type { ServiceContext } from '../../core/context.js';
import { importAccount } from '../../core/import-pipeline.js';
import { importMode } from '../../core/import-options.js';
import { OutgoingError, outgoingClient, withErrorsMapped, type OutgoingClient } from '../../lib/net/outgoing.js';
import { auditNote } from '../audit-trail.js';
import { abortWhenClientLeaves } from '../client-abort.js';
import { guardAccount } from '../guard.js';
import { importThroughSpool, reportCounts } from '../import-spool.js';
import { httpUrlParam, kindsParam } from '../params.js';
import { Problem } from '../problem.js';
import { byteLimit } from '../upload.js';
import { routeSchemas } from '../schemas/routes.js';

interface JidParams {
  jid: string;
}

/** As the route schema admits it: `url` present and a URI, `token` a string when given. */
interface ImportFromBody {
  url: string;
  token?: string;
  mode?: unknown;
  dryRun?: unknown;
  createAccount?: unknown;
  include?: unknown;
  exclude?: unknown;
}

export const importFromRoutes: FastifyPluginAsync<{ ctx: ServiceContext }> = async (app, { ctx }) => {
  const { config } = ctx;

  app.post<{ Params: JidParams; Body: ImportFromBody }>('/v1/users/:jid/import-from', { schema: routeSchemas.importUserFrom, config: { guard: { account: 'import' } } }, async (request, reply) => {
    const { ref, jid, principal } = guardAccount(ctx, request, request.params.jid, 'import');
    const body = request.body;
    const url = httpUrlParam('url', body.url);
    const token = body.token;
    const kinds = kindsParam(body);
    const mode = importMode(body.mode, 'replace');
    const dryRun = body.dryRun === true;
    const createAccount = body.createAccount === true;
    auditNote(request, { account: jid, kinds: [...kinds], mode, dryRun });

    const signal = abortWhenClientLeaves(reply);
    const options = { mode, dryRun, include: kinds, createAccount, signal };
    let source: Readable | undefined;
    try {
      const report = await importAccount(ctx, { jid, source: 'url', options, principal }, {
        apply: async (run) => {
          source = await fetchExport(outgoingClient(config), url, token, config.limits.maxUploadBytes, signal);
          // As for uploads: the transfer from the other service holds no database lock, and a retry reads the copy.
          return importThroughSpool(ctx, run, request, source, 'pull', ref, options);
        },
      });
      auditNote(request, { counts: reportCounts(report) });
      return reply.send({ ...report, source: url.origin + url.pathname });
    } catch (err) {
      if (err instanceof OutgoingError) request.log.debug({ upstream: err.internal }, 'import-from: the source failed');
      throw err;
    } finally {
      source?.destroy();
    }
  });
};

/**
 * Pulls a XEP-0227 export from another service as a stream, through the outgoing-request policy
 * (src/lib/net/outgoing.ts: address checks at connect time, no redirects, idle and total deadlines).
 * The stream fails with a 413 problem past `limit` bytes (decompressed too) and with an
 * {@link OutgoingError} for anything the source did wrong.
 */
async function fetchExport(client: OutgoingClient, url: URL, token: string | undefined, limit: number, signal: AbortSignal): Promise<Readable> {
  const response = await client.request(url, {
    method: 'GET',
    headers: { accept: 'application/xml', 'accept-encoding': 'gzip', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    signal,
  });
  const limited = limitedBody(response.body, String(response.headers['content-encoding'] ?? '') === 'gzip', limit, 'the source document');
  // Corrupt gzip and the like are the source's fault: summarised like a failed connection.
  return withErrorsMapped(limited, (err) =>
    err instanceof Problem || err instanceof OutgoingError ? err : new OutgoingError('failed', `${url.origin}${url.pathname}: ${(err as Error).message}`),
  );
}

/**
 * A byte stream with the size limit applied to the bytes received and, when gzip-encoded, to the
 * decompressed bytes too, so a gzip bomb stops at the limit. Failures surface on the stream.
 */
function limitedBody(raw: Readable, gzip: boolean, limit: number, what: string): Readable {
  const out = new PassThrough();
  const failed = (err: unknown): void => {
    out.destroy(err instanceof Error ? err : new Error(String(err)));
  };
  if (gzip) pipeline(raw, byteLimit(limit, what), createGunzip(), byteLimit(limit, `${what} (decompressed)`), out).catch(failed);
  else pipeline(raw, byteLimit(limit, what), out).catch(failed);
  return out;
}
