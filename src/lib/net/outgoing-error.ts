/**
 * How an outgoing request's failure reaches callers (see outgoing.ts): one of two fixed messages,
 * the details for debug logs only. Apart from the client, so that the error tables (the CLI's
 * exit codes, the HTTP problem map) can name it without loading the HTTP client library.
 */

export type OutgoingFailure = 'refused' | 'failed';

/** The only texts a caller ever sees about an outgoing request that did not work. */
export const OUTGOING_MESSAGES: Readonly<Record<OutgoingFailure, string>> = {
  refused: 'the URL points to an address that the outgoing-request policy refuses',
  failed: 'the remote server could not be reached or did not answer as expected',
};

export class OutgoingError extends Error {
  constructor(
    readonly reason: OutgoingFailure,
    /** What actually happened, for debug logs; never for an answer to a caller. Holds no token. */
    readonly internal: string,
    /** The peer's status when it answered with an unexpected one. */
    readonly status?: number,
  ) {
    super(OUTGOING_MESSAGES[reason]);
    this.name = 'OutgoingError';
  }
}
