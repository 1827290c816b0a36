/**
 * The Fastify application: logging, error mapping and routes. Building the app does no I/O, so
 * tests can inject requests without a listening socket.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import multipart from '@fastify/multipart';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { AuditLog } from '../audit.js';
import { STATE_FILE, TokenStore } from '../auth/token-store.js';
import type { Config } from '../config.js';
import type { StorageBackend } from '../storage/backend.js';
import { auditNote, registerAuditTrail } from './audit-trail.js';
import { createContext, type ServiceContext } from './context.js';
import { Problem, problems, sendProblem } from './problem.js';
import { healthRoutes, type ComponentStatus } from './routes/health.js';
import { hostRoutes } from './routes/hosts.js';
import { movedRoutes } from './routes/moved.js';
import { serviceRoutes } from './routes/service.js';
import { tokenRoutes } from './routes/tokens.js';
import { toProblem, userRoutes, XML_TYPES } from './routes/users.js';

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
}

/** Paths of anything a log line could carry a secret in. */
const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.query.token',
  'res.headers["set-cookie"]',
  '*.password',
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

export function buildApp(deps: AppDependencies): FastifyInstance & { readonly ctx: ServiceContext } {
  const { config } = deps;
  const ownStore = deps.tokenStore === undefined;
  const tokens = deps.tokenStore ?? TokenStore.open(join(config.dataDir, STATE_FILE), config.files.mode);
  const audit = deps.audit ?? AuditLog.open(config);
  const ctx = createContext(config, deps.storage, { tokens, audit });
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
    requestTimeout: config.limits.requestTimeoutMs,
    bodyLimit: config.limits.maxUploadBytes,
    // Idle keep-alive sockets are closed on shutdown; requests in flight (streams) finish.
    forceCloseConnections: 'idle',
    return503OnClosing: true,
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  app.addHook('onResponse', async (request, reply) => {
    ctx.metrics.inc('xporta_http_requests_total', {
      method: request.method,
      route: request.routeOptions.url ?? 'unmatched',
      status: String(reply.statusCode),
    });
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

  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problems.notFound(`No route for ${request.method} ${request.url.split('?')[0] ?? ''}`)),
  );

  app.register(multipart, { limits: { files: 1, fileSize: config.limits.maxUploadBytes, fields: 4 } });
  // XML bodies stay streams: an import must never be buffered whole.
  app.addContentTypeParser(XML_TYPES, (_request, payload, done) => done(null, payload));

  app.register(healthRoutes, { storage: deps.storage, ...(deps.component ? { component: deps.component } : {}) });
  app.register(serviceRoutes, { ctx });
  app.register(userRoutes, { ctx });
  app.register(hostRoutes, { ctx });
  app.register(movedRoutes, { ctx });
  app.register(tokenRoutes, { ctx });

  app.addHook('onClose', async () => {
    try {
      await deps.storage.close();
    } finally {
      audit.flush();
      if (ownStore) tokens.close();
    }
  });

  return Object.assign(app, { ctx });
}
