/**
 * One audit line per request to a privileged route, written when the response is done, so the
 * outcome is known. Routes add what only they know (normalised account, kinds, dry run, counts)
 * with {@link auditNote}; the error handler adds the refusal's reason.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditAction, AuditActor, AuditEntry } from '../core/audit.js';
import type { Principal } from '../core/auth/authenticator.js';
import type { ServiceContext } from '../core/context.js';
import { knownPrincipal } from './guard.js';

type Note = { -readonly [K in Exclude<keyof AuditEntry, 'action' | 'actor' | 'outcome' | 'status' | 'requestId'>]?: AuditEntry[K] };

const notes = new WeakMap<FastifyRequest, Note>();

/** Route (method and Fastify URL pattern) → the action it audits as. */
const ROUTE_ACTIONS: Readonly<Record<string, AuditAction>> = {
  'GET /v1/users/:jid/export': 'export',
  'POST /v1/users/:jid/exports': 'export-file-create',
  'GET /v1/exports/:id': 'export-file-download',
  'DELETE /v1/exports/:id': 'export-file-delete',
  'PUT /v1/users/:jid/import': 'import',
  'POST /v1/users/:jid/import-from': 'import-from',
  'POST /v1/users/:jid/import-from-xmpp': 'import-from-xmpp',
  'POST /v1/users/:jid/moved': 'move',
  'POST /v1/transfers/xmpp': 'remote-transfer',
  'GET /v1/hosts/:host/export': 'host-export',
  'PUT /v1/hosts/:host/import': 'host-import',
  'POST /v1/users/:jid/tokens': 'user-token-mint',
  'GET /v1/users/:jid/tokens': 'user-token-list',
  'DELETE /v1/users/:jid/tokens/:jti': 'user-token-revoke',
  'POST /v1/tokens': 'operator-token-create',
  'GET /v1/tokens': 'operator-token-list',
  'DELETE /v1/tokens/:id': 'operator-token-revoke',
  'POST /v1/tokens/:id/rotate': 'operator-token-rotate',
  'GET /xep227/export': 'export',
  'PUT /xep227/import': 'import',
  'GET /xep227/users/:jid/export': 'export',
  'PUT /xep227/users/:jid/import': 'import',
};

/** Adds details to this request's audit line (later notes win). */
export function auditNote(request: FastifyRequest, note: Note): void {
  notes.set(request, { ...notes.get(request), ...note });
}

export function actorOf(principal: Principal | undefined): AuditActor {
  if (!principal) return { kind: 'anonymous' };
  if (principal.kind === 'user') return { kind: 'user', jid: principal.jid, jti: principal.jti };
  return { kind: 'operator', name: principal.name, ...(principal.tokenId !== undefined ? { tokenId: principal.tokenId } : {}) };
}

function outcomeOf(status: number): AuditEntry['outcome'] {
  if (status === 202) return 'accepted';
  if (status < 400) return 'ok';
  return status >= 500 ? 'failed' : 'refused';
}

export function registerAuditTrail(app: FastifyInstance, ctx: ServiceContext): void {
  app.addHook('onResponse', async (request, reply) => {
    const action = ROUTE_ACTIONS[`${request.method} ${request.routeOptions.url ?? ''}`];
    if (action === undefined) return;
    const params = (request.params ?? {}) as Record<string, unknown>;
    const note = notes.get(request) ?? {};
    const account = note.account ?? (typeof params.jid === 'string' ? params.jid : undefined);
    const host = note.host ?? (typeof params.host === 'string' ? params.host : undefined);
    // A response cut short by a failed stream was not a success, whatever its status line said.
    const status = reply.statusCode;
    const complete = reply.raw.writableEnded;
    ctx.audit.record({
      action,
      actor: actorOf(knownPrincipal(request)),
      ...note,
      ...(account !== undefined ? { account } : {}),
      ...(host !== undefined ? { host } : {}),
      outcome: complete ? outcomeOf(status) : 'failed',
      ...(!complete && note.reason === undefined ? { reason: 'the response was cut short' } : {}),
      status,
      requestId: request.id,
    });
  });
}
