import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { AuditCheckpointService } from '../audit/audit-checkpoint.service';
import { AuditTrail, SYSTEM_ACTOR } from '../audit/audit-trail';

interface UnauditedStop {
  study_id: string;
  previous_status: string;
  reason: string;
  abandoned_rounds: number;
  stopped_at: Date;
  plan_version: number;
  plan_hash: string;
}

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
    @InjectDataSource() private readonly db: DataSource,
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
    return this.db.transaction(async (tx) => {
      // SKIP LOCKED: a second hub booting at the same moment leaves these rows to the first one.
      const rows = (await tx.query(
        `SELECT l."study_id", l."previous_status", l."reason", l."abandoned_rounds", l."stopped_at",
                s."plan_version", s."plan_hash"
           FROM "legacy_plan_stops" l JOIN "studies" s ON s."id" = l."study_id"
          WHERE l."audited_at" IS NULL
          ORDER BY l."stopped_at", l."study_id"
          FOR UPDATE OF l SKIP LOCKED`,
      )) as UnauditedStop[];
      for (const row of rows) {
        // Joins this transaction (AmbientTransactions): the record and the mark commit together or not at all.
        await this.audit.record({
          actor: SYSTEM_ACTOR,
          action: 'study.stopped',
          subject: { studyId: row.study_id },
          details: {
            reason: row.reason,
            legacyPlan: true,
            previousStatus: row.previous_status,
            abandonedRounds: row.abandoned_rounds,
            stoppedAt: new Date(row.stopped_at).toISOString(),
            planVersion: row.plan_version,
            planHash: row.plan_hash,
          },
        });
        await tx.query(`UPDATE "legacy_plan_stops" SET "audited_at" = now() WHERE "study_id" = $1`, [row.study_id]);
      }
      return rows.length;
    });
  }
}
