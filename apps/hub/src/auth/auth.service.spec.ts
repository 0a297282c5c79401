import { JwtService } from '@nestjs/jwt';
import { beforeEach, describe, expect, it } from 'vitest';
import type { OpenTransaction } from '../accounts/accounts.repository';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import type { HubConfig } from '../config/config.schema';
import type { VerifiedAccount } from '../sessions/authenticated-user';
import { InMemorySessions } from '../sessions/in-memory-sessions.test-util';
import type { SessionRepository } from '../sessions/session.repository';
import { SessionsService } from '../sessions/sessions.service';
import type { AuthRepository, SignInUnitOfWork } from './auth.repository';
import { AuthService } from './auth.service';

const ALICE: VerifiedAccount = {
  id: '11111111-1111-4111-8111-111111111111',
  username: 'alice',
  role: 'admin',
  mustChangePassword: true,
};

/**
 * Sign-in's transactions over the in-memory session tables (their transactions, READ COMMITTED and commit-on-success),
 * with `users.last_sign_in_at` kept beside them: a stamp written in a transaction lands only when it commits.
 */
class InMemorySignIns implements Pick<AuthRepository, 'inTransaction'> {
  readonly lastSignInAt = new Map<string, Date>();

  constructor(readonly tables: InMemorySessions) {}

  async inTransaction<T>(work: (tx: SignInUnitOfWork) => Promise<T>): Promise<T> {
    const stamps = new Map<string, Date>();
    const result = await this.tables.transaction((handle) =>
      work({
        transaction: handle as OpenTransaction,
        markSignedIn: (userId) => Promise.resolve(void stamps.set(userId, this.tables.clock)),
      }),
    );
    for (const [id, at] of stamps) this.lastSignInAt.set(id, at);
    return result;
  }
}

const CONFIG = { sessionTtlSeconds: 900, accessTokenTtlSeconds: 300, sessionMaxSeconds: 3600 } as HubConfig;
const jwt = new JwtService({
  secret: 'a test signing key of at least 32 characters',
  signOptions: { algorithm: 'HS256' },
});

describe('AuthService over its repository', () => {
  let tables: InMemorySessions;
  let signIns: InMemorySignIns;
  let written: { event: AuditEvent; tx: number | undefined }[];
  let failRecords: boolean;
  let prunes: (number | undefined)[];
  let auth: AuthService;
  const records = () => written.filter((r) => r.tx === undefined || tables.didCommit(r.tx));

  beforeEach(() => {
    tables = new InMemorySessions();
    tables.seedAccount(ALICE);
    signIns = new InMemorySignIns(tables);
    written = [];
    failRecords = false;
    prunes = [];
    const audit: AuditTrail = {
      record: (event: AuditEvent) => {
        if (failRecords) return Promise.reject(new Error('audit trail unavailable'));
        written.push({ event, tx: tables.openTransaction() });
        return Promise.resolve();
      },
    };
    const sessions = new SessionsService(tables as unknown as SessionRepository, jwt, audit, CONFIG);
    const prune = sessions.pruneEnded.bind(sessions);
    sessions.pruneEnded = () => {
      prunes.push(tables.openTransaction());
      return prune();
    };
    auth = new AuthService(signIns as unknown as AuthRepository, sessions, audit);
  });

  it('starts the session, stamps the sign-in and records it in one transaction, then prunes outside it', async () => {
    const issued = await auth.signIn(ALICE);
    const session = tables.session(issued.sessionId);
    expect(session).toMatchObject({ userId: ALICE.id, revokedAt: null });
    expect(signIns.lastSignInAt.get(ALICE.id)).toEqual(tables.clock);
    const [record] = records();
    expect(records()).toHaveLength(1);
    expect(record!.event).toMatchObject({
      action: 'auth.login.succeeded',
      subject: { userId: ALICE.id },
      details: { sessionId: issued.sessionId, changeRequired: true },
    });
    expect(record!.tx).toBeDefined();
    expect(prunes).toEqual([undefined]);
  });

  it("runs an account's change in the sign-in's transaction, before the session, and names the provider", async () => {
    const order: string[] = [];
    let changeTx: number | undefined;
    const issued = await auth.signIn(
      ALICE,
      { method: 'oidc', issuer: 'https://idp.example', replacedTemporary: true },
      () => {
        changeTx = tables.openTransaction();
        order.push(`change, sessions so far: ${tables.tokenHashes.length}`);
        return Promise.resolve();
      },
    );
    expect(order).toEqual(['change, sessions so far: 0']);
    expect(changeTx).toBe(records()[0]!.tx);
    expect(records()[0]!.event.details).toEqual({
      sessionId: issued.sessionId,
      changeRequired: true,
      method: 'oidc',
      issuer: 'https://idp.example',
      replacedTemporary: true,
    });
  });

  it('leaves no session and no stamp when the record cannot be written', async () => {
    failRecords = true;
    await expect(auth.signIn(ALICE)).rejects.toThrow('audit trail unavailable');
    expect(tables.tokenHashes).toEqual([]);
    expect(signIns.lastSignInAt.size).toBe(0);
    expect(prunes).toEqual([]);
  });

  it("leaves no session, stamp or record when the account's change fails", async () => {
    await expect(
      auth.signIn(ALICE, null, () => Promise.reject(new Error('the account changed meanwhile'))),
    ).rejects.toThrow('the account changed meanwhile');
    expect(tables.tokenHashes).toEqual([]);
    expect(signIns.lastSignInAt.size).toBe(0);
    expect(records()).toEqual([]);
  });

  it('two sign-ins at once each get a session of their own', async () => {
    const [a, b] = await Promise.all([auth.signIn(ALICE), auth.signIn(ALICE)]);
    expect(a.sessionId).not.toBe(b.sessionId);
    expect(tables.tokenHashes).toHaveLength(2);
    expect(records().map((r) => r.event.details?.sessionId)).toEqual([a.sessionId, b.sessionId]);
  });
});
