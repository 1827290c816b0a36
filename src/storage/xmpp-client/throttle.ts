/**
 * IQs to a remote server with throttling retried: a `resource-constraint` error, or any error of
 * type `wait`, is the server asking to slow down (RFC 6120 §8.3.2), so the same request is sent
 * again after an exponential backoff. Every other stanza error is the answer and is thrown.
 * The reader and the writer both go through here, so both back off the same way.
 */
import type { XmlElement } from '../../records/model.js';
import { XmppStanzaError } from './errors.js';
import type { ClientStream } from './stream.js';

export interface ThrottleOptions {
  /** Attempts for a throttled request, the first included. Default 5. */
  readonly throttleAttempts?: number;
  /** First backoff delay; doubled per attempt. Default 500 ms. */
  readonly backoffMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function isThrottle(err: unknown): boolean {
  return err instanceof XmppStanzaError && (err.condition === 'resource-constraint' || err.errorType === 'wait');
}

/** What a caller may add around each attempt. */
export interface RetryHooks {
  readonly signal?: AbortSignal;
  /** Runs before each sending, the first included. */
  readonly beforeAttempt?: () => void;
  /** What to throw when the last attempt was throttled too; that throttling error itself when absent. */
  readonly outlasted?: (err: XmppStanzaError, attempts: number) => Error;
}

/** `stream.iq` with throttling retried; other stanza errors and stream failures are thrown. */
export async function iqRetryingThrottle(stream: ClientStream, type: 'get' | 'set', payload: XmlElement, options: ThrottleOptions, to?: string, hooks: RetryHooks = {}): Promise<XmlElement> {
  const attempts = Math.max(1, options.throttleAttempts ?? 5);
  for (let attempt = 1; ; attempt++) {
    hooks.signal?.throwIfAborted();
    hooks.beforeAttempt?.();
    try {
      return await stream.iq(type, payload, to);
    } catch (err) {
      if (!(err instanceof XmppStanzaError) || !isThrottle(err)) throw err;
      if (attempt >= attempts) throw hooks.outlasted ? hooks.outlasted(err, attempts) : err;
      await sleep((options.backoffMs ?? 500) * 2 ** (attempt - 1));
    }
  }
}
