import { randomUUID } from 'node:crypto';
import * as argon2 from 'argon2';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { AuthenticatedUser } from '../sessions/authenticated-user';
import type { Queryable } from '../sessions/session.repository';
import type { SessionEndReason } from '../sessions/session-policy.util';
import type { IssuedSession, SessionsService } from '../sessions/sessions.service';
import { AccountUniquenessViolated, type AccountsRepository, type AccountsUnitOfWork } from './accounts.repository';
import { AccountsService, INVALID_CREDENTIALS_MESSAGE, WRONG_CURRENT_PASSWORD } from './accounts.service';
import type { LoginBackoffService } from './login-backoff.service';
import { UserEntity } from './user.entity';

// The hashing library is the seam for the decoy test: the real argon2 runs, and the spy counts how often it hashes.
vi.mock('argon2', async (importOriginal) => {
  const actual = await importOriginal<typeof import('argon2')>();
  return { ...actual, hash: vi.fn(actual.hash) };
});

/** What AccountsService reads and writes through (the back-off's and the renames' queries have their own services). */
type RepositoryPort = Pick<
  AccountsRepository,
  'findById' | 'findByName' | 'findByOidcIdentity' | 'list' | 'count' | 'inTransaction' | 'saveWithin'
>;

/**
 * The accounts table in memory, with the two unique indexes of the real one (lower(username); issuer and subject) and
 * transactions that commit only when their work resolves. Each unit of work hands out its own `sessions` handle, so
 * a spec can tell whether the session store ran inside the account's transaction.
 */
class InMemoryAccounts implements RepositoryPort {
  rows = new Map<string, UserEntity>();
  /** The `sessions` handle of every transaction opened, in order. */
  readonly transactions: Queryable[] = [];
  /** Another writer wins the next insert's race (the unique index refuses it after the service's own check). */
  raceNextInsert = false;

  findById(id: string): Promise<UserEntity | null> {
    return Promise.resolve(copy(this.rows.get(id)));
  }

  findByName(username: string): Promise<UserEntity | null> {
    const found = [...this.rows.values()].find((u) => u.username.toLowerCase() === username.toLowerCase());
    return Promise.resolve(copy(found));
  }

  findByOidcIdentity(issuer: string, subject: string): Promise<UserEntity | null> {
    const found = [...this.rows.values()].find((u) => u.oidcIssuer === issuer && u.oidcSubject === subject);
    return Promise.resolve(copy(found));
  }

  list(): Promise<UserEntity[]> {
    return Promise.resolve([...this.rows.values()].map((u) => copy(u)!));
  }

  count(): Promise<number> {
    return Promise.resolve(this.rows.size);
  }

  async inTransaction<T>(work: (tx: AccountsUnitOfWork) => Promise<T>): Promise<T> {
    const staged = new Map([...this.rows].map(([id, u]) => [id, copy(u)!]));
    const sessions: Queryable = { query: () => Promise.reject(new Error('the double runs no SQL')) };
    this.transactions.push(sessions);
    const result = await work({
      insert: (account) => Promise.resolve(this.insertInto(staged, account)),
      save: (user) => Promise.resolve(saveInto(staged, user)),
      pendingRenames: () => Promise.reject(new Error('AccountsService reads no renames')),
      markRenameRecorded: () => Promise.reject(new Error('AccountsService records no renames')),
      sessions,
    });
    this.rows = staged;
    return result;
  }

  saveWithin(_tx: unknown, user: UserEntity): Promise<UserEntity> {
    return Promise.resolve(saveInto(this.rows, user));
  }

  /** An account as a test's given state, outside any transaction. */
  seed(fields: Partial<UserEntity> & { username: string }): UserEntity {
    return this.insertInto(this.rows, { passwordHash: 'unused', role: 'admin', ...fields });
  }

  private insertInto(
    rows: Map<string, UserEntity>,
    account: Partial<UserEntity> & Pick<UserEntity, 'username' | 'passwordHash' | 'role'>,
  ): UserEntity {
    if (this.raceNextInsert) {
      this.raceNextInsert = false;
      throw new AccountUniquenessViolated(new Error('duplicate key value violates unique constraint'));
    }
    const user = Object.assign(new UserEntity(), {
      id: randomUUID(),
      disabled: false,
      mustChangePassword: false,
      oidcIssuer: null,
      oidcSubject: null,
      lastSignInAt: null,
      createdAt: new Date(),
      updatedAt: new Date(),
      ...account,
    });
    return saveInto(rows, user);
  }
}

