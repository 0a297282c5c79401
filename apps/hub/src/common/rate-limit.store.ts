import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { ThrottlerStorage } from '@nestjs/throttler';
import { DataSource } from 'typeorm';

/** The name of the hub's one rate limit (sign-in, refresh and enrollment routes), also in its response headers. */
export const RATE_LIMIT_NAME = 'login';

/** Expired rows are deleted at most this often per process (and only when a limited route is called). */
const PRUNE_INTERVAL_MS = 10 * 60_000;

/**
 * One statement, atomic under the row's lock: every replica counts in the same row, by the database's clock. The clock
 * is read when the statement runs (clock_timestamp), not when its transaction began (now()): a call that waited for
 * the row's lock must not see a window that, by its own start time, has not begun yet.
 */
const INCREMENT_SQL = `
  INSERT INTO "rate_limit_windows" AS w ("key", "limit_name", "hits", "window_ends_at", "blocked_until")
  VALUES ($1, $2, 1, clock_timestamp() + make_interval(secs => $3::double precision / 1000), NULL)
  ON CONFLICT ("key", "limit_name") DO UPDATE SET
    "hits" = CASE
      WHEN w."blocked_until" > clock_timestamp() THEN w."hits"
      WHEN w."blocked_until" IS NOT NULL OR w."window_ends_at" <= clock_timestamp() THEN 1
      ELSE w."hits" + 1 END,
    "window_ends_at" = CASE
      WHEN w."blocked_until" > clock_timestamp() THEN w."window_ends_at"
      WHEN w."blocked_until" IS NOT NULL OR w."window_ends_at" <= clock_timestamp()
        THEN clock_timestamp() + make_interval(secs => $3::double precision / 1000)
      ELSE w."window_ends_at" END,
    "blocked_until" = CASE
      WHEN w."blocked_until" > clock_timestamp() THEN w."blocked_until"
      WHEN w."blocked_until" IS NOT NULL OR w."window_ends_at" <= clock_timestamp() THEN NULL
      WHEN w."hits" + 1 > $4 THEN clock_timestamp() + make_interval(secs => $5::double precision / 1000)
      ELSE NULL END
  RETURNING "hits",
    ceil(extract(epoch FROM ("window_ends_at" - clock_timestamp())))::integer AS "expires_in",
    coalesce(ceil(extract(epoch FROM ("blocked_until" - clock_timestamp())))::integer, 0) AS "blocked_for"`;

/** What the limiter expects back (its record type is not exported from the package's entry point). */
type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

interface IncrementRow {
  hits: number;
  expires_in: number;
  blocked_for: number;
}

/**
 * The rate limiter's counters in the hub's database instead of one process's memory (issue 18, item 4), so the
 * sign-in and enrollment limits hold across every replica of the hub: N replicas behind a load balancer allow the
 * configured rate, not N times it. Fixed windows, as the in-memory store of @nestjs/throttler counts them: a key that
 * makes more than `limit` calls within `ttl` is blocked for `blockDuration` (the limiter's default is `ttl`); calls
 * while blocked are refused and not counted; when the block ends the key starts a fresh window.
 */
@Injectable()
export class RateLimitStore implements ThrottlerStorage {
  private lastPrune = 0;

  constructor(@InjectDataSource() private readonly db: DataSource) {}

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    this.pruneNowAndThen();
    const rows = (await this.db.query(INCREMENT_SQL, [
      key,
      throttlerName,
      ttl,
      limit,
      blockDuration > 0 ? blockDuration : ttl,
    ])) as IncrementRow[];
    const row = rows[0]!;
    const blockedFor = Math.min(Math.max(0, row.blocked_for), Math.ceil(Math.max(blockDuration, ttl) / 1000));
    return {
      totalHits: row.hits,
      timeToExpire: Math.min(Math.max(0, row.expires_in), Math.ceil(ttl / 1000)),
      isBlocked: blockedFor > 0,
      timeToBlockExpire: blockedFor,
    };
  }

  /** Deletes the rows whose window and block are both over (an hour's slack), at most every PRUNE_INTERVAL_MS. */
  async prune(): Promise<number> {
    const result = (await this.db.query(
      `DELETE FROM "rate_limit_windows"
        WHERE "window_ends_at" < now() - interval '1 hour'
          AND ("blocked_until" IS NULL OR "blocked_until" < now() - interval '1 hour')`,
    )) as [unknown[], number];
    return result[1];
  }

  private pruneNowAndThen(): void {
    const now = Date.now();
    if (now - this.lastPrune < PRUNE_INTERVAL_MS) return;
    this.lastPrune = now;
    // Best effort: a failed prune leaves rows for the next one and never fails the request.
    this.prune().catch(() => undefined);
  }
}
