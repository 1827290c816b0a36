/**
 * Endpoints about the service itself: Prometheus metrics (for operator tokens on every host: the
 * figures are not split by host, so a host-scoped token would see others' traffic) and the
 * OpenAPI contract (public: it describes the API, not any data).
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyPluginAsync } from 'fastify';
import type { ServiceContext } from '../../core/context.js';
import { principalOf } from '../guard.js';
import { problems } from '../problem.js';
import { routeSchemas } from '../schemas/routes.js';

/** openapi.yaml sits at the package root, next to both src/ and dist/. */
const OPENAPI_PATH = fileURLToPath(new URL('../../../openapi.yaml', import.meta.url));

export const serviceRoutes: FastifyPluginAsync<{ ctx: ServiceContext }> = async (app, { ctx }) => {
  app.get('/metrics', { schema: routeSchemas.getMetrics, config: { guard: 'operator' } }, async (request, reply) => {
    const principal = principalOf(ctx, request);
    if (principal.kind !== 'operator' || !principal.hosts.includes('*')) {
      throw problems.forbidden('metrics cover every host: they need an operator token for all hosts (*)');
    }
    return reply.type(ctx.metrics.contentType).send(await ctx.metrics.render());
  });

  app.get('/openapi.yaml', { schema: routeSchemas.getOpenapi, config: { guard: 'public' } }, async (_request, reply) => {
    return reply.type('application/yaml; charset=utf-8').send(await readFile(OPENAPI_PATH, 'utf8'));
  });
};
