import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Rate limits shared by every replica of the hub (issue 18, item 4): the sign-in and enrollment limits were counted in
 * each process's memory, so N replicas behind a load balancer allowed N times the configured rate. One row per
 * limited key and limit name: the hits of the current window, when the window ends and, once the limit is exceeded,
 * until when the key is blocked. Time is the database's `now()`, one clock for all replicas.
 *
 * `key` is what the rate limiter derives from the route and the client (a SHA-256 in hex): no address is stored in
 * the clear. Rows whose window and block are both over are pruned by the hub (RateLimitStore).
 */
export class RateLimits1763801400000 implements MigrationInterface {
  name = 'RateLimits1763801400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "rate_limit_windows" (
        "key" varchar(128) NOT NULL,
        "limit_name" varchar(64) NOT NULL,
        "hits" integer NOT NULL CHECK ("hits" >= 0),
        "window_ends_at" timestamptz NOT NULL,
        "blocked_until" timestamptz,
        PRIMARY KEY ("key", "limit_name")
      )`);
    await q.query(`CREATE INDEX "rate_limit_windows_window_ends_at" ON "rate_limit_windows" ("window_ends_at")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "rate_limit_windows"`);
  }
}
