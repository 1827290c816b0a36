import type { FastifyPluginAsync } from 'fastify';
import type { StorageBackend } from '../../storage/backend.js';
import { withTimeout } from '../../timeout.js';

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
 * Unauthenticated on purpose (load balancers, container health checks): it says whether the
 * storage answers and the component is connected, and nothing about accounts.
 */
export const healthRoutes: FastifyPluginAsync<HealthOptions> = async (app, { storage, component }) => {
  app.get('/health', { config: { guard: 'public' } }, async (request, reply) => {
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
