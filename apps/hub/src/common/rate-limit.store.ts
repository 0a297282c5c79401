import type { ThrottlerStorage } from '@nestjs/throttler';
import { RateLimitWindows, type SqlRunner } from './rate-limit-windows.repository';

/** The name of the hub's one rate limit (sign-in, refresh and enrollment routes), also in its response headers. */
export const RATE_LIMIT_NAME = 'login';

/** Expired rows are deleted at most this often per process (and only when a limited route is called). */
const PRUNE_INTERVAL_MS = 10 * 60_000;

/** What the limiter expects back (its record type is not exported from the package's entry point). */
type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/**
 * The rate limiter's counters in the hub's database instead of one process's memory (issue 18, item 4), so the
 * sign-in and enrollment limits hold across every replica of the hub: N replicas behind a load balancer allow the
 * configured rate, not N times it. Fixed windows, as the in-memory store of @nestjs/throttler counts them: a key that
 * makes more than `limit` calls within `ttl` is blocked for `blockDuration` (the limiter's default is `ttl`); calls
 * while blocked are refused and not counted; when the block ends the key starts a fresh window. The counting itself
 * is RateLimitWindows' (one atomic statement); this store answers the limiter and prunes now and then.
 */
export class RateLimitStore implements ThrottlerStorage {
  private lastPrune = 0;

  /**
   * `database`: the hub's DataSource, as the composition root (AppModule's throttler factory) passes it, only handed
   * on to the counters; a unit spec passes `windows` (a double) instead.
   */
  constructor(
    database: SqlRunner,
    private readonly windows: Pick<RateLimitWindows, 'count' | 'pruneEnded'> = new RateLimitWindows(database),
  ) {}

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    this.pruneNowAndThen();
    const counted = await this.windows.count(key, throttlerName, {
      windowMs: ttl,
      limit,
      blockMs: blockDuration > 0 ? blockDuration : ttl,
    });
    const blockedFor = Math.min(Math.max(0, counted.blockedForSeconds), Math.ceil(Math.max(blockDuration, ttl) / 1000));
    return {
      totalHits: counted.hits,
      timeToExpire: Math.min(Math.max(0, counted.windowEndsInSeconds), Math.ceil(ttl / 1000)),
      isBlocked: blockedFor > 0,
      timeToBlockExpire: blockedFor,
    };
  }

  /** Deletes the rows whose window and block are both over (an hour's slack), at most every PRUNE_INTERVAL_MS. */
  prune(): Promise<number> {
    return this.windows.pruneEnded();
  }

  private pruneNowAndThen(): void {
    const now = Date.now();
    if (now - this.lastPrune < PRUNE_INTERVAL_MS) return;
    this.lastPrune = now;
    // Best effort: a failed prune leaves rows for the next one and never fails the request.
    this.prune().catch(() => undefined);
  }
}
