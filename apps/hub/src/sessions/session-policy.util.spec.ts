import { describe, expect, it } from 'vitest';
import {
  accessTokenSeconds,
  decideRefresh,
  looksLikeRefreshToken,
  newRefreshToken,
  newSessionBounds,
  REFRESH_REUSE_GRACE_SECONDS,
  refreshTokenHash,
  slidIdleExpiry,
  type SessionState,
} from './session-policy.util';

const T0 = new Date('2026-12-01T08:00:00.000Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

function liveSession(overrides: Partial<SessionState> = {}): SessionState {
  return { revokedAt: null, idleExpiresAt: at(900), expiresAt: at(43_200), accountDisabled: false, ...overrides };
}

describe('session lifetimes', () => {
  it('starts a session with its idle expiry one idle timeout away and its end one maximum away', () => {
    const b = newSessionBounds(T0, { accessSeconds: 300, idleSeconds: 900, maxSeconds: 43_200 });
    expect(b.idleExpiresAt).toEqual(at(900));
    expect(b.expiresAt).toEqual(at(43_200));
  });

  it('slides the idle expiry forward on refresh, never past the fixed end', () => {
    expect(slidIdleExpiry(at(600), 900, at(43_200))).toEqual(at(1500));
    expect(slidIdleExpiry(at(43_000), 900, at(43_200))).toEqual(at(43_200));
    // A maximum shorter than the idle timeout caps the first idle expiry too.
    expect(newSessionBounds(T0, { accessSeconds: 60, idleSeconds: 900, maxSeconds: 600 }).idleExpiresAt).toEqual(
      at(600),
    );
  });

  it('cuts an access token short so it never outlives its session, and never below one second', () => {
    expect(accessTokenSeconds(T0, 300, at(43_200))).toBe(300);
    expect(accessTokenSeconds(at(43_100), 300, at(43_200))).toBe(100);
    expect(accessTokenSeconds(at(43_199.5), 300, at(43_200))).toBe(1);
    expect(accessTokenSeconds(at(50_000), 300, at(43_200))).toBe(1);
  });
});

describe('decideRefresh', () => {
  it('rotates a current token of a live session', () => {
    expect(decideRefresh({ rotatedAt: null }, liveSession(), at(60))).toEqual({ outcome: 'rotate' });
  });

  it('treats a rotated token presented again within the grace window as a concurrent refresh', () => {
    const rotatedAt = at(60);
    expect(decideRefresh({ rotatedAt }, liveSession(), at(60))).toEqual({ outcome: 'grace' });
    expect(decideRefresh({ rotatedAt }, liveSession(), at(60 + REFRESH_REUSE_GRACE_SECONDS))).toEqual({
      outcome: 'grace',
    });
  });

  it('detects a replay once the grace window has passed', () => {
    const rotatedAt = at(60);
    expect(decideRefresh({ rotatedAt }, liveSession(), at(60 + REFRESH_REUSE_GRACE_SECONDS + 0.001))).toEqual({
      outcome: 'replayed',
    });
    expect(decideRefresh({ rotatedAt }, liveSession(), at(600))).toEqual({ outcome: 'replayed' });
    expect(decideRefresh({ rotatedAt }, liveSession(), at(600), 0)).toEqual({ outcome: 'replayed' });
  });

  it('issues nothing for an ended session, rotated token or not', () => {
    for (const rotatedAt of [null, at(10)]) {
      const t = { rotatedAt };
      expect(decideRefresh(t, liveSession({ revokedAt: at(30) }), at(60))).toEqual({
        outcome: 'ended',
        why: 'revoked',
      });
      expect(decideRefresh(t, liveSession({ accountDisabled: true }), at(60))).toEqual({
        outcome: 'ended',
        why: 'account-disabled',
      });
      // Exactly at the instant counts as over.
      expect(decideRefresh(t, liveSession(), at(900))).toEqual({ outcome: 'ended', why: 'idle' });
      expect(decideRefresh(t, liveSession({ idleExpiresAt: at(43_200) }), at(43_200))).toEqual({
        outcome: 'ended',
        why: 'expired',
      });
    }
  });
});

describe('refresh tokens', () => {
  it('are 256 random bits in base64url, different each time', () => {
    const tokens = new Set(Array.from({ length: 100 }, newRefreshToken));
    expect(tokens.size).toBe(100);
    for (const t of tokens) {
      expect(looksLikeRefreshToken(t)).toBe(true);
      expect(Buffer.from(t, 'base64url')).toHaveLength(32);
    }
  });

  it('are stored as their SHA-256', () => {
    // SHA-256("abc"), FIPS 180-2 appendix B.1.
    expect(refreshTokenHash('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });

  it('refuses anything else before any lookup', () => {
    for (const bad of ['', 'short', 'a'.repeat(42), 'a'.repeat(44), `${'a'.repeat(42)}=`, `${'a'.repeat(42)}+`]) {
      expect(looksLikeRefreshToken(bad)).toBe(false);
    }
  });
});