function copy(user: UserEntity | undefined): UserEntity | null {
  return user ? Object.assign(new UserEntity(), user) : null;
}

function saveInto(rows: Map<string, UserEntity>, user: UserEntity): UserEntity {
  for (const other of rows.values()) {
    if (other.id === user.id) continue;
    const sameName = other.username.toLowerCase() === user.username.toLowerCase();
    const sameIdentity =
      user.oidcIssuer !== null && other.oidcIssuer === user.oidcIssuer && other.oidcSubject === user.oidcSubject;
    if (sameName || sameIdentity) throw new AccountUniquenessViolated(new Error('duplicate key'));
  }
  rows.set(user.id, copy(user)!);
  return copy(user)!;
}

/** What the service asked of the session store, with the transaction handle it passed. */
interface SessionCall {
  readonly call: 'revokeAllOf' | 'start';
  readonly tx: Queryable;
  readonly userId: string;
  readonly reason?: SessionEndReason;
}

function harness() {
  const accounts = new InMemoryAccounts();
  const records: AuditEvent[] = [];
  const audit = { record: (e: AuditEvent) => Promise.resolve(void records.push(e)) } as unknown as AuditTrail;
  const failures: string[] = [];
  // The back-off's own behaviour is tested against PostgreSQL (login-backoff.int-spec.ts); here it never pauses.
  const backoff = {
    assertNotPaused: () => Promise.resolve(),
    recordFailure: (username: string) => {
      failures.push(username);
      return Promise.resolve({ failures: failures.length, pausedForSeconds: 0 });
    },
    clear: () => Promise.resolve(),
  } as unknown as LoginBackoffService;
  const sessionCalls: SessionCall[] = [];
  const sessions = {
    revokeAllOf: (tx: Queryable, userId: string, reason: SessionEndReason) => {
      sessionCalls.push({ call: 'revokeAllOf', tx, userId, reason });
      return Promise.resolve(['s1', 's2']);
    },
    start: (account: { id: string }, tx: Queryable) => {
      sessionCalls.push({ call: 'start', tx, userId: account.id });
      return Promise.resolve({ sessionId: 'new-session', refreshToken: 'r', view: {} } as IssuedSession);
    },
    liveCounts: () => Promise.resolve(new Map<string, number>()),
  } as unknown as SessionsService;
  const service = new AccountsService(accounts as unknown as AccountsRepository, audit, backoff, sessions);
  return { service, accounts, records, failures, sessionCalls };
}

const ADMIN_ACTOR = { type: 'user', id: 'someone-else', name: 'root' } as const;

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const err: unknown = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof HubException)) throw new Error(`expected a HubException, got ${String(err)}`);
  return err.code;
}

describe('AccountsService decoy hash', () => {
  it('is made at boot, so the first unknown-user login costs what every later one costs', async () => {
    const hash = vi.mocked(argon2.hash);
    const { service } = harness();
    hash.mockClear();
    await service.onModuleInit();
    expect(hash).toHaveBeenCalledTimes(1);

    hash.mockClear();
    await expect(service.verifyCredentials('nobody', 'a wrong password')).rejects.toThrow(INVALID_CREDENTIALS_MESSAGE);
    // Only argon2.verify ran against the decoy: no hashing on the request path, on the first call as on later ones.
    expect(hash).not.toHaveBeenCalled();
  });
});

