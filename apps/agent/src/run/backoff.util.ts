/**
 * Capped exponential backoff: 1 s, 2 s, 4 s, … up to 30 s, back to 1 s after a success. No jitter: a silo's agent
 * is one client among tens, not a herd.
 */
export class Backoff {
  private failures = 0;

  constructor(
    private readonly initialMs = 1_000,
    private readonly maxMs = 30_000,
  ) {}

  /** The wait before the next try, in ms. */
  next(): number {
    const delay = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.failures, 30));
    this.failures++;
    return delay;
  }

  reset(): void {
    this.failures = 0;
  }
}
