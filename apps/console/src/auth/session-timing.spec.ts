import { describe, expect, it } from 'vitest';
import type { Session } from './session-store.js';
import { formatCountdown, refreshDueAt, sessionDue, type SessionDue, type SessionWarning } from './session-timing.js';

const warningOf = (due: SessionDue): SessionWarning | null => ('warning' in due ? due.warning : null);

const T = 1_800_000_000_000;
const MIN = 60_000;

/** A session signed in at T: 5-minute access token, 15-minute idle timeout, 12-hour end. */
function session(overrides: Partial<Session> = {}): Session {
  return {
    token: 't',
    username: 'alice',
    role: 'admin',
    issuedAt: T,
    expiresAt: T + 5 * MIN,
    sessionEndsAt: T + 12 * 60 * MIN,
    idleTimeoutMs: 15 * MIN,
    passwordChangeRequired: false,
    ...overrides,
  };
}

describe('sessionDue', () => {
  it('renews the access token a minute before it expires, or a quarter of its lifetime when that is shorter', () => {
    expect(refreshDueAt(session())).toBe(T + 4 * MIN);
    expect(refreshDueAt(session({ expiresAt: T + 2 * MIN }))).toBe(T + 1.5 * MIN);
    expect(sessionDue(session(), T, T + 3 * MIN)).toEqual({ action: 'none', warning: null });
    expect(sessionDue(session(), T + 3 * MIN, T + 4 * MIN)).toEqual({ action: 'refresh', warning: null });
    // After a failed try, not again before its back-off.
    expect(sessionDue(session(), T + 3 * MIN, T + 4 * MIN, T + 4 * MIN + 1)).toEqual({ action: 'none', warning: null });
  });

  it('warns two minutes before an idle sign-out, and signs out after the whole idle timeout', () => {
    const s = session({ expiresAt: T + 20 * MIN, issuedAt: T + 10 * MIN });
    expect(sessionDue(s, T, T + 12 * MIN)).toEqual({ action: 'none', warning: null });
    expect(sessionDue(s, T, T + 13 * MIN)).toEqual({ action: 'none', warning: { kind: 'idle', at: T + 15 * MIN } });
    expect(sessionDue(s, T, T + 15 * MIN)).toEqual({ action: 'idle-out' });
    // Activity moves it all.
    expect(sessionDue(s, T + 10 * MIN, T + 15 * MIN)).toEqual({ action: 'none', warning: null });
  });

  it('shortens the idle warning for short idle timeouts', () => {
    const s = session({ idleTimeoutMs: 4 * MIN, expiresAt: T + 10 * MIN, issuedAt: T + 5 * MIN });
    expect(warningOf(sessionDue(s, T, T + 2.9 * MIN))).toBeNull();
    expect(warningOf(sessionDue(s, T, T + 3 * MIN))).toEqual({ kind: 'idle', at: T + 4 * MIN });
  });

  it('warns five minutes before the fixed end, whatever the activity, and ends it there', () => {
    const s = session({ sessionEndsAt: T + 60 * MIN, expiresAt: T + 59 * MIN, issuedAt: T + 54 * MIN });
    expect(warningOf(sessionDue(s, T + 54 * MIN, T + 54.9 * MIN))).toBeNull();
    expect(warningOf(sessionDue(s, T + 54 * MIN, T + 55 * MIN))).toEqual({ kind: 'end', at: T + 60 * MIN });
    expect(sessionDue(s, T + 59.9 * MIN, T + 60 * MIN)).toEqual({ action: 'end' });
    // The end wins over idleness when both have come.
    expect(sessionDue(s, T, T + 60 * MIN)).toEqual({ action: 'end' });
  });

  it('still renews the token while warning', () => {
    const s = session({ expiresAt: T + 14 * MIN, issuedAt: T + 9 * MIN });
    expect(sessionDue(s, T, T + 13.5 * MIN)).toEqual({
      action: 'refresh',
      warning: { kind: 'idle', at: T + 15 * MIN },
    });
  });
});

describe('formatCountdown', () => {
  it('reads as minutes and seconds, rounding up, never negative', () => {
    expect(formatCountdown(125_000)).toBe('2 min 05 s');
    expect(formatCountdown(44_100)).toBe('45 s');
    expect(formatCountdown(-5)).toBe('0 s');
  });
});
