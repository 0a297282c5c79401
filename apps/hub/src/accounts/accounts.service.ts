import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import * as argon2 from 'argon2';
import { AuditTrail, SYSTEM_ACTOR, type AuditActor } from '../audit/audit-trail';
import type { AuthenticatedUser, VerifiedAccount } from '../sessions/authenticated-user';
import type { SessionEndReason } from '../sessions/session-policy.util';
import { SessionsService, type IssuedSession } from '../sessions/sessions.service';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { MIN_PASSWORD_LENGTH, passwordProblem, usernameProblem } from './account-rules.util';
import {
  AccountsRepository,
  AccountUniquenessViolated,
  type AccountsUnitOfWork,
  type OpenTransaction,
} from './accounts.repository';
import { LoginBackoffService } from './login-backoff.service';
import type { Role, UserEntity } from './user.entity';

export { MIN_PASSWORD_LENGTH };

/** One message for every failed login, so an answer never tells whether the account exists. */
export const INVALID_CREDENTIALS_MESSAGE = 'Invalid username or password.';

/** The wrong current password of a password change: a 400 naming the field (a 401 would end the console's session). */
export const WRONG_CURRENT_PASSWORD = 'currentPassword is not the password of this account';

/** argon2id with OWASP's 2023 minimum (19 MiB, t=2, p=1). */
const ARGON2_OPTIONS = { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export interface UserView {
  id: string;
  username: string;
  role: Role;
  disabled: boolean;
  /** A temporary password is set: the next sign-in may only change it. */
  mustChangePassword: boolean;
  createdAt: string;
  lastSignInAt: string | null;
  /** Sessions that may be used now (signed in, not signed out, not expired). */
  liveSessions: number;
  /** The identity-provider identity this account signs in with (OIDC, ADR 0010), if linked. */
  oidcIdentity: OidcIdentity | null;
}

/** An identity at an OpenID Connect provider: its issuer and the `sub` it gives the person. */
export interface OidcIdentity {
  issuer: string;
  subject: string;
}

export function toUserView(u: UserEntity, liveSessions = 0): UserView {
  return {
    id: u.id,
    username: u.username,
    role: u.role,
    disabled: u.disabled,
    mustChangePassword: u.mustChangePassword,
    createdAt: u.createdAt.toISOString(),
    lastSignInAt: u.lastSignInAt ? new Date(u.lastSignInAt).toISOString() : null,
    liveSessions,
    oidcIdentity: u.oidcIssuer && u.oidcSubject ? { issuer: u.oidcIssuer, subject: u.oidcSubject } : null,
  };
}

export interface CreateAccountOptions {
  /** The password is temporary: the first sign-in must change it. */
  mustChangePassword?: boolean;
}

/**
 * A valid username from the name a provider suggests (preferred_username, often an e-mail address): characters
 * outside the username rules become '-'; too short a name falls back to one made from the subject; later attempts
 * add `-2`, `-3`, …
 */
export function oidcUsername(suggested: string, subject: string, attempt: number): string {
  let base = suggested.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^-+|-+$/g, '');
  if (base.length < 3) base = `oidc-${subject.replace(/[^A-Za-z0-9._-]/g, '-')}`;
  const suffix = attempt > 1 ? `-${attempt}` : '';
  return base.slice(0, 64 - suffix.length) + suffix;
}

function validationFailed(problem: string): HubException {
  return new HubException(HubErrorCode.VALIDATION_FAILED, problem, [problem]);
}

/**
 * People's accounts. Every change commits with its audit record and, where it changes what a session may do
 * (disabled, role, password), with the revocation of the account's sessions (ADR 0010).
 */
@Injectable()
export class AccountsService implements OnModuleInit {
  private readonly logger = new Logger(AccountsService.name);
  /** Verified against when the username is unknown, so both failures cost the same time. */
  private decoyHash: Promise<string> | undefined;

  constructor(
    private readonly users: AccountsRepository,
    private readonly audit: AuditTrail,
    private readonly backoff: LoginBackoffService,
    private readonly sessions: SessionsService,
  ) {}

  /**
   * Makes the decoy hash at boot: made lazily, the first unknown-user login after each start would cost one extra
   * hash, telling the first caller that the name it tried does not exist.
   */
  async onModuleInit(): Promise<void> {
    await this.decoy();
  }

