import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { UserRole } from '@tessera/protocol';
import { DataSource } from 'typeorm';
import type { SessionEndReason } from './session-policy.util';

/** Anything that runs SQL: the DataSource, or the EntityManager of an open transaction. */
export interface Queryable {
  query(sql: string, parameters?: unknown[]): Promise<unknown>;
}

export interface SessionRow {
  readonly id: string;
  readonly userId: string;
  readonly createdAt: Date;
  readonly idleExpiresAt: Date;
  readonly expiresAt: Date;
  readonly revokedAt: Date | null;
}

/** A refresh token found by its hash, with its session and the session's account as they are now. */
export interface PresentedRefreshToken {
  readonly tokenHash: string;
  readonly rotatedAt: Date | null;
  readonly session: SessionRow;
  readonly account: {
    readonly id: string;
    readonly username: string;
    readonly role: UserRole;
    readonly disabled: boolean;
    readonly mustChangePassword: boolean;
  };
}

/** A session that may be used now, with its account. */
export interface ActiveSession {
  readonly sessionId: string;
  readonly userId: string;
  readonly username: string;
  readonly role: UserRole;
  readonly mustChangePassword: boolean;
  readonly expiresAt: Date;
}

interface RawSession {
  id: string;
  user_id: string;
  created_at: Date;
  idle_expires_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
}

function sessionOf(r: RawSession): SessionRow {
  return {
    id: r.id,
    userId: r.user_id,
    createdAt: new Date(r.created_at),
    idleExpiresAt: new Date(r.idle_expires_at),
    expiresAt: new Date(r.expires_at),
    revokedAt: r.revoked_at === null ? null : new Date(r.revoked_at),
  };
}

/**
 * The session tables inside one transaction: one SessionRepository.inTransaction opened, or one another feature
 * opened and handed over (SessionRepository.within). Every time is the transaction's `now()`.
 */
export interface SessionStore {
  /** The database's clock: inside a transaction, the transaction's start (one instant for all its decisions). */
  now(): Promise<Date>;
  insertSession(userId: string, idleExpiresAt: Date, expiresAt: Date): Promise<SessionRow>;
  insertRefreshToken(sessionId: string, tokenHash: string): Promise<void>;
  /**
   * The token with that hash, its session and account; the session's and the token's rows are locked until the
   * transaction ends, so two refreshes of one session (two tabs, a replay racing the owner) are decided one after the
   * other. Both rows: a statement that waited for a lock reads the newest version of the rows it locked only, so with
   * the session's row alone the second of two refreshes with one token would read the token as not yet rotated and
   * rotate it again (two successors; session-refresh-race.int-spec.ts).
   */
  findRefreshToken(tokenHash: string): Promise<PresentedRefreshToken | null>;
  markRotated(tokenHash: string, at: Date): Promise<void>;
  slide(sessionId: string, at: Date, idleExpiresAt: Date): Promise<void>;
  /** Revokes one session; true when it was still unrevoked. */
  revoke(sessionId: string, reason: SessionEndReason): Promise<boolean>;
  /** Revokes every unrevoked, unexpired session of an account (but `except`); returns the ids revoked. */
  revokeAllOf(userId: string, reason: SessionEndReason, except?: string): Promise<string[]>;
}

/** The condition every use of a session checks: not revoked, not past either expiry, its account enabled. */
const LIVE = `s."revoked_at" IS NULL AND s."idle_expires_at" > now() AND s."expires_at" > now() AND NOT u."disabled"`;

/**
 * The sessions feature's data access: the only code of sessions/ that runs SQL or uses TypeORM (`sessions` and
 * `session_refresh_tokens`, migration Sessions1763801000000, read joined with `users`). SessionsService keeps the
 * rules; its unit spec replaces this with a double (in-memory-sessions.test-util.ts). A revocation caused by a change
 * to an account runs in that change's transaction (`within`), so it commits with the change and its audit record.
 */
