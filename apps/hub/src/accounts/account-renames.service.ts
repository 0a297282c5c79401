import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { AuditTrail, SYSTEM_ACTOR } from '../audit/audit-trail';
import { AccountsRepository, type UnauditedRename } from './accounts.repository';

/**
 * Writes the audit record of every account that migration Sessions1763801000000 renamed and disabled because its
 * name differed only in letter case from an older account's. The migration cannot append to the audit chain itself
 * (its records are hashed and linked by the audit library under the chain's lock), so the hub does it at boot,
 * before it serves: each rename is recorded exactly once, in the transaction that marks it recorded, even when two
 * hubs boot together.
 */
@Injectable()
export class AccountRenamesService implements OnApplicationBootstrap {
  private readonly logger = new Logger(AccountRenamesService.name);

  constructor(
    private readonly store: AccountsRepository,
    private readonly audit: AuditTrail,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const renamed = await this.recordPendingRenames();
    for (const r of renamed) {
      this.logger.warn(
        `account "${r.previous_username}" clashed with an older account whose name differs only in case: ` +
          `renamed "${r.new_username}" and disabled; an administrator may enable it in the console (Accounts)`,
      );
    }
  }

  /** Appends `account.renamed` for each rename not yet recorded; returns them. */
  async recordPendingRenames(): Promise<UnauditedRename[]> {
    return this.store.inTransaction(async (tx) => {
      // Locked with SKIP LOCKED: a second hub booting at the same moment leaves these rows to the first one.
      const rows = await tx.pendingRenames();
      for (const row of rows) {
        // Joins this transaction (AmbientTransactions): the record and the mark commit together or not at all.
        await this.audit.record({
          actor: SYSTEM_ACTOR,
          action: 'account.renamed',
          subject: { userId: row.user_id },
          details: {
            from: row.previous_username,
            to: row.new_username,
            disabled: true,
            reason: 'username-differs-only-in-case',
            keptUserId: row.kept_user_id,
            renamedAt: new Date(row.renamed_at).toISOString(),
          },
        });
        await tx.markRenameRecorded(row.user_id);
      }
      return rows;
    });
  }
}