  async create(
    username: string,
    password: string,
    role: Role,
    actor: AuditActor = SYSTEM_ACTOR,
    options: CreateAccountOptions = {},
  ): Promise<UserView> {
    const problem = usernameProblem(username) ?? passwordProblem('password', password);
    if (problem) throw validationFailed(problem);
    const existing = await this.findByName(username);
    if (existing) throw this.taken(username, existing.username);
    const passwordHash = await argon2.hash(password, ARGON2_OPTIONS);
    const mustChangePassword = options.mustChangePassword === true;
    try {
      // The record joins the transaction that creates the account: both commit, or neither.
      const saved = await this.users.inTransaction(async (tx) => {
        const created = await tx.insert({ username, passwordHash, role, mustChangePassword });
        await this.audit.record({
          actor,
          action: 'account.created',
          subject: { userId: created.id },
          details: { username, role, temporary: mustChangePassword },
        });
        return created;
      });
      return toUserView(saved);
    } catch (err) {
      // Two administrators creating "alice" and "Alice" at once: the unique index on lower(username) decides.
      if (err instanceof AccountUniquenessViolated) throw this.taken(username, username);
      throw err;
    }
  }

  async list(): Promise<UserView[]> {
    const [users, live] = await Promise.all([this.users.list(), this.sessions.liveCounts()]);
    return users.map((u) => toUserView(u, live.get(u.id) ?? 0));
  }

  /**
   * Changes an account's role or disables/enables it. Disabling, or changing the role, ends every session of the
   * account in the same transaction: the person signs in again, under the new role.
   */
  async update(id: string, change: { role?: Role; disabled?: boolean }, actor: AuditActor): Promise<UserView> {
    const user = await this.existing(id);
    if (actor.type === 'user' && actor.id === id && (change.disabled === true || change.role === 'auditor')) {
      throw new HubException(HubErrorCode.CONFLICT, 'An administrator cannot disable or demote their own account.');
    }
    const before = { role: user.role, disabled: user.disabled };
    if (change.role !== undefined) user.role = change.role;
    if (change.disabled !== undefined) user.disabled = change.disabled;
    const endReason: SessionEndReason | null =
      user.disabled && !before.disabled ? 'account-disabled' : user.role !== before.role ? 'role-changed' : null;
    const saved = await this.users.inTransaction(async (tx) => {
      const updated = await tx.save(user);
      const revoked = endReason ? await this.sessions.revokeAllOf(tx.sessions, id, endReason) : [];
      await this.audit.record({
        actor,
        action: 'account.updated',
        subject: { userId: id },
        details: {
          before,
          after: { role: updated.role, disabled: updated.disabled },
          revokedSessions: revoked.length,
        },
      });
      return updated;
    });
    return toUserView(saved);
  }

  /**
   * An administrator sets a temporary password: every session of the account ends, and its next sign-in may only
   * change the password. Not for one's own account (that is a password change, which needs the current one).
   */
  async resetPassword(id: string, temporaryPassword: string, actor: AuditActor): Promise<UserView> {
    const problem = passwordProblem('password', temporaryPassword);
    if (problem) throw validationFailed(problem);
    const user = await this.existing(id);
    if (actor.type === 'user' && actor.id === id) {
      throw new HubException(
        HubErrorCode.CONFLICT,
        'Change your own password with POST /api/auth/password (it asks for the current one), not by a reset.',
      );
    }
    const passwordHash = await argon2.hash(temporaryPassword, ARGON2_OPTIONS);
    const saved = await this.users.inTransaction(async (tx) => {
      const updated = await setPassword(tx, user, passwordHash, true);
      const revoked = await this.sessions.revokeAllOf(tx.sessions, id, 'password-reset');
      await this.audit.record({
        actor,
        action: 'account.password.reset',
        subject: { userId: id },
        details: { username: user.username, temporary: true, revokedSessions: revoked.length },
      });
      return updated;
    });
    return toUserView(saved);
  }

