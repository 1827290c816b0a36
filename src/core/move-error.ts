/**
 * The move's failures, each with the code its faces map to a status. Kept apart from the move
 * itself so that a face naming the error (the CLI's exit codes) does not load the move's outgoing
 * HTTP client with it.
 */
export class MoveError extends Error {
  constructor(
    readonly code: 'bad-request' | 'not-found' | 'conflict' | 'upstream' | 'refused',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'MoveError';
  }
}
