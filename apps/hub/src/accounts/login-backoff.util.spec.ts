import { describe, expect, it } from 'vitest';
import { accountKeyOf, backoffSecondsAfter, FREE_LOGIN_FAILURES, MAX_BACKOFF_SECONDS } from './login-backoff.util';

describe('backoffSecondsAfter', () => {
  it('lets ten consecutive failures pass, then doubles from a minute up to an hour', () => {
    const pauses = Array.from({ length: 20 }, (_, i) => backoffSecondsAfter(i));
    expect(pauses.slice(0, FREE_LOGIN_FAILURES)).toEqual(Array(FREE_LOGIN_FAILURES).fill(0));
    expect(pauses.slice(FREE_LOGIN_FAILURES)).toEqual([60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600]);
    expect(backoffSecondsAfter(1_000_000)).toBe(MAX_BACKOFF_SECONDS);
  });

  it('refuses a count that is not a whole number', () => {
    expect(() => backoffSecondsAfter(-1)).toThrow(RangeError);
    expect(() => backoffSecondsAfter(1.5)).toThrow(RangeError);
  });

  it('keys a username by the SHA-256 of its lower-case form, so changing the case buys no fresh guesses', () => {
    // SHA-256("admin"), e.g. `printf admin | sha256sum`.
    expect(accountKeyOf('admin')).toBe('8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918');
    expect(accountKeyOf('ADMIN')).toBe(accountKeyOf('admin'));
    expect(accountKeyOf('aDmIn')).toBe(accountKeyOf('admin'));
    expect(accountKeyOf('admin2')).not.toBe(accountKeyOf('admin'));
  });
});
