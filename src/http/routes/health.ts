import type { FastifyPluginAsync } from 'fastify';
import type { StorageBackend } from '../../storage/backend.js';
import { withTimeout } from '../../lib/timeout.js';
import { routeSchemas } from '../schemas/routes.js';

export interface ComponentStatus {
  readonly connected: () => boolean;
}

export interface HealthOptions {
  readonly storage: StorageBackend;
  readonly component?: ComponentStatus;
}

export interface HealthBody {
  readonly status: 'ok' | 'degraded';
  readonly storage: { readonly backend: string; readonly reachable: boolean; readonly error?: string };
  readonly component: { readonly enabled: boolean; readonly connected: boolean };
}

const STORAGE_PING_TIMEOUT_MS = 2000;

/**
 * `/livez`, `/readyz` and the older `/health` (kept for existing checks: storage and component
 * in one answer, 503 when the storage does not answer).
 *
 * Unauthenticated on purpose (load balancers, container health checks): it says whether the
 * storage answers and the component is connected, and nothing about accounts.
 */
export const healthRoutes: FastifyPluginAsync<HealthOptions> = async (app, { storage, component }) => {
  // Liveness: the process answers. Nothing it depends on is checked, so an orchestrator never
  // restarts a healthy process for a database outage. While the server closes, Fastify answers
  // every request (this one too) 503.
  app.get('/livez', { schema: routeSchemas.getLivez, config: { guard: 'public' } }, async (_request, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }));

  // Readiness: whether requests can be served now, i.e. the storage answers; 503 takes the
  // instance out of a load balancer's rotation without restarting it.
  app.get('/readyz', { schema: routeSchemas.getReadyz, config: { guard: 'public' } }, async (request, reply) => {
    try {
      await withTimeout(storage.ping(), STORAGE_PING_TIMEOUT_MS);
    } catch (err) {
      request.log.warn({ err }, 'storage ping failed');
      return reply.code(503).header('cache-control', 'no-store').send({ status: 'unavailable', storage: { backend: storage.name, reachable: false, error: err instanceof Error ? err.message : String(err) } });
    }
    return reply.header('cache-control', 'no-store').send({ status: 'ok', storage: { backend: storage.name, reachable: true } });
  });

  app.get('/health', { schema: routeSchemas.getHealth, config: { guard: 'public' } }, async (request, reply) => {
    let error: string | undefined;
    try {
      await withTimeout(storage.ping(), STORAGE_PING_TIMEOUT_MS);
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
      request.log.warn({ err }, 'storage ping failed');
    }
    const componentState = { enabled: component !== undefined, connected: component?.connected() ?? false };
    // The HTTP API works without the component, so only storage decides the status code.
    const body: HealthBody = {
      status: error === undefined && (!componentState.enabled || componentState.connected) ? 'ok' : 'degraded',
      storage: { backend: storage.name, reachable: error === undefined, ...(error !== undefined ? { error } : {}) },
      component: componentState,
    };
    return reply.code(error === undefined ? 200 : 503).send(body);
  });
};
