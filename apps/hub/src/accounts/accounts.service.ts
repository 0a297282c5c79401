import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import * as argon2 from 'argon2';
import { Repository } from 'typeorm';
import { AuditTrail, SYSTEM_ACTOR, type AuditActor } from '../audit/audit-trail';
import type { AuthenticatedUser } from '../auth/authenticated-user';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { LoginBackoffService } from './login-backoff.service';
import { UserEntity, type Role } from './user.entity';

/** One message for every failed login, so an answer never tells whether the account exists. */
export const INVALID_CREDENTIALS_MESSAGE = 'Invalid username or password.';

export const MIN_PASSWORD_LENGTH = 12;

/** argon2id with OWASP's 2023 minimum (19 MiB, t=2, p=1). */
const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export interface UserView {
  id: string;
  username: string;
  role: Role;
  disabled: boolean;
  createdAt: string;
}

export function toUserView(u: UserEntity): UserView {
  return { id: u.id, username: u.username, role: u.role, disabled: u.disabled, createdAt: u.createdAt.toISOString() };
}

@Injectable()
export class AccountsService implements OnModuleInit {
  private readonly logger = new Logger(AccountsService.name);
  /** Verified against when the username is unknown, so both failures cost the same time. */
  private decoyHash: Promise<string> | undefined;

  constructor(
    @InjectRepository(UserEntity) private readonly users: Repository<UserEntity>,
    private readonly audit: AuditTrail,
    private readonly backoff: LoginBackoffService,
  ) {}

  /**
   * Makes the decoy hash at boot: made lazily, the first unknown-user login after each start would cost one extra
   * hash, telling the first caller that the name it tried does not exist.
   */
  async onModuleInit(): Promise<void> {
    await this.decoy();
  }

  async create(username: string, password: string, role: Role, actor: AuditActor = SYSTEM_ACTOR): Promise<UserView> {
    if (password.length < MIN_PASSWORD_LENGTH || password.length > 256) {
      throw new HubException(
        HubErrorCode.VALIDATION_FAILED,
        `password must be ${MIN_PASSWORD_LENGTH} to 256 characters long`,
      );
    }
    const existing = await this.users.findOne({ where: { username } });
    if (existing) throw new HubException(HubErrorCode.USERNAME_TAKEN, `The username "${username}" is already taken.`);
    const passwordHash = await argon2.hash(password, ARGON2_OPTIONS);
    // The record joins the transaction that creates the account: both commit, or neither.
    const saved = await this.users.manager.transaction(async (tx) => {
      const users = tx.getRepository(UserEntity);
      const created = await users.save(users.create({ username, passwordHash, role }));
      await this.audit.record({
        actor,
        action: 'account.created',
        subject: { userId: created.id },
        details: { username, role },
      });
      return created;
    });
    return toUserView(saved);
  }

  async list(): Promise<UserView[]> {
    return (await this.users.find({ order: { createdAt: 'ASC' } })).map(toUserView);
  }

  async update(id: string, change: { role?: Role; disabled?: boolean }, actor: AuditActor): Promise<UserView> {
    const user = await this.users.findOne({ where: { id } });
    if (!user) throw new HubException(HubErrorCode.NOT_FOUND, `No account with id ${id}.`);
    if (actor.type === 'user' && actor.id === id && (change.disabled === true || change.role === 'auditor')) {
      throw new HubException(HubErrorCode.CONFLICT, 'An administrator cannot disable or demote their own account.');
    }
    const before = { role: user.role, disabled: user.disabled };
    if (change.role !== undefined) user.role = change.role;
    if (change.disabled !== undefined) user.disabled = change.disabled;
    const saved = await this.users.manager.transaction(async (tx) => {
      const updated = await tx.getRepository(UserEntity).save(user);
      await this.audit.record({
        actor,
        action: 'account.updated',
        subject: { userId: id },
        details: { before, after: { role: updated.role, disabled: updated.disabled } },
      });
      return updated;
    });
    return toUserView(saved);
  }

  async findActive(id: string): Promise<UserEntity | null> {
    return this.users.findOne({ where: { id, disabled: false } });
  }

  async count(): Promise<number> {
    return this.users.count();
  }

  /**
   * Checks a password; every failure is the same error, and costs the same hashing work. While sign-in is paused
   * for the username (too many consecutive failures, from any address), every attempt is refused with 429 before
   * the password is looked at, for existing and unknown names alike.
   */
  async verifyCredentials(username: string, password: string): Promise<AuthenticatedUser> {
    await this.backoff.assertNotPaused(username);
    const user = await this.users.findOne({ where: { username } });
    const hash = user?.passwordHash ?? (await this.decoy());
    const ok = await argon2.verify(hash, password).catch(() => false);
    if (!user || !ok || user.disabled) {
      await this.audit.record({
        actor: { type: 'user', id: user?.id ?? 'unknown', name: username },
        action: 'auth.login.failed',
        details: { username, reason: !user ? 'unknown-user' : user.disabled ? 'disabled' : 'wrong-password' },
      });
      const { failures, pausedForSeconds } = await this.backoff.recordFailure(username);
      if (pausedForSeconds > 0) {
        await this.audit.record({
          actor: { type: 'system', id: 'login-backoff' },
          action: 'auth.login.paused',
          ...(user ? { subject: { userId: user.id } } : {}),
          details: { username, consecutiveFailures: failures, pausedForSeconds },
        });
      }
      throw new HubException(HubErrorCode.INVALID_CREDENTIALS, INVALID_CREDENTIALS_MESSAGE);
    }
    await this.backoff.clear(username);
    await this.audit.record({
      actor: { type: 'user', id: user.id, name: user.username },
      action: 'auth.login.succeeded',
      subject: { userId: user.id },
    });
    return { id: user.id, username: user.username, role: user.role };
  }

  /** First boot only: creates the configured administrator when no account exists yet. */
  async ensureFirstAdmin(username: string | undefined, password: string | undefined): Promise<boolean> {
    if (!username || !password) return false;
    if ((await this.count()) > 0) return false;
    await this.create(username, password, 'admin');
    this.logger.log(`created the first administrator "${username}"`);
    return true;
  }

  private decoy(): Promise<string> {
    this.decoyHash ??= argon2.hash('decoy password that matches nothing', ARGON2_OPTIONS);
    return this.decoyHash;
  }
}
