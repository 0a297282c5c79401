import { Injectable } from '@nestjs/common';
import type { OpenTransaction } from '../accounts/accounts.repository';
import { AuditTrail } from '../audit/audit-trail';
import type { VerifiedAccount } from '../sessions/authenticated-user';
import { SessionsService, type IssuedSession } from '../sessions/sessions.service';
import { AuthRepository } from './auth.repository';

/** Sign-in: a new session for an account whose password the local strategy has just checked (ADR 0010). */
@Injectable()
export class AuthService {
  constructor(
    private readonly signIns: AuthRepository,
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
    alongside?: (tx: OpenTransaction) => Promise<void>,
  ): Promise<IssuedSession> {
    const issued = await this.signIns.inTransaction(async (tx) => {
      await alongside?.(tx.transaction);
      const started = await this.sessions.start(account, tx.transaction);
      await tx.markSignedIn(account.id);
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