@Injectable()
export class SessionRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** Runs `work` in one transaction on the session tables; it commits when `work` resolves. */
  inTransaction<T>(work: (tx: SessionStore) => Promise<T>): Promise<T> {
    return this.db.transaction((manager) => work(new SessionTables(manager)));
  }

  /** The session tables inside a transaction another feature opened (accounts' change, auth's sign-in). */
  within(tx: Queryable): SessionStore {
    return new SessionTables(tx);
  }

  /** The session, when it may be used now (every request checks this). */
  async active(sessionId: string): Promise<ActiveSession | null> {
    const [row] = await this.db.query<
      {
        id: string;
        expires_at: Date;
        user_id: string;
        username: string;
        role: UserRole;
        must_change_password: boolean;
      }[]
    >(
      `SELECT s."id", s."expires_at", u."id" AS "user_id", u."username", u."role", u."must_change_password"
         FROM "sessions" s JOIN "users" u ON u."id" = s."user_id"
        WHERE s."id" = $1 AND ${LIVE}`,
      [sessionId],
    );
    if (!row) return null;
    return {
      sessionId: row.id,
      userId: row.user_id,
      username: row.username,
      role: row.role,
      mustChangePassword: row.must_change_password,
      expiresAt: new Date(row.expires_at),
    };
  }

  /** Which of these sessions may still be used (one query for every open live stream). */
  async activeAmong(sessionIds: readonly string[]): Promise<Set<string>> {
    if (sessionIds.length === 0) return new Set();
    const rows = await this.db.query<{ id: string }[]>(
      `SELECT s."id" FROM "sessions" s JOIN "users" u ON u."id" = s."user_id"
        WHERE s."id" = ANY($1::uuid[]) AND ${LIVE}`,
      [sessionIds],
    );
    return new Set(rows.map((r) => r.id));
  }

  /** Live sessions per account (for the administrators' list). */
  async liveCounts(): Promise<Map<string, number>> {
    const rows = await this.db.query<{ user_id: string; n: number }[]>(
      `SELECT s."user_id", count(*)::int AS "n" FROM "sessions" s JOIN "users" u ON u."id" = s."user_id"
        WHERE ${LIVE} GROUP BY s."user_id"`,
    );
    return new Map(rows.map((r) => [r.user_id, r.n]));
  }

  /** Forgets sessions that ended more than `keepDays` ago (their tokens go with them). */
  async pruneEnded(keepDays: number): Promise<void> {
    await this.db.query(
      `DELETE FROM "sessions"
        WHERE LEAST(COALESCE("revoked_at", 'infinity'), "idle_expires_at", "expires_at") < now() - make_interval(days => $1)`,
      [keepDays],
    );
  }
}

/** The session tables on the manager of one open transaction. */
class SessionTables implements SessionStore {
  constructor(private readonly db: Queryable) {}

  async now(): Promise<Date> {
    const [row] = (await this.db.query(`SELECT now() AS "now"`)) as { now: Date }[];
    return new Date(row!.now);
  }

  async insertSession(userId: string, idleExpiresAt: Date, expiresAt: Date): Promise<SessionRow> {
    const [row] = (await this.db.query(
      `INSERT INTO "sessions" ("user_id", "idle_expires_at", "expires_at") VALUES ($1, $2, $3) RETURNING *`,
      [userId, idleExpiresAt, expiresAt],
    )) as RawSession[];
    return sessionOf(row!);
  }

  async insertRefreshToken(sessionId: string, tokenHash: string): Promise<void> {
    await this.db.query(`INSERT INTO "session_refresh_tokens" ("token_hash", "session_id") VALUES ($1, $2)`, [
      tokenHash,
      sessionId,
    ]);
  }

  async findRefreshToken(tokenHash: string): Promise<PresentedRefreshToken | null> {
    const [row] = (await this.db.query(
      `SELECT t."token_hash", t."rotated_at",
              s."id", s."user_id", s."created_at", s."idle_expires_at", s."expires_at", s."revoked_at",
              u."username", u."role", u."disabled", u."must_change_password"
         FROM "session_refresh_tokens" t
         JOIN "sessions" s ON s."id" = t."session_id"
         JOIN "users" u ON u."id" = s."user_id"
        WHERE t."token_hash" = $1
        FOR UPDATE OF s, t`,
      [tokenHash],
    )) as (RawSession & {
      token_hash: string;
      rotated_at: Date | null;
      username: string;
      role: UserRole;
      disabled: boolean;
      must_change_password: boolean;
    })[];
    if (!row) return null;
    return {
      tokenHash: row.token_hash,
      rotatedAt: row.rotated_at === null ? null : new Date(row.rotated_at),
      session: sessionOf(row),
      account: {
        id: row.user_id,
        username: row.username,
        role: row.role,
        disabled: row.disabled,
        mustChangePassword: row.must_change_password,
      },
    };
  }

  async markRotated(tokenHash: string, at: Date): Promise<void> {
    await this.db.query(`UPDATE "session_refresh_tokens" SET "rotated_at" = $2 WHERE "token_hash" = $1`, [
      tokenHash,
      at,
    ]);
  }

  async slide(sessionId: string, at: Date, idleExpiresAt: Date): Promise<void> {
    await this.db.query(`UPDATE "sessions" SET "refreshed_at" = $2, "idle_expires_at" = $3 WHERE "id" = $1`, [
      sessionId,
      at,
      idleExpiresAt,
    ]);
  }

  async revoke(sessionId: string, reason: SessionEndReason): Promise<boolean> {
    const rows = (await this.db.query(
      `UPDATE "sessions" SET "revoked_at" = now(), "revoked_reason" = $2
        WHERE "id" = $1 AND "revoked_at" IS NULL RETURNING "id"`,
      [sessionId, reason],
    )) as { id: string }[];
    return rows.length > 0;
  }

  async revokeAllOf(userId: string, reason: SessionEndReason, except?: string): Promise<string[]> {
    const rows = (await this.db.query(
      `UPDATE "sessions" SET "revoked_at" = now(), "revoked_reason" = $2
        WHERE "user_id" = $1 AND "revoked_at" IS NULL AND "expires_at" > now()
          AND ($3::uuid IS NULL OR "id" <> $3::uuid)
       RETURNING "id"`,
      [userId, reason, except ?? null],
    )) as { id: string }[];
    return rows.map((r) => r.id);
  }
}
