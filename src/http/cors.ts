/**
 * CORS for the browser origins in `cors.origins` (dashboards calling the API with a bearer
 * token; no cookies, so no credentials mode), through @fastify/cors.
 *
 * Preflights carry no token: the edge (src/http/edge.ts) lets an allowed origin's preflight
 * through unauthenticated and refuses any other with 403, and @fastify/cors answers the allowed
 * one 204 before any guard. An answer the edge gives before @fastify/cors ran (a 401, a 404)
 * still gets the allow-origin headers here, so the dashboard can read why it was refused.
 */
import cors from '@fastify/cors';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** Response headers a dashboard needs to read. */
export const EXPOSED_HEADERS = ['Content-Disposition', 'Content-Length', 'Content-Range', 'Accept-Ranges', 'ETag', 'Location', 'Retry-After', 'X-Request-Id'];
const ALLOWED_HEADERS = ['Authorization', 'Content-Type', 'Content-Encoding', 'Range', 'If-Range', 'If-None-Match', 'X-Request-Id'];
const METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'];

/** Whether `request` is a CORS preflight (RFC-free: the Fetch standard's definition). */
export function isPreflight(request: FastifyRequest): boolean {
  return request.method === 'OPTIONS' && typeof request.headers.origin === 'string' && request.headers['access-control-request-method'] !== undefined;
}

export function registerCors(app: FastifyInstance, origins: readonly string[]): void {
  if (origins.length === 0) return;
  const allowed = new Set(origins);
  app.register(cors, {
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin) ? origin : false),
    methods: METHODS,
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    credentials: false,
    maxAge: 600,
    hideOptionsRoute: true,
  });
  app.addHook('onSend', async (request, reply) => {
    const origin = request.headers.origin;
    if (origin === undefined || !allowed.has(origin) || reply.hasHeader('access-control-allow-origin')) return;
    reply.header('access-control-allow-origin', origin).header('access-control-expose-headers', EXPOSED_HEADERS.join(', ')).header('vary', 'Origin');
  });
}
