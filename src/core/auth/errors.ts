/**
 * Why an authentication, an authorisation or a token operation failed, in terms of the service
 * core; each face turns it into its own answer (src/http/problem-map.ts, src/cli/exit-codes.ts).
 */
export type AuthErrorCode =
  /** No credential was presented, or not in a form the face accepts. */
  | 'unauthenticated'
  /** The credential is unknown, malformed, expired, revoked or already used. */
  | 'invalid-token'
  /** The credential is valid but does not allow this. */
  | 'forbidden'
  /** A token asked for is not one that may be made (e.g. a lifetime over the maximum). */
  | 'invalid-request'
  /** Too many requests or failures; `retryAfterSeconds` says when to try again. */
  | 'rate-limited'
  /** The operation needs state this service runs without (the token store). */
  | 'unavailable';

export class AuthError extends Error {
  constructor(
    readonly code: AuthErrorCode,
    message: string,
    /** Set for `rate-limited`. */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}
