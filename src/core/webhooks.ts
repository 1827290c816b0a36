/**
 * Completion callbacks of jobs: a JSON POST to the job's `callbackUrl`, signed so the receiver
 * can tell it came from this xporta and is fresh. The header is
 * `X-Xporta-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 over "<t>.<body>" with webhooks.secret>`.
 * A delivery that fails for a reason a later one may not meet (a connection error, a timeout, a
 * 5xx, 408 or 429) is tried again with doubling waits, `webhooks.maxAttempts` in all. The URL
 * goes through the outgoing-request policy like every request xporta makes.
 */
import { createHmac } from 'node:crypto';
import { Readable } from 'node:stream';
import type { WebhooksConfig } from '../config/config.js';
import { OutgoingError, type OutgoingClient } from '../lib/net/outgoing.js';

export const SIGNATURE_HEADER = 'x-xporta-signature';

/** The header value for `body` sent at `timestamp` (unix seconds). */
export function signature(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export interface DeliveryOutcome {
  readonly delivered: boolean;
  readonly attempts: number;
  /** Why the last attempt failed; no secret, no body. */
  readonly lastError?: string;
}

function retryable(err: unknown): boolean {
  if (!(err instanceof OutgoingError)) return true;
  if (err.reason === 'refused') return false;
  return err.status === undefined || err.status >= 500 || err.status === 408 || err.status === 429;
}

/** Delivers `payload`, retrying as above; never throws. Each attempt is signed afresh. */
export async function deliverWebhook(
  client: OutgoingClient,
  config: WebhooksConfig & { readonly secret: string },
  url: URL,
  payload: unknown,
  options: { signal?: AbortSignal; onAttemptFailed?: (attempt: number, reason: string) => void } = {},
): Promise<DeliveryOutcome> {
  const body = JSON.stringify(payload);
  let lastError: string | undefined;
  for (let attempt = 1; attempt <= config.maxAttempts; attempt++) {
    if (options.signal?.aborted) break;
    try {
      const answer = await client.request(
        url,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'xporta-webhook',
            [SIGNATURE_HEADER]: signature(config.secret, Math.floor(Date.now() / 1000), body),
          },
          body: Readable.from([Buffer.from(body)]),
          ...(options.signal ? { signal: options.signal } : {}),
        },
        [200, 201, 202, 204],
      );
      answer.body.resume();
      return { delivered: true, attempts: attempt };
    } catch (err) {
      lastError = err instanceof OutgoingError ? err.internal : err instanceof Error ? err.message : String(err);
      options.onAttemptFailed?.(attempt, lastError);
      if (!retryable(err) || attempt === config.maxAttempts) return { delivered: false, attempts: attempt, lastError };
      const wait = config.initialBackoffMs * 2 ** (attempt - 1);
      await new Promise((r) => setTimeout(r, wait).unref());
    }
  }
  return { delivered: false, attempts: config.maxAttempts, ...(lastError !== undefined ? { lastError } : {}) };
}
