/**
 * `POST /v1/transfers/xmpp`: a remote-to-remote transfer for panels: xporta logs in to the old
 * and the new account as their user, copies what the client protocol carries and, with `move`,
 * completes a XEP-0283 move (src/core/remote-transfer.ts). Neither account needs to be served
 * here, so only operator tokens with the import scope may ask for it.
 *
 * The passwords live in this request only: they are not stored, logged (the request log redacts
 * `from.password` and `to.password`), put in the audit line, or echoed in an error.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ServiceContext } from '../../core/context.js';
import { transferRemote } from '../../core/remote-transfer.js';
import { auditNote } from '../audit-trail.js';
import { abortWhenClientLeaves } from '../client-abort.js';
import { principalOf } from '../guard.js';
import { kindsParam } from '../params.js';
import { problems } from '../problem.js';
import { routeSchemas } from '../schemas/routes.js';

/** As the route schema admits it: both accounts with a JID and a non-empty password, no other fields. */
interface TransferBody {
  from: { jid: string; password: string };
  to: { jid: string; password: string };
  include?: unknown;
  exclude?: unknown;
  move?: boolean;
}

export const transferRoutes: FastifyPluginAsync<{ ctx: ServiceContext }> = async (app, { ctx }) => {
  app.post<{ Body: TransferBody }>('/v1/transfers/xmpp', { schema: routeSchemas.transferXmpp, config: { guard: 'operator' } }, async (request, reply) => {
    const principal = principalOf(ctx, request);
    if (!principal.scopes.includes('import')) throw problems.forbidden('a transfer needs an operator token with the import scope');
    const body = request.body;
    const kinds = kindsParam(body);
    const move = body.move === true;
    auditNote(request, { account: body.from.jid, target: body.to.jid, kinds: [...kinds], mode: move ? 'move' : 'copy' });
    const report = await transferRemote(ctx.config, {
      from: body.from,
      to: body.to,
      include: kinds,
      move,
      signal: abortWhenClientLeaves(reply),
    }, ctx.importSlots);
    auditNote(request, { account: report.from, target: report.to, counts: { ...report.written } });
    return reply.send(report);
  });
};
