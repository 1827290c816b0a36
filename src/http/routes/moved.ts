/**
 * XEP-0283 account moves over HTTP: `POST` publishes the moved statement on the account (and,
 * with `importUrl`, first copies its data to the new account); `GET` reports which contacts have
 * accepted the new JID. The same MoveService (src/core/move.ts) backs the component's "Move my
 * account" command; the statement goes through the server when the component registered its
 * privileged access in the context.
 */
import type { FastifyBaseLogger, FastifyPluginAsync } from 'fastify';
import type { ServiceContext } from '../../core/context.js';
import { MoveError, MoveService } from '../../core/move.js';
import { OutgoingError } from '../../lib/net/outgoing.js';
import { guardAccount } from '../guard.js';
import { problems } from '../problem.js';
import { routeSchemas } from '../schemas/routes.js';

interface JidParams {
  jid: string;
}

/** As the route schema admits it: `newJid` a non-empty string, `importUrl` a URI when given. */
interface MovedBody {
  newJid: string;
  importUrl?: string;
}

/** What happened upstream stays in the debug log; the answer says only that it failed (src/http/problem-map.ts). */
function logUpstream(err: unknown, log: FastifyBaseLogger): unknown {
  if (err instanceof MoveError && err.cause instanceof OutgoingError) log.debug({ upstream: err.cause.internal }, 'move: copying the data failed');
  return err;
}

export const movedRoutes: FastifyPluginAsync<{ ctx: ServiceContext }> = async (app, { ctx }) => {
  const moves = new MoveService(ctx);

  app.post<{ Params: JidParams; Body: MovedBody }>('/v1/users/:jid/moved', { schema: routeSchemas.moveUser, config: { guard: { account: 'import' } } }, async (request, reply) => {
    const { jid } = guardAccount(ctx, request, request.params.jid, 'import');
    const body = request.body;
    try {
      return reply.send(await moves.move(jid, body.newJid, body.importUrl));
    } catch (err) {
      throw logUpstream(err, request.log);
    }
  });

  app.get<{ Params: JidParams }>('/v1/users/:jid/moved', { schema: routeSchemas.getMove, config: { guard: { account: 'export' } } }, async (request, reply) => {
    const { jid } = guardAccount(ctx, request, request.params.jid, 'export');
    const status = await moves.status(jid);
    if (!status) throw problems.notFound(`${jid} has published no moved statement`);
    return reply.send(status);
  });
};
