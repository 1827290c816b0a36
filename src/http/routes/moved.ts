/**
 * XEP-0283 account moves over HTTP: `POST` publishes the moved statement on the account (and,
 * with `importUrl`, first copies its data to the new account); `GET` reports which contacts have
 * accepted the new JID. The same MoveService backs the component's "Move my account" command.
 */
import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify';
import { OutgoingError } from '../../lib/net/outgoing.js';
import { MoveError, MoveService } from '../../xmpp/moved.js';
import { privilegedAccessOf } from '../../xmpp/component.js';
import { guardAccount, type ServiceContext } from '../context.js';
import { Problem, problems } from '../problem.js';
import { toProblem } from './users.js';
import { routeSchemas } from '../schemas/routes.js';

interface JidParams {
  jid: string;
}

interface MovedBody {
  newJid?: unknown;
  importUrl?: unknown;
}

function moveProblem(err: unknown, log: FastifyBaseLogger): unknown {
  if (!(err instanceof MoveError)) return toProblem(err);
  if (err.cause instanceof OutgoingError) log.debug({ upstream: err.cause.internal }, 'move: copying the data failed');
  switch (err.code) {
    case 'bad-request':
      return problems.badRequest(err.message);
    case 'not-found':
      return problems.notFound(err.message);
    case 'conflict':
      return problems.conflict(err.message);
    case 'upstream':
      return new Problem(502, 'upstream-failed', 'Bad gateway', err.message);
    case 'refused':
      return new Problem(422, 'outgoing-refused', 'Refused by the outgoing-request policy', err.message);
  }
}

export const movedRoutes: FastifyPluginAsync<{ ctx: ServiceContext }> = async (app, { ctx }) => {
  // Built per request: the component (and so the privileged route) may attach after start.
  const moves = (): MoveService => new MoveService(ctx, privilegedAccessOf(ctx));

  app.post<{ Params: JidParams; Body: MovedBody }>('/v1/users/:jid/moved', { schema: routeSchemas.moveUser, config: { guard: { account: 'import' } } }, async (request, reply) => {
    const { jid } = guardAccount(ctx, request, request.params.jid, 'import');
    const body = request.body ?? {};
    if (typeof body.newJid !== 'string' || body.newJid === '') throw problems.badRequest('newJid is required');
    if (body.importUrl !== undefined && typeof body.importUrl !== 'string') throw problems.badRequest('importUrl must be a string');
    try {
      return reply.send(await moves().move(jid, body.newJid, body.importUrl));
    } catch (err) {
      throw moveProblem(err, request.log);
    }
  });

  app.get<{ Params: JidParams }>('/v1/users/:jid/moved', { schema: routeSchemas.getMove, config: { guard: { account: 'export' } } }, async (request, reply) => {
    const { jid } = guardAccount(ctx, request, request.params.jid, 'export');
    let status;
    try {
      status = await moves().status(jid);
    } catch (err) {
      throw moveProblem(err, request.log);
    }
    if (!status) throw problems.notFound(`${jid} has published no moved statement`);
    return reply.send(status);
  });
};
