import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { AuditTrail } from '../audit/audit-trail';
import type { VerifiedAccount } from '../sessions/authenticated-user';
import { SessionsService, type IssuedSession } from '../sessions/sessions.service';

/** Sign-in: a new session for an account whose password the local strategy has just checked (ADR 0010). */
@Injectable()
export class AuthService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly sessions: SessionsService,
    private readonly audit: AuditTrail,
  ) {}

  /**
   * `via`: how the person proved who they are, when not by password (recorded with the sign-in). `alongside`: a
   * change to the account that commits with the session and its record, or not at all.
   */
  async signIn(
    account: VerifiedAccount,
    via: { method: 'oidc'; issuer: string; replacedTemporary?: boolean } | null = null,
    alongside?: (tx: EntityManager) => Promise<void>,
  ): Promise<IssuedSession> {
    const issued = await this.db.transaction(async (tx) => {
      await alongside?.(tx);
      const started = await this.sessions.start(account, tx);
      await tx.query(`UPDATE "users" SET "last_sign_in_at" = now() WHERE "id" = $1`, [account.id]);
      // Joins this transaction: no session without its record, no record without its session.
      await this.audit.record({
        actor: { type: 'user', id: account.id, name: account.username },
        action: 'auth.login.succeeded',
        subject: { userId: account.id },
        details: { sessionId: started.sessionId, changeRequired: account.mustChangePassword, ...via },
      });
      return started;
    });
    await this.sessions.pruneEnded();
    return issued;
  }
}
