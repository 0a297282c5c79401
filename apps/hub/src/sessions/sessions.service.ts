import { Inject, Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { AuditTrail } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import type { SessionClaims, VerifiedAccount } from './authenticated-user';
import type { SessionDto } from './dto/session.dto';
import {
  accessTokenSeconds,
  decideRefresh,
  looksLikeRefreshToken,
  newRefreshToken,
  newSessionBounds,
  refreshTokenHash,
  slidIdleExpiry,
  type SessionEndReason,
  type SessionLifetimes,
} from './session-policy.util';
import { SessionRepository, type ActiveSession, type Queryable, type SessionRow } from './session.repository';

/** What a sign-in or refresh hands out: the body, and the refresh token for the cookie (none in the grace case). */
export interface IssuedSession {
  readonly view: SessionDto;
  readonly sessionId: string;
  /** Set the refresh cookie to this; null: leave the cookie as it is (a concurrent refresh already replaced it). */
  readonly refreshToken: string | null;
}

/** Ended sessions are kept this long (days), then forgotten with their token hashes. */
const KEEP_ENDED_SESSIONS_DAYS = 30;

/** One message for every refused refresh: it never tells whether the token was unknown, replayed or expired. */
export const SESSION_ENDED_MESSAGE = 'The session has ended. Sign in again.';

/** The configured lifetimes, each within the next: an access token never outlives the idle timeout. */
export function sessionLifetimesOf(config: HubConfig): SessionLifetimes {
  const maxSeconds = config.sessionMaxSeconds;
  const idleSeconds = Math.min(config.sessionTtlSeconds, maxSeconds);
  return { maxSeconds, idleSeconds, accessSeconds: Math.min(config.accessTokenTtlSeconds, idleSeconds) };
}

/**
 * Sessions of people (ADR 0010): a sign-in starts one; short access tokens name it (`sid`) and are checked against
 * it on every request; a refresh token, used once, renews the access token and slides the idle expiry; a rotated
 * refresh token presented again revokes the whole session. Revocation is a row update, so it takes effect on the
 * next request on every replica (and clears the embedded database's read cache, which any write does).
 */
@Injectable()
export class SessionsService {
  readonly lifetimes: SessionLifetimes;

  constructor(
    private readonly store: SessionRepository,
    private readonly jwt: JwtService,
    private readonly audit: AuditTrail,
    @Inject(HUB_CONFIG) config: HubConfig,
  ) {
    this.lifetimes = sessionLifetimesOf(config);
  }

  /**
   * Starts a session for an account whose password (or identity) was just checked, in the caller's transaction: the
   * session commits with the change and the record that go with it (a sign-in; a password change ends the old
   * sessions and starts this one).
   */
  async start(account: VerifiedAccount, tx: Queryable): Promise<IssuedSession> {
    const sessions = this.store.within(tx);
    const now = await sessions.now();
    const bounds = newSessionBounds(now, this.lifetimes);
    const session = await sessions.insertSession(account.id, bounds.idleExpiresAt, bounds.expiresAt);
    const refreshToken = newRefreshToken();
    await sessions.insertRefreshToken(session.id, refreshTokenHash(refreshToken));
    return this.issue(account, session, now, refreshToken);
  }

  /**
   * Trades a refresh token for a new access token and its successor. Throws UNAUTHENTICATED with one message for
   * an unknown, replayed, revoked or expired token; a replay revokes the session first (and is audited).
   */
  async refresh(presented: string | undefined): Promise<IssuedSession> {
    if (!presented || !looksLikeRefreshToken(presented)) throw this.ended();
    const outcome = await this.store.inTransaction(async (sessions) => {
      const now = await sessions.now();
      const found = await sessions.findRefreshToken(refreshTokenHash(presented));
      if (!found) return null;
      const { session, account } = found;
      const decision = decideRefresh(found, { ...session, accountDisabled: account.disabled }, now);
      switch (decision.outcome) {
        case 'rotate': {
          await sessions.markRotated(found.tokenHash, now);
          const next = newRefreshToken();
          await sessions.insertRefreshToken(session.id, refreshTokenHash(next));
          const idleExpiresAt = slidIdleExpiry(now, this.lifetimes.idleSeconds, session.expiresAt);
          await sessions.slide(session.id, now, idleExpiresAt);
          return this.issue(account, { ...session, idleExpiresAt }, now, next);
        }
        case 'grace':
          return this.issue(account, session, now, null);
        case 'replayed':
          await sessions.revoke(session.id, 'refresh-token-replayed');
          // Joins this transaction: the revocation and its record commit together.
          await this.audit.record({
            actor: { type: 'system', id: 'sessions' },
            action: 'auth.session.revoked',
            subject: { userId: account.id },
            details: { sessionId: session.id, username: account.username, reason: 'refresh-token-replayed' },
          });
          return null;
        case 'ended':
          return null;
      }
    });
    if (!outcome) throw this.ended();
    return outcome;
  }

  /** The session a refresh token belongs to (any token of it, rotated or not), for sign-out. */
  async sessionOfRefreshToken(
    presented: string | undefined,
  ): Promise<{ sessionId: string; userId: string; username: string } | null> {
    if (!presented || !looksLikeRefreshToken(presented)) return null;
    return this.store.inTransaction(async (sessions) => {
      const found = await sessions.findRefreshToken(refreshTokenHash(presented));
      return found ? { sessionId: found.session.id, userId: found.account.id, username: found.account.username } : null;
    });
  }

  /** Sign-out: revokes the session and records it; nothing happens (and nothing is recorded) when it had ended. */
  async signOut(session: { sessionId: string; userId: string; username: string }): Promise<void> {
    await this.store.inTransaction(async (sessions) => {
      if (!(await sessions.revoke(session.sessionId, 'signed-out'))) return;
      await this.audit.record({
        actor: { type: 'user', id: session.userId, name: session.username },
        action: 'auth.session.ended',
        subject: { userId: session.userId },
        details: { sessionId: session.sessionId, reason: 'signed-out' },
      });
    });
  }

  /**
   * Revokes every live session of an account, in the caller's transaction (the change that causes it records it,
   * with the count returned here). `except`: a session to keep.
   */
  revokeAllOf(tx: Queryable, userId: string, reason: SessionEndReason, except?: string): Promise<string[]> {
    return this.store.within(tx).revokeAllOf(userId, reason, except);
  }

  /** The session behind an access token, if it may be used now. */
  active(sessionId: string): Promise<ActiveSession | null> {
    return this.store.active(sessionId);
  }

  /** Which of these sessions may still be used. */
  activeAmong(sessionIds: readonly string[]): Promise<Set<string>> {
    return this.store.activeAmong(sessionIds);
  }

  liveCounts(): Promise<Map<string, number>> {
    return this.store.liveCounts();
  }

  /** Forgets long-ended sessions (called at each sign-in; a handful of rows for a team of people). */
  pruneEnded(): Promise<void> {
    return this.store.pruneEnded(KEEP_ENDED_SESSIONS_DAYS);
  }

  private async issue(
    account: VerifiedAccount,
    session: SessionRow,
    now: Date,
    refreshToken: string | null,
  ): Promise<IssuedSession> {
    const expiresIn = accessTokenSeconds(now, this.lifetimes.accessSeconds, session.expiresAt);
    const claims: SessionClaims = { sub: account.id, sid: session.id, username: account.username, role: account.role };
    const accessToken = await this.jwt.signAsync(claims, { expiresIn });
    return {
      sessionId: session.id,
      refreshToken,
      view: {
        accessToken,
        expiresIn,
        role: account.role,
        username: account.username,
        sessionExpiresAt: session.expiresAt.toISOString(),
        idleTimeoutSeconds: this.lifetimes.idleSeconds,
        passwordChangeRequired: account.mustChangePassword,
      },
    };
  }

  private ended(): HubException {
    return new HubException(HubErrorCode.UNAUTHENTICATED, SESSION_ENDED_MESSAGE);
  }
}
