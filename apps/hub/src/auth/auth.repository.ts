import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { OpenTransaction } from '../accounts/accounts.repository';

/**
 * One sign-in's transaction. The audit trail joins it on its own (AmbientTransactions); `transaction` is the handle
 * an account's change (`alongside`) and the session store write through, so the session, the change and the record
 * commit together.
 */
export interface SignInUnitOfWork {
  /** Stamps the account's last sign-in with the transaction's `now()`. */
  markSignedIn(userId: string): Promise<void>;
  readonly transaction: OpenTransaction;
}

/**
 * Sign-in's data access: the only code of auth/ that runs SQL or uses TypeORM (the one statement it owns, on
 * `users`). AuthService keeps the rule (one transaction for the session, the account's change and the record); its
 * unit spec replaces this with a double (auth.service.spec.ts).
 */
@Injectable()
export class AuthRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** Runs `work` in one transaction; it commits when `work` resolves. */
  inTransaction<T>(work: (tx: SignInUnitOfWork) => Promise<T>): Promise<T> {
    return this.db.transaction((manager) =>
      work({
        transaction: manager,
        markSignedIn: async (userId) => {
          await manager.query(`UPDATE "users" SET "last_sign_in_at" = now() WHERE "id" = $1`, [userId]);
        },
      }),
    );
  }
}
