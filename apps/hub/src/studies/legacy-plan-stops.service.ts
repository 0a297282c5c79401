import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { AuditCheckpointService } from '../audit/audit-checkpoint.service';
import { AuditTrail, SYSTEM_ACTOR } from '../audit/audit-trail';
import { LegacyPlanStopsRepository } from './legacy-plan-stops.repository';

/**
 * Writes the audit record of every study that migration LegacyStudyPlans1763800700000 stopped because its plan
 * predates the current plan format. The migration cannot append to the audit chain itself (records are hashed and
 * linked by the audit library under the chain's lock), so the hub does it at boot, before it serves: each stop is
 * recorded exactly once, in the same transaction that marks it recorded, even when two hubs boot together.
 */
@Injectable()
export class LegacyPlanStopsService implements OnApplicationBootstrap {
  private readonly logger = new Logger(LegacyPlanStopsService.name);

  constructor(
    private readonly repository: LegacyPlanStopsRepository,
    @Inject(AuditTrail) private readonly audit: AuditTrail,
    private readonly checkpoints: AuditCheckpointService,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const recorded = await this.recordPendingStops();
    if (recorded > 0) {
      this.logger.warn(`${recorded} study(ies) with a plan of an earlier format were stopped by the upgrade`);
      await this.checkpoints.checkpointNow();
    }
  }

  /** Appends `study.stopped` for each stop not yet recorded; returns how many it recorded. */
  async recordPendingStops(): Promise<number> {
    return this.repository.inTransaction(async (tx) => {
      // SKIP LOCKED: a second hub booting at the same moment leaves these rows to the first one.
      const rows = await tx.claimUnaudited();
      for (const row of rows) {
        // Joins this transaction (AmbientTransactions): the record and the mark commit together or not at all.
        await this.audit.record({
          actor: SYSTEM_ACTOR,
          action: 'study.stopped',
          subject: { studyId: row.studyId },
          details: {
            reason: row.reason,
            legacyPlan: true,
            previousStatus: row.previousStatus,
            abandonedRounds: row.abandonedRounds,
            stoppedAt: row.stoppedAt.toISOString(),
            planVersion: row.planVersion,
            planHash: row.planHash,
          },
        });
        await tx.markAudited(row.studyId);
      }
      return rows.length;
    });
  }
}
