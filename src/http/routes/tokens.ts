/**
 * Token management: operator tokens in the token store (create, list, revoke, rotate) and the
 * user tokens minted for one account (list, revoke by jti). Operator tokens are managed only by
 * an operator token with the admin scope on every host (`*`): a token that may make tokens could
 * otherwise make one wider than itself. A user account's tokens are managed with the admin scope
 * on its host.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { parseOperatorTokenSpec, TokenSpecError } from '../../core/auth/token-spec.js';
import type { TokenStore } from '../../core/auth/token-store.js';
import { auditNote } from '../audit-trail.js';
import type { ServiceContext } from '../../core/context.js';
import { guardAccount, principalOf } from '../guard.js';
import { problems } from '../problem.js';
import { routeSchemas } from '../schemas/routes.js';

const CREATE_FIELDS = new Set(['name', 'scopes', 'hosts']);

/** Refuses a body with fields the schema does not have (additionalProperties: false). */
export function onlyFields(body: unknown, allowed: ReadonlySet<string>): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw problems.badRequest('the body must be a JSON object');
  for (const key of Object.keys(body)) {
    if (!allowed.has(key)) throw problems.badRequest(`unknown field ${JSON.stringify(key)} (allowed: ${[...allowed].join(', ')})`);
  }
  return body as Record<string, unknown>;
}

export const tokenRoutes: FastifyPluginAsync<{ ctx: ServiceContext }> = async (app, { ctx }) => {
  function storeFor(request: FastifyRequest): TokenStore {
    const principal = principalOf(ctx, request);
    if (principal.kind !== 'operator' || !principal.scopes.includes('admin') || !principal.hosts.includes('*')) {
      throw problems.forbidden('managing operator tokens needs an operator token with the admin scope on every host (*)');
    }
    if (!ctx.tokens) throw problems.unavailable('the token store is not available');
    return ctx.tokens;
  }

  app.post('/v1/tokens', { schema: routeSchemas.createOperatorToken, config: { guard: 'operator' } }, async (request, reply) => {
    const store = storeFor(request);
    const body = onlyFields(request.body, CREATE_FIELDS);
    let spec;
    try {
      spec = parseOperatorTokenSpec(body, Object.keys(ctx.config.hosts));
    } catch (err) {
      if (err instanceof TokenSpecError) throw problems.badRequest(err.message);
      throw err;
    }
    const { token, record } = store.createOperatorToken(spec);
    auditNote(request, { target: record.id });
    return reply.code(201).header('cache-control', 'no-store').send({ ...record, source: 'store', token });
  });

  app.get('/v1/tokens', { schema: routeSchemas.listOperatorTokens, config: { guard: 'operator' } }, async (request, reply) => {
    const store = storeFor(request);
    const fromConfig = ctx.auth.configTokens().map((t) => ({ ...t, source: 'config' as const }));
    const fromStore = store.listOperatorTokens().map((t) => ({ ...t, source: 'store' as const }));
    return reply.send({ tokens: [...fromConfig, ...fromStore] });
  });

  app.delete<{ Params: { id: string } }>('/v1/tokens/:id', { schema: routeSchemas.revokeOperatorToken, config: { guard: 'operator' } }, async (request, reply) => {
    const store = storeFor(request);
    auditNote(request, { target: request.params.id });
    const existing = store.getOperatorToken(request.params.id);
    if (!existing) throw problems.notFound('no such token in the token store (tokens from the config file are removed there)');
    store.revokeOperatorToken(existing.id);
    return reply.code(204).send();
  });

  app.post<{ Params: { id: string } }>('/v1/tokens/:id/rotate', { schema: routeSchemas.rotateOperatorToken, config: { guard: 'operator' } }, async (request, reply) => {
    const store = storeFor(request);
    auditNote(request, { target: request.params.id });
    const rotated = store.rotateOperatorToken(request.params.id);
    if (!rotated) throw problems.notFound('no such active token in the token store');
    return reply.code(201).header('cache-control', 'no-store').send({ ...rotated.record, source: 'store', token: rotated.token });
  });

  app.get<{ Params: { jid: string } }>('/v1/users/:jid/tokens', { schema: routeSchemas.listUserTokens, config: { guard: { account: 'admin' } } }, async (request, reply) => {
    const { jid } = guardAccount(ctx, request, request.params.jid, 'admin');
    auditNote(request, { account: jid });
    if (!ctx.tokens) throw problems.unavailable('the token store is not available');
    const tokens = ctx.tokens.listUserTokens(jid).map((t) => ({
      jti: t.jti,
      scopes: t.scopes,
      expiresAt: new Date(t.expiresAt * 1000).toISOString(),
      singleUse: t.singleUse,
      revoked: t.revoked,
      ...(t.singleUse ? { consumed: t.consumed } : {}),
    }));
    return reply.send({ jid, tokens });
  });

  app.delete<{ Params: { jid: string; jti: string } }>('/v1/users/:jid/tokens/:jti', { schema: routeSchemas.revokeUserToken, config: { guard: { account: 'admin' } } }, async (request, reply) => {
    const { jid } = guardAccount(ctx, request, request.params.jid, 'admin');
    auditNote(request, { account: jid, target: request.params.jti });
    if (!ctx.tokens) throw problems.unavailable('the token store is not available');
    const known = ctx.tokens.userToken(request.params.jti);
    // One answer for "no such token" and "another account's": jtis are not to be probed.
    if (!known || known.jid !== jid) throw problems.notFound('no such token for this account');
    ctx.auth.revokeUserToken(request.params.jti, known.expiresAt);
    return reply.code(204).send();
  });
};
