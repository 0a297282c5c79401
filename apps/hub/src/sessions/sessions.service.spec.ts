import { JwtService } from '@nestjs/jwt';
import type { DataSource } from 'typeorm';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { HubConfig } from '../config/config.schema';
import type { SessionClaims, VerifiedAccount } from './authenticated-user';
import { REFRESH_REUSE_GRACE_SECONDS, refreshTokenHash, type SessionEndReason } from './session-policy.util';
import type { ActiveSession, PresentedRefreshToken, Queryable, SessionRow, SessionStore } from './session.repository';
import { SESSION_ENDED_MESSAGE, SessionsService, sessionLifetimesOf } from './sessions.service';

const ALICE: VerifiedAccount = {
  id: '11111111-1111-4111-8111-111111111111',
  username: 'alice',
  role: 'admin',
  mustChangePassword: false,
};

interface StoredSession extends SessionRow {
  revokedReason: SessionEndReason | null;
}

/** The session tables in memory, on a clock the test moves. Mirrors SessionRepository's SQL. */
class InMemorySessionStore implements SessionStore {
  clock = new Date('2026-12-01T08:00:00.000Z');
  readonly sessions = new Map<string, StoredSession>();
  readonly tokens = new Map<string, { sessionId: string; rotatedAt: Date | null }>();
  disabled = false;
  private nextId = 1;

  advance(seconds: number): void {
    this.clock = new Date(this.clock.getTime() + seconds * 1000);
  }

  now(): Promise<Date> {
    return Promise.resolve(this.clock);
  }

  insertSession(userId: string, idleExpiresAt: Date, expiresAt: Date): Promise<SessionRow> {
    const id = `00000000-0000-4000-8000-${String(this.nextId++).padStart(12, '0')}`;
    const row: StoredSession = {
      id,
      userId,
      createdAt: this.clock,
      idleExpiresAt,
      expiresAt,
      revokedAt: null,
      revokedReason: null,
    };
    this.sessions.set(id, row);
    return Promise.resolve(row);
  }

  insertRefreshToken(sessionId: string, tokenHash: string): Promise<void> {
    this.tokens.set(tokenHash, { sessionId, rotatedAt: null });
    return Promise.resolve();
  }

  findRefreshToken(tokenHash: string): Promise<PresentedRefreshToken | null> {
    const t = this.tokens.get(tokenHash);
    if (!t) return Promise.resolve(null);
    const session = this.sessions.get(t.sessionId)!;
    return Promise.resolve({
      tokenHash,
      rotatedAt: t.rotatedAt,
      session,
      account: { ...ALICE, disabled: this.disabled },
    });
  }

  markRotated(tokenHash: string, at: Date): Promise<void> {
    this.tokens.get(tokenHash)!.rotatedAt = at;
    return Promise.resolve();
  }

  slide(sessionId: string, _at: Date, idleExpiresAt: Date): Promise<void> {
    this.sessions.set(sessionId, { ...this.sessions.get(sessionId)!, idleExpiresAt });
    return Promise.resolve();
  }

  revoke(sessionId: string, reason: SessionEndReason): Promise<boolean> {
    const s = this.sessions.get(sessionId);
    if (!s || s.revokedAt) return Promise.resolve(false);
    this.sessions.set(sessionId, { ...s, revokedAt: this.clock, revokedReason: reason });
    return Promise.resolve(true);
  }

  async revokeAllOf(userId: string, reason: SessionEndReason, except?: string): Promise<string[]> {
    const ids: string[] = [];
    for (const s of this.sessions.values()) {
      if (s.userId !== userId || s.id === except || s.revokedAt || s.expiresAt <= this.clock) continue;
      await this.revoke(s.id, reason);
      ids.push(s.id);
    }
    return ids;
  }

  active(sessionId: string): Promise<ActiveSession | null> {
    const s = this.sessions.get(sessionId);
    if (!s || !this.live(s)) return Promise.resolve(null);
    return Promise.resolve({
      sessionId,
      userId: s.userId,
      username: ALICE.username,
      role: ALICE.role,
      mustChangePassword: false,
      expiresAt: s.expiresAt,
    });
  }

