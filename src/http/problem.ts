/**
 * RFC 9457 problem details. Every error the API returns goes through {@link Problem}, so clients
 * see one shape: `type` identifies the class of error, `detail` explains this occurrence, and XML
 * errors add `line` and `column`.
 */
import type { FastifyReply } from 'fastify';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';
const TYPE_BASE = 'urn:xporta:problem:';

export interface ProblemBody {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail?: string;
  readonly instance?: string;
  readonly [extension: string]: unknown;
}

export class Problem extends Error {
  constructor(
    readonly status: number,
    /** Short machine-readable class, e.g. `xml-malformed`; becomes the `type` URI. */
    readonly code: string,
    readonly title: string,
    readonly detail?: string,
    readonly extensions: Readonly<Record<string, unknown>> = {},
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(detail ?? title);
    this.name = 'Problem';
  }

  body(instance?: string): ProblemBody {
    return {
      type: `${TYPE_BASE}${this.code}`,
      title: this.title,
      status: this.status,
      ...(this.detail !== undefined ? { detail: this.detail } : {}),
      ...(instance !== undefined ? { instance } : {}),
      ...this.extensions,
    };
  }
}

/**
 * Sends the problem. Its `instance` is the request's path only: the query may hold a user token
 * (links handed to users carry one in `?token=`), and a problem body must never echo a secret.
 */
export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  for (const [name, value] of Object.entries(problem.headers)) reply.header(name, value);
  return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send(problem.body(pathOf(reply.request.url)));
}

/** The path of a request target, without its query or fragment. */
export function pathOf(url: string): string {
  return url.split(/[?#]/, 1)[0] ?? '';
}

export const problems = {
  badRequest: (detail: string, ext?: Record<string, unknown>) => new Problem(400, 'bad-request', 'Bad request', detail, ext),
  unauthorized: (detail: string) =>
    new Problem(401, 'unauthorized', 'Authentication required', detail, {}, { 'www-authenticate': 'Bearer realm="xporta"' }),
  invalidToken: (detail: string) =>
    new Problem(401, 'invalid-token', 'Invalid token', detail, {}, {
      'www-authenticate': `Bearer realm="xporta", error="invalid_token", error_description="${detail.replace(/["\\]/g, '')}"`,
    }),
  forbidden: (detail: string) => new Problem(403, 'forbidden', 'Forbidden', detail),
  notFound: (detail: string) => new Problem(404, 'not-found', 'Not found', detail),
  timeout: (detail: string) => new Problem(408, 'timeout', 'Request timeout', detail),
  conflict: (detail: string) => new Problem(409, 'conflict', 'Conflict', detail),
  tooLarge: (detail: string) => new Problem(413, 'too-large', 'Content too large', detail),
  uriTooLong: (detail: string) => new Problem(414, 'uri-too-long', 'URI too long', detail),
  unsupportedMediaType: (detail: string) => new Problem(415, 'unsupported-media-type', 'Unsupported media type', detail),
  unprocessable: (detail: string, ext?: Record<string, unknown>) => new Problem(422, 'invalid-document', 'Invalid document', detail, ext),
  tooManyRequests: (detail: string, retryAfterSeconds: number) =>
    new Problem(429, 'too-many-requests', 'Too many requests', detail, {}, { 'retry-after': String(retryAfterSeconds) }),
  unavailable: (detail: string) => new Problem(503, 'unavailable', 'Service unavailable', detail),
  /** The storage failed in a way a later attempt may not (lost connection, deadlock); nothing was changed. */
  storageUnavailable: (detail: string, retryAfterSeconds: number) =>
    new Problem(503, 'storage-unavailable', 'Storage unavailable', detail, {}, { 'retry-after': String(retryAfterSeconds) }),
  insufficientStorage: (detail: string) => new Problem(507, 'insufficient-storage', 'Insufficient storage', detail),
  internal: () => new Problem(500, 'internal', 'Internal error', 'An unexpected error occurred; the request id is in the log.'),
};