  /** Ends every session of an account now (a lost laptop, a suspicion), without changing anything else. */
  async revokeSessions(id: string, actor: AuditActor): Promise<UserView> {
    const user = await this.existing(id);
    await this.users.inTransaction(async (tx) => {
      const revoked = await this.sessions.revokeAllOf(tx.sessions, id, 'revoked-by-administrator');
      await this.audit.record({
        actor,
        action: 'account.sessions.revoked',
        subject: { userId: id },
        details: { username: user.username, revokedSessions: revoked.length },
      });
    });
    return toUserView(user, 0);
  }

  /**
   * Changes one's own password, checking the current one (paused and counted like a sign-in, so a stolen session
   * cannot guess it at leisure). Ends every session of the account and starts a new one for the caller, in one
   * transaction with the record.
   */
  async changeOwnPassword(caller: AuthenticatedUser, current: string, next: string): Promise<IssuedSession> {
    const problem = passwordProblem('newPassword', next);
    if (problem) throw validationFailed(problem);
    await this.backoff.assertNotPaused(caller.username);
    const user = await this.existing(caller.id);
    if (!(await argon2.verify(user.passwordHash, current).catch(() => false))) {
      await this.audit.record({
        actor: { type: 'user', id: user.id, name: user.username },
        action: 'account.password.change.failed',
        subject: { userId: user.id },
        details: { reason: 'wrong-current-password', sessionId: caller.sessionId },
      });
      await this.backoff.recordFailure(user.username);
      throw validationFailed(WRONG_CURRENT_PASSWORD);
    }
    if (next === current) throw validationFailed('newPassword must differ from the current password');
    const passwordHash = await argon2.hash(next, ARGON2_OPTIONS);
    const wasRequired = user.mustChangePassword;
    return this.users.inTransaction(async (tx) => {
      const updated = await setPassword(tx, user, passwordHash, false);
      const revoked = await this.sessions.revokeAllOf(tx.sessions, user.id, 'password-changed');
      const issued = await this.sessions.start(
        { id: updated.id, username: updated.username, role: updated.role, mustChangePassword: false },
        tx.sessions,
      );
      await this.audit.record({
        actor: { type: 'user', id: user.id, name: user.username },
        action: 'account.password.changed',
        subject: { userId: user.id },
        details: { wasTemporary: wasRequired, revokedSessions: revoked.length, sessionId: issued.sessionId },
      });
      return issued;
    });
  }

  /**
   * Links an account to an identity at the identity provider: that person may then sign in through it (ADR 0010).
   * An identity opens one account only; linking another account to it is a conflict. Replaces an earlier link.
   */
  async linkOidcIdentity(id: string, identity: OidcIdentity, actor: AuditActor): Promise<UserView> {
    const user = await this.existing(id);
    const before = toUserView(user).oidcIdentity;
    user.oidcIssuer = identity.issuer;
    user.oidcSubject = identity.subject;
    try {
      const saved = await this.users.inTransaction(async (tx) => {
        const updated = await tx.save(user);
        await this.audit.record({
          actor,
          action: 'account.oidc.linked',
          subject: { userId: id },
          details: { username: user.username, issuer: identity.issuer, oidcSubject: identity.subject, before },
        });
        return updated;
      });
      return toUserView(saved);
    } catch (err) {
      if (err instanceof AccountUniquenessViolated) {
        throw new HubException(
          HubErrorCode.CONFLICT,
          `The identity ${identity.subject} at ${identity.issuer} is already linked to another account.`,
        );
      }
      throw err;
    }
  }

  /** Removes the link: the account can no longer sign in through the identity provider. */
  async unlinkOidcIdentity(id: string, actor: AuditActor): Promise<UserView> {
    const user = await this.existing(id);
    const before = toUserView(user).oidcIdentity;
    user.oidcIssuer = null;
    user.oidcSubject = null;
    const saved = await this.users.inTransaction(async (tx) => {
      const updated = await tx.save(user);
      await this.audit.record({
        actor,
        action: 'account.oidc.unlinked',
        subject: { userId: id },
        details: { username: user.username, before },
      });
      return updated;
    });
    return toUserView(saved);
  }

  /**
   * Forgets an account's temporary password when its person signs in through the identity provider: the provider
   * vouched for them, and the temporary password (handed over out of band, never their own) must neither block that
   * session nor stay usable. A random password replaces it, in the caller's transaction (the sign-in's). Null when
   * the account has no temporary password.
   */
  async temporaryPasswordReplacement(user: UserEntity): Promise<((tx: OpenTransaction) => Promise<void>) | null> {
    if (!user.mustChangePassword) return null;
    const passwordHash = await argon2.hash(randomBytes(32).toString('base64url'), ARGON2_OPTIONS);
    return async (tx) => {
      user.passwordHash = passwordHash;
      user.mustChangePassword = false;
      await this.users.saveWithin(tx, user);
    };
  }

