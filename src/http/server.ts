/**
 * The Fastify application: logging, error mapping and routes. Building the app does no I/O, so
 * tests can inject requests without a listening socket.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import multipart from '@fastify/multipart';
import type { Socket } from 'node:net';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { AuditLog } from '../core/audit.js';
import { STATE_FILE, TokenStore } from '../core/auth/token-store.js';
import type { Config } from '../config/config.js';
import type { StorageBackend } from '../storage/backend.js';
import { auditNote, registerAuditTrail } from './audit-trail.js';
import { registerCors } from './cors.js';
import { createContext, type ServiceContext } from '../core/context.js';
import type { ExportWorkers } from '../core/export-workers.js';
import { lingeringClose, lingerOnClose, MAX_PARAM_LENGTH, registerEdge } from './edge.js';
import { pathOf, Problem, PROBLEM_CONTENT_TYPE, problems, sendProblem } from './problem.js';
import { healthRoutes, type ComponentStatus } from './routes/health.js';
import { exportRoutes } from './routes/exports.js';
import { hostRoutes } from './routes/hosts.js';
import { movedRoutes } from './routes/moved.js';
import { serviceRoutes } from './routes/service.js';
import { tokenRoutes } from './routes/tokens.js';
import { JOBS_FILE, JobStore } from '../core/job-store.js';
import { userRoutes } from './routes/users.js';
import { importFromRoutes } from './routes/import-from.js';
import { toProblem } from './problem-map.js';
import { importFromXmppRoutes } from './routes/import-from-xmpp.js';
import { transferRoutes } from './routes/transfers.js';
import { xep227CompatRoutes } from './routes/xep227-compat.js';
import { announcesBody, XML_TYPES } from './upload.js';
import { formatSchemaErrors, VALIDATOR_OPTIONS } from './schemas/validation.js';

export interface AppDependencies {
  readonly config: Config;
  readonly storage: StorageBackend;
  /** Reports whether the XMPP component is connected; absent when it is disabled. */
  readonly component?: ComponentStatus;
  /** Overrides the logger (tests pass `false` or a stream). */
  readonly logger?: FastifyServerOptions['logger'];
  /** Where the service's own logger writes (its redaction kept); standard output when absent. */
  readonly logStream?: NodeJS.WritableStream;
  /** Overrides the audit log the configuration names (tests pass one on a stream). */
  readonly audit?: AuditLog;
  /** Overrides the token store under dataDir; the app then leaves closing it to the caller. */
  readonly tokenStore?: TokenStore;
  /** Where streamed exports are written (over `storage`'s own configuration); the app closes them. */
  readonly exportWorkers?: ExportWorkers;
}

/** Paths of anything a log line could carry a secret in. */
const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.query.token',
  'res.headers["set-cookie"]',
  '*.password',
  // A remote transfer's body carries two accounts' passwords one level down.
  '*.from.password',
  '*.to.password',
  '*.secret',
  '*.token',
];

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Fastify's request log line with `token=` masked in the URL: links handed to users carry their
 * token in the query, and `req.url` (unlike `req.query`) is not covered by REDACT_PATHS.
 */
