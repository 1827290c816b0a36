/**
 * A signal that fires when the client goes away before its answer was sent in full, so that the
 * work behind the answer (a storage read, a pull from another server) stops with the socket. An
 * exchange that finished closes too; that does not abort.
 */
import type { FastifyReply } from 'fastify';

export function abortWhenClientLeaves(reply: FastifyReply): AbortSignal {
  const abort = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) abort.abort();
  });
  return abort.signal;
}
