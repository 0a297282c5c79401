import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { accountKeyOf, backoffSecondsAfter, FAILURE_MEMORY_SECONDS } from './login-backoff.util';

/** The answer while sign-in is paused: the same for every username, existing or not. */
export function loginBackoffMessage(seconds: number): string {
  return (
    `Too many failed sign-ins for this username: sign-in is paused for it for ${seconds} more seconds. ` +
    'Until then every attempt is refused, even with the correct password.'
  );
}

/**
 * The per-account half of login throttling (the per-address half is the ThrottlerGuard). State in the
 * `login_backoff` table, shared by every replica; all times are the database's `now()`.
 */
@Injectable()
export class LoginBackoffService {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** Throws 429 LOGIN_BACKOFF (with Retry-After) while sign-in is paused for this username. */
  async assertNotPaused(username: string): Promise<void> {
    const rows = (await this.db.query(
      `SELECT ceil(extract(epoch FROM "locked_until" - now()))::int AS wait
         FROM "login_backoff" WHERE "account_key" = $1 AND "locked_until" > now()`,
      [accountKeyOf(username)],
    )) as { wait: number }[];
    const wait = rows[0]?.wait;
    if (wait === undefined) return;
    const seconds = Math.max(1, wait);
    throw new HubException(HubErrorCode.LOGIN_BACKOFF, loginBackoffMessage(seconds), undefined, {
      retryAfterSeconds: seconds,
    });
  }

  /** Counts a failure; returns the consecutive failures so far and the pause it starts (s, 0 for none). */
  async recordFailure(username: string): Promise<{ failures: number; pausedForSeconds: number }> {
    const key = accountKeyOf(username);
    // One atomic statement per step: concurrent failures on several replicas each count once.
    const [counted] = (await this.db.query(
      `INSERT INTO "login_backoff" AS b ("account_key", "failures", "last_failure_at")
       VALUES ($1, 1, now())
       ON CONFLICT ("account_key") DO UPDATE SET
         "failures" = CASE WHEN b."last_failure_at" < now() - make_interval(secs => $2) THEN 1 ELSE b."failures" + 1 END,
         "last_failure_at" = now()
       RETURNING "failures"`,
      [key, FAILURE_MEMORY_SECONDS],
    )) as { failures: number }[];
    const failures = counted!.failures;
    const pausedForSeconds = backoffSecondsAfter(failures);
    if (pausedForSeconds > 0) {
      // GREATEST: a concurrent failure that computed a shorter pause cannot shorten a longer one.
      await this.db.query(
        `UPDATE "login_backoff"
            SET "locked_until" = GREATEST(COALESCE("locked_until", now()), now() + make_interval(secs => $2))
          WHERE "account_key" = $1`,
        [key, pausedForSeconds],
      );
    }
    await this.db.query(
      `DELETE FROM "login_backoff"
        WHERE "last_failure_at" < now() - make_interval(secs => $1)
          AND ("locked_until" IS NULL OR "locked_until" < now())`,
      [FAILURE_MEMORY_SECONDS],
    );
    return { failures, pausedForSeconds };
  }

  /** A successful sign-in ends the series. */
  async clear(username: string): Promise<void> {
    await this.db.query(`DELETE FROM "login_backoff" WHERE "account_key" = $1`, [accountKeyOf(username)]);
  }
}
