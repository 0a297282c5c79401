import * as argon2 from 'argon2';
import type { Repository } from 'typeorm';
import { describe, expect, it, vi } from 'vitest';
import type { AuditTrail } from '../audit/audit-trail';
import type { SessionsService } from '../sessions/sessions.service';
import { AccountsService, INVALID_CREDENTIALS_MESSAGE } from './accounts.service';
import type { LoginBackoffService } from './login-backoff.service';
import type { UserEntity } from './user.entity';

// The hashing library is the seam: the real argon2 runs, and the spy counts how often it hashes.
vi.mock('argon2', async (importOriginal) => {
  const actual = await importOriginal<typeof import('argon2')>();
  return { ...actual, hash: vi.fn(actual.hash) };
});

function serviceWithNoAccounts(): AccountsService {
  const noAccount = { where: () => noAccount, getOne: () => Promise.resolve(null) };
  const users = {
    findOne: () => Promise.resolve(null),
    createQueryBuilder: () => noAccount,
  } as unknown as Repository<UserEntity>;
  const audit = { record: () => Promise.resolve() } as unknown as AuditTrail;
  // The back-off's own behaviour is tested against PostgreSQL (login-backoff.int-spec.ts); here it never pauses.
  const backoff = {
    assertNotPaused: () => Promise.resolve(),
    recordFailure: () => Promise.resolve({ failures: 1, pausedForSeconds: 0 }),
    clear: () => Promise.resolve(),
  } as unknown as LoginBackoffService;
  return new AccountsService(users, audit, backoff, {} as SessionsService);
}

describe('AccountsService decoy hash', () => {
  it('is made at boot, so the first unknown-user login costs what every later one costs', async () => {
    const hash = vi.mocked(argon2.hash);
    const accounts = serviceWithNoAccounts();
    hash.mockClear();
    await accounts.onModuleInit();
    expect(hash).toHaveBeenCalledTimes(1);

    hash.mockClear();
    await expect(accounts.verifyCredentials('nobody', 'a wrong password')).rejects.toThrow(INVALID_CREDENTIALS_MESSAGE);
    // Only argon2.verify ran against the decoy: no hashing on the request path, on the first call as on later ones.
    expect(hash).not.toHaveBeenCalled();
  });
});