describe('AccountsService over its repository', () => {
  let h: ReturnType<typeof harness>;
  beforeEach(() => {
    h = harness();
  });

  it('creates an account with its record, and refuses a name taken in another letter case, naming it', async () => {
    const created = await h.service.create('Alice', 'a long enough password', 'auditor', ADMIN_ACTOR);
    expect(created).toMatchObject({ username: 'Alice', role: 'auditor', mustChangePassword: false });
    expect(h.records.map((r) => r.action)).toEqual(['account.created']);

    const taken = h.service.create('alice', 'another long password', 'admin', ADMIN_ACTOR);
    await expect(taken).rejects.toThrow('as "Alice"');
    expect(await codeOf(h.service.create('ALICE', 'another long password', 'admin'))).toBe(HubErrorCode.USERNAME_TAKEN);
    expect(await h.accounts.count()).toBe(1);
  });

  it('answers USERNAME_TAKEN when another writer wins the race at the unique index, and stores nothing', async () => {
    h.accounts.raceNextInsert = true;
    expect(await codeOf(h.service.create('bob', 'a long enough password', 'admin'))).toBe(HubErrorCode.USERNAME_TAKEN);
    expect(await h.accounts.count()).toBe(0);
    expect(h.records).toEqual([]);
  });

  it('revokes the sessions of a disabled or demoted account inside the transaction that changes it', async () => {
    const bob = h.accounts.seed({ username: 'bob', role: 'admin' });
    await h.service.update(bob.id, { disabled: true }, ADMIN_ACTOR);
    await h.service.update(bob.id, { disabled: false }, ADMIN_ACTOR);
    await h.service.update(bob.id, { role: 'auditor' }, ADMIN_ACTOR);

    expect(h.sessionCalls.map((c) => [c.call, c.reason])).toEqual([
      ['revokeAllOf', 'account-disabled'],
      ['revokeAllOf', 'role-changed'],
    ]);
    // The first and the third change's own transactions, not a connection outside them.
    expect(h.sessionCalls[0]?.tx).toBe(h.accounts.transactions[0]);
    expect(h.sessionCalls[1]?.tx).toBe(h.accounts.transactions[2]);
    expect(h.records.map((r) => r.details?.revokedSessions)).toEqual([2, 0, 2]);
    expect(await h.accounts.findById(bob.id)).toMatchObject({ disabled: false, role: 'auditor' });
  });

  it('refuses to let an administrator disable or demote their own account', async () => {
    const me = h.accounts.seed({ username: 'me', role: 'admin' });
    const self = { type: 'user', id: me.id, name: 'me' } as const;
    expect(await codeOf(h.service.update(me.id, { disabled: true }, self))).toBe(HubErrorCode.CONFLICT);
    expect(await codeOf(h.service.update(me.id, { role: 'auditor' }, self))).toBe(HubErrorCode.CONFLICT);
    expect(h.accounts.transactions).toHaveLength(0);
  });

  it('changes one’s own password: ends every session and starts the new one in the same transaction', async () => {
    // Cheap parameters for the given state (verify reads them from the hash); the service hashes the new one its way.
    const hash = await argon2.hash('the current password', { memoryCost: 1024, timeCost: 1 });
    const carol = h.accounts.seed({ username: 'carol', passwordHash: hash, mustChangePassword: true });
    const caller: AuthenticatedUser = { ...carol, sessionId: 'old-session' };

    const wrong = h.service.changeOwnPassword(caller, 'not the password', 'a brand new password');
    await expect(wrong).rejects.toThrow(WRONG_CURRENT_PASSWORD);
    expect(h.failures).toEqual(['carol']);
    expect(h.sessionCalls).toEqual([]);

    const issued = await h.service.changeOwnPassword(caller, 'the current password', 'a brand new password');
    expect(issued.sessionId).toBe('new-session');
    const [tx] = h.accounts.transactions;
    expect(h.sessionCalls).toEqual([
      { call: 'revokeAllOf', tx, userId: carol.id, reason: 'password-changed' },
      { call: 'start', tx, userId: carol.id },
    ]);
    const stored = await h.accounts.findById(carol.id);
    expect(stored?.mustChangePassword).toBe(false);
    expect(await argon2.verify(stored!.passwordHash, 'a brand new password')).toBe(true);
    expect(h.records.at(-1)).toMatchObject({
      action: 'account.password.changed',
      details: { wasTemporary: true, revokedSessions: 2, sessionId: 'new-session' },
    });
  }, 30_000);

  it('answers CONFLICT when the identity to link is already another account’s, and keeps the link as it was', async () => {
    h.accounts.seed({ username: 'dave', oidcIssuer: 'https://idp', oidcSubject: 'sub-1' });
    const erin = h.accounts.seed({ username: 'erin' });
    const linking = h.service.linkOidcIdentity(erin.id, { issuer: 'https://idp', subject: 'sub-1' }, ADMIN_ACTOR);
    expect(await codeOf(linking)).toBe(HubErrorCode.CONFLICT);
    expect(await h.accounts.findById(erin.id)).toMatchObject({ oidcIssuer: null, oidcSubject: null });
    expect(h.records).toEqual([]);
  });

  it('names an account created for an identity after the provider’s suggestion, with a suffix when taken', async () => {
    h.accounts.seed({ username: 'frank' });
    const created = await h.service.createForOidcIdentity({ issuer: 'https://idp', subject: 's' }, 'frank', 'auditor');
    expect(created).toMatchObject({
      username: 'frank-2',
      role: 'auditor',
      oidcIssuer: 'https://idp',
      oidcSubject: 's',
    });
    expect(await h.service.findByOidcIdentity({ issuer: 'https://idp', subject: 's' })).toMatchObject({
      id: created.id,
    });
  });
});