  activeAmong(ids: readonly string[]): Promise<Set<string>> {
    return Promise.resolve(new Set(ids.filter((id) => this.sessions.has(id) && this.live(this.sessions.get(id)!))));
  }

  liveCounts(): Promise<Map<string, number>> {
    return Promise.resolve(new Map());
  }

  pruneEnded(): Promise<void> {
    return Promise.resolve();
  }

  private live(s: StoredSession): boolean {
    return !s.revokedAt && s.idleExpiresAt > this.clock && s.expiresAt > this.clock && !this.disabled;
  }
}

class RecordingAudit {
  readonly events: AuditEvent[] = [];
  record(event: AuditEvent): Promise<void> {
    this.events.push(event);
    return Promise.resolve();
  }
}

const CONFIG = { sessionTtlSeconds: 900, accessTokenTtlSeconds: 300, sessionMaxSeconds: 3600 } as HubConfig;
const jwt = new JwtService({
  secret: 'a test signing key of at least 32 characters',
  signOptions: { algorithm: 'HS256' },
});

/** The service on the in-memory store: every transaction runs at once on it. */
class TestSessions extends SessionsService {
  constructor(
    private readonly memory: InMemorySessionStore,
    audit: RecordingAudit,
  ) {
    const db = { transaction: <T>(work: (tx: Queryable) => Promise<T>) => work(db as unknown as Queryable) };
    super(db as unknown as DataSource, jwt, audit as unknown as AuditTrail, CONFIG);
  }
  protected override store(): SessionStore {
    return this.memory;
  }
}

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
  let store: InMemorySessionStore;
  let audit: RecordingAudit;
  let sessions: TestSessions;

  beforeEach(() => {
    store = new InMemorySessionStore();
    audit = new RecordingAudit();
    sessions = new TestSessions(store, audit);
  });

  it('keeps each lifetime within the next', () => {
    expect(sessionLifetimesOf(CONFIG)).toEqual({ accessSeconds: 300, idleSeconds: 900, maxSeconds: 3600 });
    expect(
      sessionLifetimesOf({ sessionTtlSeconds: 120, accessTokenTtlSeconds: 300, sessionMaxSeconds: 60 } as HubConfig),
    ).toEqual({ accessSeconds: 60, idleSeconds: 60, maxSeconds: 60 });
  });

  it('starts a session: an access token naming it, a refresh token stored only as its hash', async () => {
    const issued = await sessions.start(ALICE);
    expect(issued.refreshToken).not.toBeNull();
    expect(store.tokens.has(refreshTokenHash(issued.refreshToken!))).toBe(true);
    expect([...store.tokens.keys()]).not.toContain(issued.refreshToken);
    const claims = await jwt.verifyAsync<SessionClaims & { exp: number; iat: number }>(issued.view.accessToken);
    expect(claims).toMatchObject({ sub: ALICE.id, sid: issued.sessionId, username: 'alice', role: 'admin' });
    expect(claims.exp - claims.iat).toBe(300);
    expect(issued.view).toMatchObject({
      expiresIn: 300,
      idleTimeoutSeconds: 900,
      sessionExpiresAt: '2026-12-01T09:00:00.000Z',
      passwordChangeRequired: false,
    });
  });

  it('rotates on refresh: the old token is spent, its successor works, the idle expiry slides', async () => {
    const first = await sessions.start(ALICE);
    store.advance(240);
    const second = await sessions.refresh(first.refreshToken!);
    expect(second.sessionId).toBe(first.sessionId);
    expect(second.refreshToken).not.toBe(first.refreshToken);
    expect(store.tokens.get(refreshTokenHash(first.refreshToken!))!.rotatedAt).toEqual(store.clock);
    expect(store.sessions.get(first.sessionId)!.idleExpiresAt).toEqual(new Date(store.clock.getTime() + 900_000));

    store.advance(240);
    const third = await sessions.refresh(second.refreshToken!);
    expect(third.refreshToken).not.toBeNull();
    expect(await sessions.active(first.sessionId)).not.toBeNull();
  });

  it('answers a concurrent refresh with the same token with an access token only', async () => {
    const first = await sessions.start(ALICE);
    await sessions.refresh(first.refreshToken!);
    store.advance(REFRESH_REUSE_GRACE_SECONDS - 1);
    const late = await sessions.refresh(first.refreshToken!);
    expect(late.refreshToken).toBeNull();
    expect(late.view.accessToken).toBeTruthy();
    expect(await sessions.active(first.sessionId)).not.toBeNull();
    expect(audit.events).toEqual([]);
  });

  it('revokes the whole family when a rotated token is replayed later, and records it', async () => {
    const first = await sessions.start(ALICE);
    const second = await sessions.refresh(first.refreshToken!);
    store.advance(REFRESH_REUSE_GRACE_SECONDS + 1);

    const replay = await refusal(sessions.refresh(first.refreshToken!));
    expect(replay.code).toBe(HubErrorCode.UNAUTHENTICATED);
    expect(replay.message).toBe(SESSION_ENDED_MESSAGE);
    expect(store.sessions.get(first.sessionId)).toMatchObject({ revokedReason: 'refresh-token-replayed' });
    // The legitimate successor dies with it: whoever holds it must sign in again.
    expect((await refusal(sessions.refresh(second.refreshToken!))).code).toBe(HubErrorCode.UNAUTHENTICATED);
    expect(await sessions.active(first.sessionId)).toBeNull();
    expect(audit.events).toEqual([
      expect.objectContaining({
        action: 'auth.session.revoked',
        subject: { userId: ALICE.id },
        details: expect.objectContaining({ sessionId: first.sessionId, reason: 'refresh-token-replayed' }) as object,
      }),
    ]);
  });

  it('refuses after the idle timeout, and at the fixed end even when refreshed throughout', async () => {
    const idle = await sessions.start(ALICE);
    store.advance(900);
    expect((await refusal(sessions.refresh(idle.refreshToken!))).message).toBe(SESSION_ENDED_MESSAGE);

    let current = await sessions.start(ALICE);
    for (let t = 0; t < 3600 - 240; t += 240) {
      store.advance(240);
      current = await sessions.refresh(current.refreshToken!);
      // The last access tokens are cut to the session's end.
      expect(current.view.expiresIn).toBeLessThanOrEqual(300);
    }
    expect(current.view.expiresIn).toBeLessThan(300);
    store.advance(240);
    expect((await refusal(sessions.refresh(current.refreshToken!))).message).toBe(SESSION_ENDED_MESSAGE);
    expect(audit.events).toEqual([]);
  });

  it('refuses a refresh for a disabled account, an unknown token and a malformed one alike', async () => {
    const s = await sessions.start(ALICE);
    store.disabled = true;
    const refusals = await Promise.all([
      refusal(sessions.refresh(s.refreshToken!)),
      refusal(sessions.refresh('x'.repeat(43))),
      refusal(sessions.refresh('not a token')),
      refusal(sessions.refresh(undefined)),
    ]);
    expect(new Set(refusals.map((r) => `${r.code} ${r.message}`))).toEqual(
      new Set([`UNAUTHENTICATED ${SESSION_ENDED_MESSAGE}`]),
    );
  });

  it('signs out once: the session ends, and a second sign-out records nothing', async () => {
    const s = await sessions.start(ALICE);
    const found = await sessions.sessionOfRefreshToken(s.refreshToken!);
    expect(found).toEqual({ sessionId: s.sessionId, userId: ALICE.id, username: 'alice' });
    await sessions.signOut(found!);
    await sessions.signOut(found!);
    expect(await sessions.active(s.sessionId)).toBeNull();
    expect(audit.events.map((e) => e.action)).toEqual(['auth.session.ended']);
    expect((await refusal(sessions.refresh(s.refreshToken!))).code).toBe(HubErrorCode.UNAUTHENTICATED);
  });

  it('revokes every live session of an account but the one kept', async () => {
    const a = await sessions.start(ALICE);
    const b = await sessions.start(ALICE);
    const c = await sessions.start(ALICE);
    const revoked = await sessions.revokeAllOf(
      store as unknown as Queryable,
      ALICE.id,
      'password-changed',
      c.sessionId,
    );
    expect(revoked.sort()).toEqual([a.sessionId, b.sessionId].sort());
    expect(await sessions.activeAmong([a.sessionId, b.sessionId, c.sessionId])).toEqual(new Set([c.sessionId]));
  });
});
