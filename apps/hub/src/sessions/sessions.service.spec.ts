import { JwtService } from '@nestjs/jwt';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { HubConfig } from '../config/config.schema';
import type { SessionClaims, VerifiedAccount } from './authenticated-user';
import { InMemorySessions } from './in-memory-sessions.test-util';
import { REFRESH_REUSE_GRACE_SECONDS, refreshTokenHash } from './session-policy.util';
import type { SessionRepository } from './session.repository';
import { SESSION_ENDED_MESSAGE, SessionsService, sessionLifetimesOf, type IssuedSession } from './sessions.service';

const ALICE: VerifiedAccount = {
  id: '11111111-1111-4111-8111-111111111111',
  username: 'alice',
  role: 'admin',
  mustChangePassword: false,
};

const CONFIG = { sessionTtlSeconds: 900, accessTokenTtlSeconds: 300, sessionMaxSeconds: 3600 } as HubConfig;
const jwt = new JwtService({
  secret: 'a test signing key of at least 32 characters',
  signOptions: { algorithm: 'HS256' },
});

async function refusal(p: Promise<unknown>): Promise<HubException> {
  try {
    await p;
  } catch (err) {
    if (err instanceof HubException) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('SessionsService', () => {
  let store: InMemorySessions;
  let written: { event: AuditEvent; tx: number | undefined }[];
  let sessions: SessionsService;
  /** The audit records kept: written outside a transaction, or in one that committed (as the ambient trail does). */
  const records = () => written.filter((r) => r.tx === undefined || store.didCommit(r.tx)).map((r) => r.event);
  /** A sign-in: the session starts in the transaction the caller opened. */
  const signIn = (): Promise<IssuedSession> => store.transaction((tx) => sessions.start(ALICE, tx));

  beforeEach(() => {
    store = new InMemorySessions();
    store.seedAccount(ALICE);
    written = [];
    const audit = {
      record: (event: AuditEvent) => Promise.resolve(void written.push({ event, tx: store.openTransaction() })),
    } as unknown as AuditTrail;
    sessions = new SessionsService(store as unknown as SessionRepository, jwt, audit, CONFIG);
  });

  it('keeps each lifetime within the next', () => {
    expect(sessionLifetimesOf(CONFIG)).toEqual({ accessSeconds: 300, idleSeconds: 900, maxSeconds: 3600 });
    expect(
      sessionLifetimesOf({ sessionTtlSeconds: 120, accessTokenTtlSeconds: 300, sessionMaxSeconds: 60 } as HubConfig),
    ).toEqual({ accessSeconds: 60, idleSeconds: 60, maxSeconds: 60 });
  });

  it('starts a session: an access token naming it, a refresh token stored only as its hash', async () => {
    const issued = await signIn();
    expect(issued.refreshToken).not.toBeNull();
    expect(store.tokenHashes).toEqual([refreshTokenHash(issued.refreshToken!)]);
    const claims = await jwt.verifyAsync<SessionClaims & { exp: number; iat: number }>(issued.view.accessToken);
    expect(claims).toMatchObject({ sub: ALICE.id, sid: issued.sessionId, username: 'alice', role: 'admin' });
    expect(claims.exp - claims.iat).toBe(300);
    expect(issued.view).toMatchObject({
      expiresIn: 300,
      idleTimeoutSeconds: 900,
      sessionExpiresAt: '2026-12-01T09:00:00.000Z',
      passwordChangeRequired: false,
    });
    expect(await sessions.active(issued.sessionId)).toMatchObject({ userId: ALICE.id, username: 'alice' });
  });

  it("starts nothing when the caller's transaction fails after the session was written", async () => {
    let started: IssuedSession | undefined;
    const failed = store.transaction(async (tx) => {
      started = await sessions.start(ALICE, tx);
      throw new Error('the sign-in record could not be written');
    });
    await expect(failed).rejects.toThrow('the sign-in record');
    expect(store.tokenHashes).toEqual([]);
    expect(await sessions.active(started!.sessionId)).toBeNull();
    expect((await refusal(sessions.refresh(started!.refreshToken!))).code).toBe(HubErrorCode.UNAUTHENTICATED);
  });

  it('rotates on refresh: the old token is spent, its successor works, the idle expiry slides', async () => {
    const first = await signIn();
    store.advance(240);
    const second = await sessions.refresh(first.refreshToken!);
    expect(second.sessionId).toBe(first.sessionId);
    expect(second.refreshToken).not.toBeNull();
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(store.token(refreshTokenHash(first.refreshToken!))!.rotatedAt).toEqual(store.clock);
    expect(store.session(first.sessionId)).toMatchObject({
      refreshedAt: store.clock,
      idleExpiresAt: new Date(store.clock.getTime() + 900_000),
    });

    store.advance(240);
    const third = await sessions.refresh(second.refreshToken!);
    expect(third.refreshToken).not.toBeNull();
    expect(await sessions.active(first.sessionId)).not.toBeNull();
    // Each refresh decided under the session's row lock.
    expect(store.lockLog.filter((k) => k.startsWith('session:'))).toEqual([
      `session:${first.sessionId}`,
      `session:${first.sessionId}`,
    ]);
  });

  it('answers a late refresh with the same token, within the grace window, with an access token only', async () => {
    const first = await signIn();
    await sessions.refresh(first.refreshToken!);
    store.advance(REFRESH_REUSE_GRACE_SECONDS - 1);
    const late = await sessions.refresh(first.refreshToken!);
    expect(late.refreshToken).toBeNull();
    expect(late.view.accessToken).toBeTruthy();
    expect(await sessions.active(first.sessionId)).not.toBeNull();
    expect(records()).toEqual([]);
  });

  it('decides two concurrent refreshes with one token one after the other: exactly one successor is issued', async () => {
    const first = await signIn();
    store.advance(60);
    const both = await Promise.all([sessions.refresh(first.refreshToken!), sessions.refresh(first.refreshToken!)]);
    const successors = both.map((b) => b.refreshToken).filter((t) => t !== null);
    expect(successors).toHaveLength(1);
    expect(both.every((b) => b.sessionId === first.sessionId && b.view.accessToken.length > 0)).toBe(true);
    // The spent token and its one successor; the successor still rotates.
    expect(store.tokenHashes.sort()).toEqual([first.refreshToken!, successors[0]!].map(refreshTokenHash).sort());
    expect((await sessions.refresh(successors[0])).refreshToken).not.toBeNull();
    expect(records()).toEqual([]);
  });

  it('revokes the whole family when a rotated token is replayed later, and records it', async () => {
    const first = await signIn();
    const second = await sessions.refresh(first.refreshToken!);
    store.advance(REFRESH_REUSE_GRACE_SECONDS + 1);

    const replay = await refusal(sessions.refresh(first.refreshToken!));
    expect(replay.code).toBe(HubErrorCode.UNAUTHENTICATED);
    expect(replay.message).toBe(SESSION_ENDED_MESSAGE);
    expect(store.session(first.sessionId)).toMatchObject({
      revokedAt: store.clock,
      revokedReason: 'refresh-token-replayed',
    });
    // The legitimate successor dies with it: whoever holds it must sign in again.
    expect((await refusal(sessions.refresh(second.refreshToken!))).code).toBe(HubErrorCode.UNAUTHENTICATED);
    expect(await sessions.active(first.sessionId)).toBeNull();
    expect(records()).toEqual([
      expect.objectContaining({
        action: 'auth.session.revoked',
        subject: { userId: ALICE.id },
        details: expect.objectContaining({ sessionId: first.sessionId, reason: 'refresh-token-replayed' }) as object,
      }),
    ]);
  });

  it('revokes the family once when a replay races the owner refreshing with the successor', async () => {
    const first = await signIn();
    const second = await sessions.refresh(first.refreshToken!);
    store.advance(REFRESH_REUSE_GRACE_SECONDS + 1);
    const [replay, owner] = await Promise.all([
      refusal(sessions.refresh(first.refreshToken!)),
      refusal(sessions.refresh(second.refreshToken!)),
    ]);
    expect([replay.message, owner.message]).toEqual([SESSION_ENDED_MESSAGE, SESSION_ENDED_MESSAGE]);
    expect(records().map((e) => e.action)).toEqual(['auth.session.revoked']);
  });

  it('refuses after the idle timeout, and at the fixed end even when refreshed throughout', async () => {
    const idle = await signIn();
    store.advance(900);
    expect((await refusal(sessions.refresh(idle.refreshToken!))).message).toBe(SESSION_ENDED_MESSAGE);
    expect(await sessions.active(idle.sessionId)).toBeNull();

    let current = await signIn();
    for (let t = 0; t < 3600 - 240; t += 240) {
      store.advance(240);
      current = await sessions.refresh(current.refreshToken!);
      // The last access tokens are cut to the session's end.
      expect(current.view.expiresIn).toBeLessThanOrEqual(300);
    }
    expect(current.view.expiresIn).toBeLessThan(300);
    store.advance(240);
    expect((await refusal(sessions.refresh(current.refreshToken!))).message).toBe(SESSION_ENDED_MESSAGE);
    expect(await sessions.active(current.sessionId)).toBeNull();
    expect(records()).toEqual([]);
  });

  it('refuses a refresh for a disabled account, an unknown token and a malformed one alike', async () => {
    const s = await signIn();
    store.accounts.get(ALICE.id)!.disabled = true;
    const refusals = await Promise.all([
      refusal(sessions.refresh(s.refreshToken!)),
      refusal(sessions.refresh('x'.repeat(43))),
      refusal(sessions.refresh('not a token')),
      refusal(sessions.refresh(undefined)),
    ]);
    expect(new Set(refusals.map((r) => `${r.code} ${r.message}`))).toEqual(
      new Set([`UNAUTHENTICATED ${SESSION_ENDED_MESSAGE}`]),
    );
    expect(await sessions.activeAmong([s.sessionId])).toEqual(new Set());
  });

  it('signs out once: the session ends, and a second sign-out records nothing', async () => {
    const s = await signIn();
    const found = await sessions.sessionOfRefreshToken(s.refreshToken!);
    expect(found).toEqual({ sessionId: s.sessionId, userId: ALICE.id, username: 'alice' });
    await sessions.signOut(found!);
    await sessions.signOut(found!);
    expect(await sessions.active(s.sessionId)).toBeNull();
    expect(store.session(s.sessionId)).toMatchObject({ revokedReason: 'signed-out' });
    expect(records().map((e) => e.action)).toEqual(['auth.session.ended']);
    expect((await refusal(sessions.refresh(s.refreshToken!))).code).toBe(HubErrorCode.UNAUTHENTICATED);
  });

  it("revokes every live session of an account but the one kept, in the account's transaction", async () => {
    const [a, b, c] = [await signIn(), await signIn(), await signIn()];
    const revoked = await store.transaction(async (tx) => {
      const ids = await sessions.revokeAllOf(tx, ALICE.id, 'password-changed', c.sessionId);
      // Not committed yet: every replica still accepts them until the change commits.
      expect(await sessions.activeAmong([a.sessionId, b.sessionId])).toEqual(new Set([a.sessionId, b.sessionId]));
      return ids;
    });
    expect(revoked.sort()).toEqual([a.sessionId, b.sessionId].sort());
    expect(await sessions.activeAmong([a.sessionId, b.sessionId, c.sessionId])).toEqual(new Set([c.sessionId]));
    expect(await sessions.liveCounts()).toEqual(new Map([[ALICE.id, 1]]));
  });

  it('keeps the sessions when the change that revoked them rolls back', async () => {
    const a = await signIn();
    const failed = store.transaction(async (tx) => {
      expect(await sessions.revokeAllOf(tx, ALICE.id, 'account-disabled')).toEqual([a.sessionId]);
      throw new Error('the change failed');
    });
    await expect(failed).rejects.toThrow('the change failed');
    expect(await sessions.active(a.sessionId)).not.toBeNull();
    expect((await sessions.refresh(a.refreshToken!)).refreshToken).not.toBeNull();
  });

  it('makes a refresh racing a password change wait for it, then refuses it', async () => {
    const a = await signIn();
    let refreshed: Promise<IssuedSession> | undefined;
    await store.transaction(async (tx) => {
      await sessions.revokeAllOf(tx, ALICE.id, 'password-changed');
      // The revocation holds the session's row until the change commits: the refresh waits behind it.
      refreshed = sessions.refresh(a.refreshToken!);
      await new Promise((resolve) => setImmediate(resolve));
    });
    expect((await refusal(refreshed!)).message).toBe(SESSION_ENDED_MESSAGE);
    expect(store.session(a.sessionId)).toMatchObject({ revokedReason: 'password-changed' });
  });

  it('forgets sessions ended long ago with their tokens, and keeps recent ones', async () => {
    const old = await signIn();
    store.advance(3600 + 31 * 86_400);
    const recent = await signIn();
    await sessions.pruneEnded();
    expect(store.session(old.sessionId)).toBeUndefined();
    expect(store.tokenHashes).toEqual([refreshTokenHash(recent.refreshToken!)]);
  });
});
