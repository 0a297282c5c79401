import { createHash } from 'node:crypto';

/**
 * Consecutive failures for one username allowed before sign-in pauses for it. Within NIST SP 800-63B §5.2.2
 * ("no more than 100 consecutive failed attempts on a single account"); ten leaves room for a person who mistypes.
 */
export const FREE_LOGIN_FAILURES = 10;
/** The first pause (s); each further failure doubles it. */
export const FIRST_BACKOFF_SECONDS = 60;
/** The longest pause (s): about 24 further guesses a day at most for one username, from any number of addresses. */
export const MAX_BACKOFF_SECONDS = 3600;
/** Failures older than this (s) no longer count: the next failure starts a new series. */
export const FAILURE_MEMORY_SECONDS = 24 * 3600;

/**
 * The pause after `failures` consecutive failures (s): 0 up to FREE_LOGIN_FAILURES, then 60 s, 120 s, 240 s, …
 * doubling up to MAX_BACKOFF_SECONDS.
 */
export function backoffSecondsAfter(failures: number): number {
  if (!Number.isInteger(failures) || failures < 0) throw new RangeError(`failures must be a whole number ≥ 0`);
  if (failures < FREE_LOGIN_FAILURES) return 0;
  const doublings = failures - FREE_LOGIN_FAILURES;
  // 2^6 · 60 s already exceeds the cap; clamping the exponent keeps the arithmetic finite for any count.
  return Math.min(FIRST_BACKOFF_SECONDS * 2 ** Math.min(doublings, 16), MAX_BACKOFF_SECONDS);
}

/**
 * The back-off key of a username: the SHA-256 (hex) of its lower-case form, for names that exist and names that do
 * not. Lower case because sign-in matches names whatever their case: keyed as typed, `admin`, `Admin`, `aDmin`… would
 * each get their own ten free guesses at the same account.
 */
export function accountKeyOf(username: string): string {
  return createHash('sha256').update(username.toLowerCase(), 'utf8').digest('hex');
}
