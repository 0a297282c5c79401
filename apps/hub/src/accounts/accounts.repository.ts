import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, QueryFailedError, type EntityManager } from 'typeorm';
import type { Queryable } from '../sessions/session.repository';
import { UserEntity, type Role } from './user.entity';

/** PostgreSQL's unique_violation. */
const UNIQUE_VIOLATION = '23505';

/**
 * A write refused by a unique index: the username (compared ignoring letter case) or the linked OIDC identity is
 * another account's. Thrown by the repository in place of the driver's error, so the service never reads SQLSTATEs.
 */
export class AccountUniquenessViolated extends Error {
  constructor(cause: unknown) {
    super('an account with this username or identity exists', { cause });
    this.name = 'AccountUniquenessViolated';
  }
}

/** A transaction another feature opened (the OIDC sign-in's), which a change of an account joins. */
export type OpenTransaction = EntityManager;

/** The fields of a new account. */
export interface NewAccount {
  readonly username: string;
  readonly passwordHash: string;
  readonly role: Role;
  readonly mustChangePassword?: boolean;
  readonly oidcIssuer?: string;
  readonly oidcSubject?: string;
}

/** A rename by migration Sessions1763801000000 whose audit record is not written yet (AccountRenamesService). */
export interface UnauditedRename {
  user_id: string;
  previous_username: string;
  new_username: string;
  kept_user_id: string;
  renamed_at: Date;
}

/**
 * One transaction of a change to an account. The audit trail joins it on its own (AmbientTransactions), and
 * `sessions` hands it to SessionsService, so the revocation of the account's sessions commits with the change.
 */
export interface AccountsUnitOfWork {
  insert(account: NewAccount): Promise<UserEntity>;
  save(user: UserEntity): Promise<UserEntity>;
  /**
   * The renames not recorded yet, locked for this transaction; SKIP LOCKED: a second hub booting at the same moment
   * leaves them to the first one.
   */
  pendingRenames(): Promise<UnauditedRename[]>;
  markRenameRecorded(userId: string): Promise<void>;
  /** This transaction, for the session store. */
  readonly sessions: Queryable;
}

/**
 * The accounts feature's data access: the only code of accounts/ that runs SQL or uses TypeORM (the `users`,
 * `login_backoff` and `username_case_renames` tables). Services get entities, rows and plain errors from it and
 * keep the rules; unit specs replace it with a double (accounts.service.spec.ts). Every time is the database's
 * `now()`, so replicas agree.
 */
@Injectable()
export class AccountsRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  findById(id: string): Promise<UserEntity | null> {
    return this.db.getRepository(UserEntity).findOne({ where: { id } });
  }

  /** The account whose name equals `username` ignoring letter case (at most one: a unique index says so). */
  findByName(username: string): Promise<UserEntity | null> {
    return this.db
      .getRepository(UserEntity)
      .createQueryBuilder('u')
      .where('lower(u.username) = lower(:username)', { username })
      .getOne();
  }

  findByOidcIdentity(issuer: string, subject: string): Promise<UserEntity | null> {
    return this.db.getRepository(UserEntity).findOne({ where: { oidcIssuer: issuer, oidcSubject: subject } });
  }

  /** Every account, oldest first. */
  list(): Promise<UserEntity[]> {
    return this.db.getRepository(UserEntity).find({ order: { createdAt: 'ASC' } });
  }

  count(): Promise<number> {
    return this.db.getRepository(UserEntity).count();
  }

  /** Runs `work` in one transaction; a unique index's refusal surfaces as AccountUniquenessViolated. */
  async inTransaction<T>(work: (tx: AccountsUnitOfWork) => Promise<T>): Promise<T> {
    try {
      return await this.db.transaction((manager) => work(unitOfWork(manager)));
    } catch (err) {
      throw uniquenessViolation(err) ?? err;
    }
  }

  /** Saves `user` inside a transaction someone else opened. */
  saveWithin(tx: OpenTransaction, user: UserEntity): Promise<UserEntity> {
    return unitOfWork(tx).save(user);
  }

  /** Seconds left of the sign-in pause of an account key (login-backoff.util accountKeyOf), if one is running. */
  async pauseLeftSeconds(accountKey: string): Promise<number | undefined> {
    const rows = await this.db.query<{ wait: number }[]>(
      `SELECT ceil(extract(epoch FROM "locked_until" - now()))::int AS wait
         FROM "login_backoff" WHERE "account_key" = $1 AND "locked_until" > now()`,
      [accountKey],
    );
    return rows[0]?.wait;
  }

  /**
   * Counts a failed sign-in in one atomic statement (concurrent failures on several replicas each count once); a
   * series older than `memorySeconds` starts again at 1. Returns the consecutive failures.
   */
  async countFailure(accountKey: string, memorySeconds: number): Promise<number> {
    const [counted] = await this.db.query<{ failures: number }[]>(
      `INSERT INTO "login_backoff" AS b ("account_key", "failures", "last_failure_at")
       VALUES ($1, 1, now())
       ON CONFLICT ("account_key") DO UPDATE SET
         "failures" = CASE WHEN b."last_failure_at" < now() - make_interval(secs => $2) THEN 1 ELSE b."failures" + 1 END,
         "last_failure_at" = now()
       RETURNING "failures"`,
      [accountKey, memorySeconds],
    );
    return counted!.failures;
  }

  /** Pauses sign-in for `seconds` from now; GREATEST: a concurrent shorter pause cannot shorten a longer one. */
  async extendPause(accountKey: string, seconds: number): Promise<void> {
    await this.db.query(
      `UPDATE "login_backoff"
          SET "locked_until" = GREATEST(COALESCE("locked_until", now()), now() + make_interval(secs => $2))
        WHERE "account_key" = $1`,
      [accountKey, seconds],
    );
  }

  /** Forgets series whose last failure is older than `memorySeconds` and whose pause is over. */
  async forgetStaleFailures(memorySeconds: number): Promise<void> {
    await this.db.query(
      `DELETE FROM "login_backoff"
        WHERE "last_failure_at" < now() - make_interval(secs => $1)
          AND ("locked_until" IS NULL OR "locked_until" < now())`,
      [memorySeconds],
    );
  }

  async clearFailures(accountKey: string): Promise<void> {
    await this.db.query(`DELETE FROM "login_backoff" WHERE "account_key" = $1`, [accountKey]);
  }
}

function unitOfWork(manager: EntityManager): AccountsUnitOfWork {
  const users = manager.getRepository(UserEntity);
  return {
    insert: (account) => users.save(users.create(account)),
    save: (user) => users.save(user),
    pendingRenames: async () =>
      await manager.query<UnauditedRename[]>(
        `SELECT "user_id", "previous_username", "new_username", "kept_user_id", "renamed_at"
           FROM "username_case_renames" WHERE "audited_at" IS NULL
          ORDER BY "renamed_at", "user_id"
          FOR UPDATE SKIP LOCKED`,
      ),
    markRenameRecorded: async (userId) => {
      await manager.query(`UPDATE "username_case_renames" SET "audited_at" = now() WHERE "user_id" = $1`, [userId]);
    },
    sessions: manager,
  };
}

function uniquenessViolation(err: unknown): AccountUniquenessViolated | null {
  const unique = err instanceof QueryFailedError && (err.driverError as { code?: string }).code === UNIQUE_VIOLATION;
  return unique ? new AccountUniquenessViolated(err) : null;
}
