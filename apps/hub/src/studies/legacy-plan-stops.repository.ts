import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';

/** A stop migration LegacyStudyPlans1763800700000 made that the audit chain does not hold yet, with its study's plan. */
export interface UnauditedStop {
  studyId: string;
  previousStatus: string;
  reason: string;
  abandonedRounds: number;
  stoppedAt: Date;
  planVersion: number;
  planHash: string;
}

interface RawStop {
  study_id: string;
  previous_status: string;
  reason: string;
  abandoned_rounds: number;
  stopped_at: Date;
  plan_version: number;
  plan_hash: string;
}

/** One transaction over `legacy_plan_stops`; the audit trail joins it on its own (AmbientTransactions). */
export interface LegacyPlanStopsUnitOfWork {
  /**
   * The stops not yet audited, oldest first, each row locked (FOR UPDATE SKIP LOCKED): a second hub booting at the
   * same moment skips the rows the first one holds instead of waiting for them.
   */
  claimUnaudited(): Promise<UnauditedStop[]>;
  /** Marks the stop as recorded in the audit chain (at the transaction's `now()`). */
  markAudited(studyId: string): Promise<void>;
}

function unitOfWork(tx: EntityManager): LegacyPlanStopsUnitOfWork {
  return {
    claimUnaudited: async () => {
      const rows = await tx.query<RawStop[]>(
        `SELECT l."study_id", l."previous_status", l."reason", l."abandoned_rounds", l."stopped_at",
                s."plan_version", s."plan_hash"
           FROM "legacy_plan_stops" l JOIN "studies" s ON s."id" = l."study_id"
          WHERE l."audited_at" IS NULL
          ORDER BY l."stopped_at", l."study_id"
          FOR UPDATE OF l SKIP LOCKED`,
      );
      return rows.map((r) => ({
        studyId: r.study_id,
        previousStatus: r.previous_status,
        reason: r.reason,
        abandonedRounds: r.abandoned_rounds,
        stoppedAt: new Date(r.stopped_at),
        planVersion: r.plan_version,
        planHash: r.plan_hash,
      }));
    },
    markAudited: async (studyId) => {
      await tx.query(`UPDATE "legacy_plan_stops" SET "audited_at" = now() WHERE "study_id" = $1`, [studyId]);
    },
  };
}

/**
 * The `legacy_plan_stops` table the legacy-plan migration filled: the only code of the boot-time recording of those
 * stops that runs SQL. Its own repository: no study command reads or writes the table.
 */
@Injectable()
export class LegacyPlanStopsRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  inTransaction<T>(work: (tx: LegacyPlanStopsUnitOfWork) => Promise<T>): Promise<T> {
    return this.db.transaction((manager) => work(unitOfWork(manager)));
  }
}