  /** The account linked to an identity, if any. */
  findByOidcIdentity(identity: OidcIdentity): Promise<UserEntity | null> {
    return this.users.findByOidcIdentity(identity.issuer, identity.subject);
  }

  /**
   * Creates an account for a person the identity provider vouches for, with the role its claim maps to (ADR 0010).
   * The name is the one the provider suggests when it is free and valid, else made unique with a suffix. The
   * password is random and never told to anyone: the account signs in through the provider only, until an
   * administrator sets a temporary password. Recorded as `account.created` by the system, naming the issuer.
   */
  async createForOidcIdentity(identity: OidcIdentity, suggestedName: string, role: Role): Promise<UserEntity> {
    const passwordHash = await argon2.hash(randomBytes(32).toString('base64url'), ARGON2_OPTIONS);
    for (let attempt = 1; ; attempt++) {
      const username = oidcUsername(suggestedName, identity.subject, attempt);
      if (await this.findByName(username)) continue;
      try {
        return await this.users.inTransaction(async (tx) => {
          const created = await tx.insert({
            username,
            passwordHash,
            role,
            oidcIssuer: identity.issuer,
            oidcSubject: identity.subject,
          });
          await this.audit.record({
            actor: { type: 'system', id: 'oidc', name: identity.issuer },
            action: 'account.created',
            subject: { userId: created.id },
            details: { username, role, temporary: false, issuer: identity.issuer, oidcSubject: identity.subject },
          });
          return created;
        });
      } catch (err) {
        // The name was taken meanwhile: try the next; the identity itself taken meanwhile is the caller's retry.
        if (!(err instanceof AccountUniquenessViolated) || attempt >= 20) throw err;
      }
    }
  }

  async count(): Promise<number> {
    return this.users.count();
  }

  /**
   * Checks a password; every failure is the same error, and costs the same hashing work. While sign-in is paused
   * for the username (too many consecutive failures, from any address), every attempt is refused with 429 before
   * the password is looked at, for existing and unknown names alike. The name matches whatever its letter case.
   * The success is recorded with the session it starts (AuthService).
   */
  async verifyCredentials(username: string, password: string): Promise<VerifiedAccount> {
    await this.backoff.assertNotPaused(username);
    const user = await this.findByName(username);
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
    return { id: user.id, username: user.username, role: user.role, mustChangePassword: user.mustChangePassword };
  }

  /** First boot only: creates the configured administrator when no account exists yet. */
  async ensureFirstAdmin(username: string | undefined, password: string | undefined): Promise<boolean> {
    if (!username || !password) return false;
    if ((await this.count()) > 0) return false;
    await this.create(username, password, 'admin');
    this.logger.log(`created the first administrator "${username}"`);
    return true;
  }

  /** The account whose name equals `username` ignoring letter case (at most one: a unique index says so). */
  private findByName(username: string): Promise<UserEntity | null> {
    return this.users.findByName(username);
  }

  private async existing(id: string): Promise<UserEntity> {
    const user = await this.users.findById(id);
    if (!user) throw new HubException(HubErrorCode.NOT_FOUND, `No account with id ${id}.`);
    return user;
  }

  private taken(requested: string, existing: string): HubException {
    const as = existing === requested ? '' : ` (as "${existing}"; names are compared ignoring letter case)`;
    return new HubException(HubErrorCode.USERNAME_TAKEN, `The username "${requested}" is already taken${as}.`);
  }

  private decoy(): Promise<string> {
    this.decoyHash ??= argon2.hash('decoy password that matches nothing', ARGON2_OPTIONS);
    return this.decoyHash;
  }
}

function setPassword(
  tx: AccountsUnitOfWork,
  user: UserEntity,
  passwordHash: string,
  mustChangePassword: boolean,
): Promise<UserEntity> {
  user.passwordHash = passwordHash;
  user.mustChangePassword = mustChangePassword;
  return tx.save(user);
}
