/**
 * The edge of the HTTP service: who may send a body, how much of it and how slowly.
 *
 * - Every route names its guard in `config.guard`; the guard runs in `onRequest`, before a byte of
 *   the body is read, so an unauthenticated or wrongly-scoped request is answered 401/403 at once.
 *   A route that names none needs a valid token (fail closed). CORS preflights are the one
 *   exception: public, answered or refused by origin (src/http/cors.ts).
 * - A request for no route is answered 404 in `onRequest` too: its body is never parsed.
 * - Only routes marked `config.upload` take XML or multipart bodies (streamed, under the upload
 *   deadlines); every other body is JSON or text under `limits.maxJsonBodyBytes` and
 *   `limits.bodyTimeoutMs`.
 * - An answer sent while the request's body is still unread closes the connection, so the rest
 *   of the body is never read.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Scope } from '../config/config.js';
import { isPreflight } from './cors.js';
import type { ServiceContext } from '../core/context.js';
import { guardAccount, guardHost, guardTokenAccount, principalOf } from './guard.js';
import { pathOf, problems } from './problem.js';
import { announcesBody, mediaTypeOf, MULTIPART_TYPE, withDeadlines, XML_TYPES } from './upload.js';

/** Who may call a route. */
export type RouteGuard =
  /** Anyone (health checks). */
  | 'public'
  /** Any valid token. */
  | 'authenticated'
  /** An operator token. */
  | 'operator'
  /** A token with this scope for the account named by the `:jid` parameter. */
  | { readonly account: Scope }
  /**
   * A user token with this scope, for its own account (the path names none); an operator token
   * is refused and told `operatorPath`, where it names the account.
   */
  | { readonly tokenAccount: Scope; readonly operatorPath: string }
  /** An operator token with this scope for the host named by the `:host` parameter. */
  | { readonly host: 'export' | 'import' };

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Checked before the body is read; absent means 'authenticated'. */
    guard?: RouteGuard;
    /** The route takes a streamed XML or multipart upload. */
    upload?: boolean;
  }
}

/**
 * A full JID percent-encoded: three parts of at most 1023 bytes (RFC 7622) plus `@` and `/`, each
 * byte at most three characters. Longer path parameters are answered 414.
 */
export const MAX_PARAM_LENGTH = 3 * (3 * 1023 + 2);

function runGuard(ctx: ServiceContext, request: FastifyRequest, guard: RouteGuard): void {
  const params = request.params as Record<string, string | undefined>;
  if (guard === 'public') return;
  if (guard === 'authenticated') {
    principalOf(ctx, request);
    return;
  }
  if (guard === 'operator') {
    if (principalOf(ctx, request).kind !== 'operator') throw problems.forbidden('this needs an operator token');
    return;
  }
  if ('account' in guard) {
    guardAccount(ctx, request, params.jid ?? '', guard.account);
    return;
  }
  if ('tokenAccount' in guard) {
    guardTokenAccount(ctx, request, guard.tokenAccount, guard.operatorPath);
    return;
  }
  guardHost(ctx, request, params.host ?? '', guard.host);
}

/** Registers the edge hooks on the root instance (before any route). */
export function registerEdge(app: FastifyInstance, ctx: ServiceContext): void {
  const { limits } = ctx.config;

  const corsOrigins = new Set(ctx.config.cors.origins);
  app.addHook('onRequest', async (request) => {
    // A CORS preflight carries no token: one from a configured origin goes on to @fastify/cors
    // (src/http/cors.ts), which answers it; any other is refused here.
    if (isPreflight(request)) {
      if (corsOrigins.has(String(request.headers.origin))) return;
      throw problems.forbidden(`origin ${String(request.headers.origin)} may not call this API (cors.origins)`);
    }
    if (request.is404) throw problems.notFound(`No route for ${request.method} ${pathOf(request.url)}`);
    runGuard(ctx, request, request.routeOptions.config.guard ?? 'authenticated');
  });

  // A client that asks before sending its body (`Expect: 100-continue`, as curl does for large
  // uploads) is told to go ahead only once the guard has passed (in preParsing below); a caller
  // turned away gets its 401/403/404 without having sent a byte of the body.
  app.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => app.server.emit('request', req, res));

  app.addHook('preParsing', async (request, reply, payload) => {
    // Fastify never parses a GET or HEAD body; it is discarded when the connection closes.
    if (!announcesBody(request) || request.method === 'GET' || request.method === 'HEAD') return payload;
    const type = mediaTypeOf(request);
    const uploadType = type === MULTIPART_TYPE || XML_TYPES.includes(type);
    const upload = request.routeOptions.config.upload === true;
    if (upload && !uploadType) {
      throw problems.unsupportedMediaType(`send application/xml (optionally Content-Encoding: gzip) or multipart/form-data, not ${type || 'no type'}`);
    }
    if (!upload && uploadType) throw problems.unsupportedMediaType(`${request.method} ${request.routeOptions.url ?? ''} takes a JSON body, not ${type}`);
    if (/\b100-continue\b/i.test(String(request.headers.expect ?? '')) && !reply.raw.headersSent) reply.raw.writeContinue();
    // An upload is streamed by its route, under the upload deadlines (src/http/upload.ts).
    if (upload) return payload;
    return withDeadlines(payload, { idleMs: limits.bodyTimeoutMs, totalMs: limits.bodyTimeoutMs }, 'the request body');
  });

  app.addHook('onSend', async (request, reply) => {
    // The rest of an unread body is not worth reading: the socket closes once the answer is out.
    if (request.raw.complete === false && announcesBody(request)) {
      reply.header('connection', 'close');
      lingerOnClose(request.raw.socket, request.raw);
    }
  });
}

/** How long a closing connection still takes (and discards) bytes after its answer went out. */
export const LINGER_MS = 2000;

/**
 * Node's HTTP server ends an answer marked `Connection: close` with `socket.destroySoon()`,
 * which closes the socket as soon as the answer is written. A client still sending its body then
 * gets a reset, and the kernel may drop the answer it had not read yet. Instead, as nginx's
 * lingering close does: send FIN, discard whatever still arrives (nothing is buffered), and close
 * after {@link LINGER_MS} or when the client does.
 */
export function lingerOnClose(socket: Socket, request?: Readable): void {
  const closing = socket as Socket & { destroySoon?: () => void };
  if (typeof closing.destroySoon !== 'function') return;
  closing.destroySoon = () => {
    // A body stream left paused by its reader would stall the socket; let it flow away instead.
    if (request !== undefined && request.listenerCount('data') === 0) request.resume();
    lingeringClose(socket);
  };
}

/** Half-closes `socket`, discards what still arrives, and destroys it after {@link LINGER_MS}. */
export function lingeringClose(socket: Socket, last?: string): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.once('end', () => socket.destroy());
  socket.on('error', () => socket.destroy());
  if (last !== undefined) socket.end(last);
  else socket.end();
  socket.resume();
}
