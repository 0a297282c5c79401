/** Attempts per delivery, the first included; after the last failure the delivery is marked failed. */
export const MAX_WEBHOOK_ATTEMPTS = 8;

/** No wait between two attempts is longer than this, in milliseconds (one hour). */
export const MAX_RETRY_DELAY_MS = 3_600_000;

/**
 * How long to wait after failed attempt number `attempt` (1-based) before the next: exponential backoff
 * (`baseMs`·2^(attempt−1), capped at MAX_RETRY_DELAY_MS) with "equal jitter": half of it fixed, half uniform random,
 * so receivers that failed together are not all retried in the same instant. `random` is in [0, 1).
 */
export function retryDelayMs(attempt: number, baseMs: number, random: number): number {
  if (!Number.isInteger(attempt) || attempt < 1) throw new RangeError('attempt must be an integer from 1');
  if (!Number.isFinite(baseMs) || baseMs <= 0) throw new RangeError('baseMs must be positive');
  if (!(random >= 0 && random < 1)) throw new RangeError('random must be in [0, 1)');
  const ceiling = Math.min(MAX_RETRY_DELAY_MS, baseMs * 2 ** Math.min(attempt - 1, 40));
  return Math.round(ceiling / 2 + (ceiling / 2) * random);
}

/** Whether a failed attempt is retried: while attempts remain (`attempt` is the one that just failed). */
export function shouldRetry(attempt: number, maxAttempts = MAX_WEBHOOK_ATTEMPTS): boolean {
  return attempt < maxAttempts;
}
