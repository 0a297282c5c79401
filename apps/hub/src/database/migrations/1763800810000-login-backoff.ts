import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Per-account login back-off (issue 14, finding 11), beside the per-address rate limit: consecutive failed sign-ins
 * for one username, whatever the source address, pause sign-in for that username for a growing interval. The state
 * lives in PostgreSQL so every replica of the hub shares it, and time is the database's `now()`, one clock for all.
 *
 * `account_key` is the SHA-256 (hex) of the username as typed, for names that exist and names that do not alike
 * (an unknown name gets the same back-off, so the answer never tells whether an account exists); the table holds no
 * username an attacker made up. A row is deleted at the next successful sign-in, and pruned a day after its last
 * failure once its pause is over.
 */
export class LoginBackoff1763800810000 implements MigrationInterface {
  name = 'LoginBackoff1763800810000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "login_backoff" (
        "account_key" char(64) PRIMARY KEY CHECK ("account_key" ~ '^[0-9a-f]{64}$'),
        "failures" integer NOT NULL CHECK ("failures" > 0),
        "last_failure_at" timestamptz NOT NULL,
        "locked_until" timestamptz
      )`);
    await q.query(`CREATE INDEX "login_backoff_last_failure" ON "login_backoff" ("last_failure_at")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "login_backoff"`);
  }
}
