/** Anything that runs SQL: the hub's DataSource (the composition root's throttler factory hands it over). */
export interface SqlRunner {
  query(sql: string, parameters?: unknown[]): Promise<unknown>;
}

/** One key's counter after a call was counted, in whole seconds by the database's clock. */
export interface CountedCall {
  /** Calls counted in the current window (a call while blocked is not counted). */
  readonly hits: number;
  /** Seconds until the window ends (may be 0 or negative when it just ended). */
  readonly windowEndsInSeconds: number;
  /** Seconds until the block ends; 0 when not blocked. */
  readonly blockedForSeconds: number;
}

/** The counting rule, in milliseconds: `limit` calls per `windowMs`, then a block of `blockMs`. */
export interface RateLimitRule {
  readonly windowMs: number;
  readonly limit: number;
  readonly blockMs: number;
}

/**
 * One statement, atomic under the row's lock: every replica counts in the same row, by the database's clock. The clock
 * is read when the statement runs (clock_timestamp), not when its transaction began (now()): a call that waited for
 * the row's lock must not see a window that, by its own start time, has not begun yet.
 */
const COUNT_SQL = `
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

/**
 * The rate limiter's counters (`rate_limit_windows`, migration RateLimits1763801400000): the only code of the rate
 * limit that runs SQL. Fixed windows per key and limit name: a key that makes more than `limit` calls within the window
 * is blocked for `blockMs`; calls while blocked are refused and not counted; when the block (or, unblocked, the window)
 * ends, the key starts a fresh window. RateLimitStore keeps what the limiter is answered; its unit spec replaces this
 * with a double (in-memory-rate-limit-windows.test-util.ts).
 */
export class RateLimitWindows {
  constructor(private readonly db: SqlRunner) {}

  /** Counts one call of `key` under `limitName`, in one atomic statement. */
  async count(key: string, limitName: string, rule: RateLimitRule): Promise<CountedCall> {
    const rows = (await this.db.query(COUNT_SQL, [key, limitName, rule.windowMs, rule.limit, rule.blockMs])) as {
      hits: number;
      expires_in: number;
      blocked_for: number;
    }[];
    const row = rows[0]!;
    return { hits: row.hits, windowEndsInSeconds: row.expires_in, blockedForSeconds: row.blocked_for };
  }

  /** Deletes the rows whose window and block both ended over an hour ago; returns how many. */
  async pruneEnded(): Promise<number> {
    const result = (await this.db.query(
      `DELETE FROM "rate_limit_windows"
        WHERE "window_ends_at" < now() - interval '1 hour'
          AND ("blocked_until" IS NULL OR "blocked_until" < now() - interval '1 hour')`,
    )) as [unknown[], number];
    return result[1];
  }
}