export const REQUEST_SERIALIZER = {
  req: (req: { method: string; url: string; host?: string; ip?: string; socket?: { remotePort?: number } }) => ({
    method: req.method,
    url: req.url.replace(/([?&]token=)[^&#]*/g, '$1[redacted]'),
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  }),
};

/**
 * Answers a request Node could not parse or that missed a deadline before it reached Fastify
 * (headers too slow, too large, malformed): as problem+json, then the connection closes.
 */
function answerClientError(error: Error & { code?: string }, socket: Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  // An answer already under way cannot be followed by another one on the same connection.
  if ((socket as Socket & { _httpMessage?: { headersSent?: boolean } | null })._httpMessage?.headersSent === true) {
    socket.destroy();
    return;
  }
  const [status, title] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request timeout']
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request header fields too large']
        : [400, 'Bad request'];
  const code = status === 408 ? 'timeout' : status === 431 ? 'headers-too-large' : 'bad-request';
  const body = JSON.stringify(new Problem(status, code, title, status === 400 ? 'the request is not valid HTTP/1.1' : title).body());
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  lingeringClose(socket, `HTTP/1.1 ${status} ${title}\r\nContent-Type: ${PROBLEM_CONTENT_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

export function buildApp(deps: AppDependencies): FastifyInstance & { readonly ctx: ServiceContext } {
  const { config } = deps;
  const ownStore = deps.tokenStore === undefined;
  const tokens = deps.tokenStore ?? TokenStore.open(join(config.dataDir, STATE_FILE), config.files.mode);
  const audit = deps.audit ?? AuditLog.open(config);
  // Jobs interrupted by an earlier process (a crash, a kill) read `interrupted` from here on.
  const jobs = JobStore.open(join(config.dataDir, JOBS_FILE), config.files.mode);
  jobs.markInterrupted();
  const ctx = createContext(config, deps.storage, { tokens, audit, jobs, ...(deps.exportWorkers ? { exportWorkers: deps.exportWorkers } : {}) });
  const requestBackstopMs = config.limits.requestTimeoutMs + config.limits.headersTimeoutMs + 1000;
  const app = Fastify({
    logger: deps.logger ?? {
      level: config.logLevel,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: REQUEST_SERIALIZER,
      ...(deps.logStream ? { stream: deps.logStream } : {}),
    },
    // A caller's request id is kept only when it is harmless to log and echo.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    // request.ip is the X-Forwarded-For client only when the socket's peer is a listed proxy.
    trustProxy: config.trustedProxies.length > 0 ? [...config.trustedProxies] : false,
    // Uploads stream under their own limits (src/http/upload.ts); every other body is small.
    bodyLimit: config.limits.maxJsonBodyBytes,
    // Node's own request deadline is a backstop only: the upload deadline (src/http/upload.ts)
    // counts the same limit from when the route starts reading, and answers 408 itself.
    requestTimeout: requestBackstopMs,
    keepAliveTimeout: config.limits.keepAliveTimeoutMs,
    http: {
      headersTimeout: config.limits.headersTimeoutMs,
      requestTimeout: requestBackstopMs,
      // How often Node looks for requests past those deadlines.
      connectionsCheckingInterval: Math.min(1000, config.limits.headersTimeoutMs),
    },
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Route schemas (src/http/schemas/): a request that breaks one is a 400 problem.
    ajv: VALIDATOR_OPTIONS,
    schemaErrorFormatter: formatSchemaErrors,
    frameworkErrors: (error, request, reply) => {
      if (announcesBody(request)) {
        reply.header('connection', 'close');
        lingerOnClose(request.raw.socket, request.raw);
      }
      if (error.code === 'FST_ERR_MAX_PARAM_LENGTH') {
        return sendProblem(reply, problems.uriTooLong(`a path segment is longer than ${MAX_PARAM_LENGTH} characters (a full JID, percent-encoded, fits)`));
      }
      if (error.code === 'FST_ERR_BAD_URL') return sendProblem(reply, problems.badRequest('the request path is not validly percent-encoded'));
      request.log.error({ err: error }, 'framework error');
      return sendProblem(reply, problems.internal());
    },
    clientErrorHandler: answerClientError,
    // Idle keep-alive sockets are closed on shutdown; requests in flight (streams) finish.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  registerEdge(app, ctx);
  registerCors(app, config.cors.origins);

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    ctx.metrics.inc('xporta_http_requests_total', { method: request.method, route, status: String(reply.statusCode) });
    ctx.metrics.observe('xporta_http_request_duration_seconds', { method: request.method, route }, reply.elapsedTime / 1000);
  });

  registerAuditTrail(app, ctx);

  app.setErrorHandler((thrown: FastifyError | Problem | Error, request, reply) => {
    const error = toProblem(thrown) as FastifyError | Problem | Error;
    auditNote(request, { reason: error instanceof Problem ? `${error.code}: ${error.detail ?? error.title}` : (error as FastifyError).code ?? 'internal' });
    if (error instanceof Problem) {
      if (error.status >= 500) request.log.error({ err: error }, 'request failed');
      ctx.metrics.inc('xporta_errors_total', { type: error.code });
      if (reply.sent || reply.raw.headersSent) {
        // A stream already started: the only honest signal left is to cut the connection.
        reply.raw.destroy(error);
        return reply;
      }
      return sendProblem(reply, error);
    }
    const fastifyError = error as FastifyError;
    if (fastifyError.validation) return sendProblem(reply, problems.badRequest(fastifyError.message));
    if (fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendProblem(reply, problems.tooLarge(fastifyError.message));
    if (fastifyError.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return sendProblem(reply, problems.unsupportedMediaType(fastifyError.message));
    }
    if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
      return sendProblem(reply, new Problem(fastifyError.statusCode, 'bad-request', 'Bad request', fastifyError.message));
    }
    request.log.error({ err: error }, 'unhandled error');
    ctx.metrics.inc('xporta_errors_total', { type: 'internal' });
    if (reply.raw.headersSent) {
      reply.raw.destroy(error);
      return reply;
    }
    return sendProblem(reply, problems.internal());
  });

  // Normally answered by the edge's onRequest hook already, before any body is read.
  app.setNotFoundHandler((request, reply) => sendProblem(reply, problems.notFound(`No route for ${request.method} ${pathOf(request.url)}`)));

  app.register(multipart, { limits: { files: 1, fileSize: config.limits.maxUploadBytes, fields: 4 } });
  // XML bodies stay streams: an import must never be buffered whole.
  app.addContentTypeParser(XML_TYPES, (_request, payload, done) => done(null, payload));

  app.register(healthRoutes, { storage: deps.storage, ...(deps.component ? { component: deps.component } : {}) });
  app.register(serviceRoutes, { ctx });
  app.register(userRoutes, { ctx });
  app.register(importFromRoutes, { ctx });
  app.register(exportRoutes, { ctx });
  app.register(importFromXmppRoutes, { ctx });
  app.register(hostRoutes, { ctx });
  app.register(movedRoutes, { ctx });
  app.register(transferRoutes, { ctx });
  app.register(tokenRoutes, { ctx });
  app.register(xep227CompatRoutes, { ctx });

  // Expired export files go at start and then at least every minute (a request for one removes it at once).
  ctx.exportFiles.sweep();
  const sweeper = setInterval(() => ctx.exportFiles.sweep(), Math.min(60, config.exports.ttlSeconds) * 1000);
  sweeper.unref();

  app.addHook('onClose', async () => {
    clearInterval(sweeper);
    try {
      await deps.exportWorkers?.close();
      await deps.storage.close();
    } finally {
      audit.flush();
      if (ownStore) tokens.close();
      jobs.close();
    }
  });

  return Object.assign(app, { ctx });
}
