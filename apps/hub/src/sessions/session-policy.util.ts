import { createHash, randomBytes } from 'node:crypto';

/**
 * How long after its rotation a refresh token may still be presented without counting as a replay (s). Two tabs of
 * one browser share the refresh cookie and may refresh at the same moment: the first rotates the token, the second
 * arrives with the same token milliseconds later. Within this window the late one gets a new access token but no
 * new refresh token (the browser already holds the successor the first answer set). Later than this, presenting a
 * rotated token is a replay: someone holds a copy (RFC 9700 §4.14.2, refresh token rotation).
 */
export const REFRESH_REUSE_GRACE_SECONDS = 10;

/** Why a session ended before its time; stored in `sessions.revoked_reason` and the audit trail. */
export type SessionEndReason =
  | 'signed-out'
  | 'account-disabled'
  | 'role-changed'
  | 'password-changed'
  | 'password-reset'
  | 'revoked-by-administrator'
  | 'refresh-token-replayed';

/** The lifetimes a session lives by (s); from the configuration, checked at boot. */
export interface SessionLifetimes {
  /** An access token's lifetime. */
  readonly accessSeconds: number;
  /** A session ends this long after its last refresh (sliding). */
  readonly idleSeconds: number;
  /** A session ends this long after sign-in, refreshed or not. */
  readonly maxSeconds: number;
}

/** The instants a new session lives by, from the database's clock at sign-in. */
export function newSessionBounds(now: Date, lifetimes: SessionLifetimes): { idleExpiresAt: Date; expiresAt: Date } {
  const expiresAt = new Date(now.getTime() + lifetimes.maxSeconds * 1000);
  return { idleExpiresAt: slidIdleExpiry(now, lifetimes.idleSeconds, expiresAt), expiresAt };
}

/** A refresh slides the idle expiry forward, never past the session's fixed end. */
export function slidIdleExpiry(now: Date, idleSeconds: number, expiresAt: Date): Date {
  return new Date(Math.min(now.getTime() + idleSeconds * 1000, expiresAt.getTime()));
}

/**
 * An access token's lifetime (whole seconds, at least 1): the configured one, cut short by the session's fixed end so
 * no token outlives its session.
 */
export function accessTokenSeconds(now: Date, accessSeconds: number, expiresAt: Date): number {
  const left = Math.floor((expiresAt.getTime() - now.getTime()) / 1000);
  return Math.max(1, Math.min(accessSeconds, left));
}

/** What a presented refresh token leads to. */
export type RefreshDecision =
  /** Current and its session alive: mark it rotated, issue its successor and a new access token. */
  | { readonly outcome: 'rotate' }
  /** Rotated moments ago by a concurrent refresh: a new access token only (see REFRESH_REUSE_GRACE_SECONDS). */
  | { readonly outcome: 'grace' }
  /** Rotated earlier: a copy is being replayed. The whole session (every token of the family) is revoked. */
  | { readonly outcome: 'replayed' }
  /** The session is over: nothing is issued. */
  | { readonly outcome: 'ended'; readonly why: 'revoked' | 'idle' | 'expired' | 'account-disabled' };

export interface PresentedToken {
  readonly rotatedAt: Date | null;
}

export interface SessionState {
  readonly revokedAt: Date | null;
  readonly idleExpiresAt: Date;
  readonly expiresAt: Date;
  readonly accountDisabled: boolean;
}

/**
 * Decides a refresh from the token's and its session's state at `now` (the database's clock). An ended session
 * answers the same whether or not the token was rotated: there is nothing left to revoke.
 */
export function decideRefresh(
  token: PresentedToken,
  session: SessionState,
  now: Date,
  graceSeconds: number = REFRESH_REUSE_GRACE_SECONDS,
): RefreshDecision {
  if (session.revokedAt !== null) return { outcome: 'ended', why: 'revoked' };
  if (session.accountDisabled) return { outcome: 'ended', why: 'account-disabled' };
  if (session.expiresAt.getTime() <= now.getTime()) return { outcome: 'ended', why: 'expired' };
  if (session.idleExpiresAt.getTime() <= now.getTime()) return { outcome: 'ended', why: 'idle' };
  if (token.rotatedAt === null) return { outcome: 'rotate' };
  const sinceRotation = now.getTime() - token.rotatedAt.getTime();
  return sinceRotation <= graceSeconds * 1000 ? { outcome: 'grace' } : { outcome: 'replayed' };
}

/** A new refresh token: 256 random bits, base64url (43 characters). */
export function newRefreshToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * What the database keeps of a refresh token: its SHA-256 (hex). The token has 256 bits of entropy, so a fast hash
 * is enough: nobody can search the space, unlike a password's.
 */
export function refreshTokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** A presented value that could be one of our refresh tokens (anything else is refused before any lookup). */
export function looksLikeRefreshToken(value: string): boolean {
  return /^[A-Za-z0-9_-]{43}$/.test(value);
}
