/**
 * Bounded retries of an operation that failed for a reason a later attempt may not meet (see
 * StorageError.retryable). The operation must be replayable: an import reads its document again
 * from the spool on each attempt, and a failed attempt stored nothing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { StorageError } from './backend.js';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly attempts: number;
  /** Wait before the second attempt; doubled for each later one, with jitter. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { attempts: 5, baseDelayMs: 100, maxDelayMs: 2000 };

export function isRetryable(err: unknown): boolean {
  return err instanceof StorageError && err.retryable;
}

/**
 * Runs `attempt` until it succeeds, fails for good, or the policy's attempts are spent; then
 * throws the last failure. `onRetry` hears of each failure that is tried again.
 */
export async function withRetries<T>(
  attempt: (n: number) => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  onRetry?: (err: unknown, n: number, delayMs: number) => void,
  signal?: AbortSignal,
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      if (!isRetryable(err) || n >= policy.attempts || signal?.aborted) throw err;
      const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (n - 1));
      // Full jitter: concurrent transactions that deadlocked each other do not retry in step.
      const delayMs = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
      onRetry?.(err, n, delayMs);
      await sleep(delayMs, undefined, signal ? { signal } : undefined);
    }
  }
}
