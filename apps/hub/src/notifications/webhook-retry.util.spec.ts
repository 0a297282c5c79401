import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_RETRY_DELAY_MS, MAX_WEBHOOK_ATTEMPTS, retryDelayMs, shouldRetry } from './webhook-retry.util';

describe('webhook retry backoff', () => {
  it('doubles per attempt, half of it jittered', () => {
    expect(retryDelayMs(1, 10_000, 0)).toBe(5_000);
    expect(retryDelayMs(1, 10_000, 0.999999)).toBe(10_000);
    expect(retryDelayMs(2, 10_000, 0)).toBe(10_000);
    expect(retryDelayMs(3, 10_000, 0.5)).toBe(30_000);
  });

  it('never waits longer than an hour, nor less than half the uncapped step', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 3_600_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, base, random) => {
          const delay = retryDelayMs(attempt, base, random);
          const ceiling = Math.min(MAX_RETRY_DELAY_MS, base * 2 ** Math.min(attempt - 1, 40));
          return delay <= MAX_RETRY_DELAY_MS && delay >= Math.floor(ceiling / 2) && delay <= Math.ceil(ceiling);
        },
      ),
    );
  });

  it('grows with the attempt for the same random draw', () => {
    for (let a = 1; a < 12; a++)
      expect(retryDelayMs(a + 1, 1000, 0.3)).toBeGreaterThanOrEqual(retryDelayMs(a, 1000, 0.3));
  });

  it('refuses nonsense', () => {
    expect(() => retryDelayMs(0, 1000, 0)).toThrow(RangeError);
    expect(() => retryDelayMs(1, 0, 0)).toThrow(RangeError);
    expect(() => retryDelayMs(1, 1000, 1)).toThrow(RangeError);
  });

  it('retries until the last attempt', () => {
    expect(shouldRetry(1)).toBe(true);
    expect(shouldRetry(MAX_WEBHOOK_ATTEMPTS - 1)).toBe(true);
    expect(shouldRetry(MAX_WEBHOOK_ATTEMPTS)).toBe(false);
  });
});
