import { Injectable } from '@nestjs/common';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { AccountsRepository } from './accounts.repository';
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
  constructor(private readonly store: AccountsRepository) {}

  /** Throws 429 LOGIN_BACKOFF (with Retry-After) while sign-in is paused for this username. */
  async assertNotPaused(username: string): Promise<void> {
    const wait = await this.store.pauseLeftSeconds(accountKeyOf(username));
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
    const failures = await this.store.countFailure(key, FAILURE_MEMORY_SECONDS);
    const pausedForSeconds = backoffSecondsAfter(failures);
    if (pausedForSeconds > 0) await this.store.extendPause(key, pausedForSeconds);
    await this.store.forgetStaleFailures(FAILURE_MEMORY_SECONDS);
    return { failures, pausedForSeconds };
  }

  /** A successful sign-in ends the series. */
  async clear(username: string): Promise<void> {
    await this.store.clearFailures(accountKeyOf(username));
  }
}
