import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, In, IsNull, Not, type EntityManager } from 'typeorm';
import { SiloEntity } from '../silos/silo.entity';
import { StudyEntity } from '../study-state/study.entity';
import type { ArchivedFilter } from './studies.service';
import { StudyDecisionEntity } from './study-decision.entity';
import { StudyPlanVersionEntity } from './study-plan-version.entity';
import type { StudyProgressRow } from './study-progress';

/**
 * The transaction a study command opened, as the round engine joins it (RoundsService.openFirstRound,
 * RoundOpener.open, abandonOpenRounds): services pass it on and never run SQL on it.
 */
export type OpenTransaction = EntityManager;

/** A new study's row as the service fills it (the database sets its id and times). */
export type NewStudy = Pick<
  StudyEntity,
  'name' | 'status' | 'planVersion' | 'planHash' | 'plan' | 'privacyCost' | 'participants' | 'createdBy' | 'clonedFrom'
>;

/** The columns a study command changes. */
export type StudyChange = Partial<
  Pick<
    StudyEntity,
    | 'name'
    | 'status'
    | 'planVersion'
    | 'planHash'
    | 'plan'
    | 'privacyCost'
    | 'participants'
    | 'startedAt'
    | 'endedAt'
    | 'endReason'
    | 'pausedAt'
    | 'pauseReason'
    | 'pausedNextRound'
    | 'archivedAt'
  >
>;

/** A plan version's row (the database sets its creation time). */
export type NewPlanVersion = Omit<StudyPlanVersionEntity, 'createdAt'>;

/** A steward's decision as the agent sent it (the database sets its id). */
export type NewDecision = Omit<StudyDecisionEntity, 'id'>;

/** Which plan of a study a decision must name to count: its current version and hash. */
export type CurrentPlan = Pick<StudyEntity, 'id' | 'planVersion' | 'planHash'>;

/**
 * One transaction of a study command. The audit trail joins it on its own (AmbientTransactions), so a command's
 * record commits with the change it describes; `transaction` is the handle the round engine writes through when the
 * command opens or abandons rounds in it. Locks are row locks held until the transaction ends.
 */
export interface StudiesUnitOfWork {
  readonly transaction: OpenTransaction;
  /** The study's row, locked (FOR UPDATE): commands on one study queue behind each other. */
  lockStudy(id: string): Promise<StudyEntity | null>;
  /** Inserts the study and returns it as stored (id, defaults and times). */
  insertStudy(study: NewStudy): Promise<StudyEntity>;
  updateStudy(id: string, change: StudyChange): Promise<void>;
  /** The key (study_id, version) refuses a second row for one version. */
  insertPlanVersion(row: NewPlanVersion): Promise<void>;
  /** The decisions on the study's current plan version and hash, oldest first. */
  currentDecisions(plan: CurrentPlan): Promise<StudyDecisionEntity[]>;
  /** The suspended silos among these. */
  suspendedSilos(siloIds: string[]): Promise<SiloEntity[]>;
  insertDecision(row: NewDecision): Promise<void>;
}

function unitOfWork(tx: EntityManager): StudiesUnitOfWork {
  return {
    transaction: tx,
    lockStudy: (id) => tx.getRepository(StudyEntity).findOne({ where: { id }, lock: { mode: 'pessimistic_write' } }),
    insertStudy: (study) => {
      const studies = tx.getRepository(StudyEntity);
      return studies.save(studies.create(study));
    },
    updateStudy: async (id, change) => {
      await tx.getRepository(StudyEntity).update(id, change);
    },
    insertPlanVersion: async (row) => {
      await tx.getRepository(StudyPlanVersionEntity).insert(row);
    },
    currentDecisions: (plan) => currentDecisions(tx, plan),
    suspendedSilos: (siloIds) => tx.getRepository(SiloEntity).find({ where: { id: In(siloIds), status: 'suspended' } }),
    insertDecision: async (row) => {
      await tx.getRepository(StudyDecisionEntity).insert(row);
    },
  };
}

function currentDecisions(m: EntityManager, plan: CurrentPlan): Promise<StudyDecisionEntity[]> {
  return m.getRepository(StudyDecisionEntity).find({
    where: { studyId: plan.id, planVersion: plan.planVersion, planHash: plan.planHash },
    order: { decidedAt: 'ASC' },
  });
}

/**
 * The studies feature's data access for `studies`, `study_plan_versions` and `study_decisions`, and the reads of
 * `silos` and `rounds` a study's views need: with StudyDraftsRepository and LegacyPlanStopsRepository, the only code
 * of studies/ that runs SQL or uses TypeORM.
 */
@Injectable()
export class StudiesRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  inTransaction<T>(work: (tx: StudiesUnitOfWork) => Promise<T>): Promise<T> {
    return this.db.transaction((manager) => work(unitOfWork(manager)));
  }

  findStudy(id: string): Promise<StudyEntity | null> {
    return this.db.getRepository(StudyEntity).findOne({ where: { id } });
  }

  /** Newest first; archived studies only when asked for. */
  listStudies(archived: ArchivedFilter): Promise<StudyEntity[]> {
    const where =
      archived === 'include' ? {} : archived === 'only' ? { archivedAt: Not(IsNull()) } : { archivedAt: IsNull() };
    return this.db.getRepository(StudyEntity).find({ where, order: { createdAt: 'DESC' } });
  }

  /** The studies past draft whose plan invites the silo, oldest first. */
  studiesInviting(siloId: string): Promise<StudyEntity[]> {
    return this.db
      .getRepository(StudyEntity)
      .createQueryBuilder('s')
      .where(`s.plan -> 'silos' ? :siloId`, { siloId })
      .andWhere(`s.status <> 'draft'`)
      .orderBy('s.created_at', 'ASC')
      .getMany();
  }

  /** The decisions on the study's current plan version and hash, oldest first. */
  currentDecisions(plan: CurrentPlan): Promise<StudyDecisionEntity[]> {
    return currentDecisions(this.db.manager, plan);
  }

  /** The decisions on the current plans of several studies, in one statement, oldest first. */
  currentDecisionsOf(plans: CurrentPlan[]): Promise<StudyDecisionEntity[]> {
    return this.db.getRepository(StudyDecisionEntity).find({
      where: plans.map((s) => ({ studyId: s.id, planVersion: s.planVersion, planHash: s.planHash })),
      order: { decidedAt: 'ASC' },
    });
  }

  /** Every decision on every version of the study, oldest first. */
  decisionHistory(studyId: string): Promise<StudyDecisionEntity[]> {
    return this.db
      .getRepository(StudyDecisionEntity)
      .find({ where: { studyId }, order: { decidedAt: 'ASC', planVersion: 'ASC' } });
  }

  planVersion(studyId: string, version: number): Promise<StudyPlanVersionEntity | null> {
    return this.db.getRepository(StudyPlanVersionEntity).findOne({ where: { studyId, version } });
  }

  /** Every version of the study's plan, oldest first. */
  planVersions(studyId: string): Promise<StudyPlanVersionEntity[]> {
    return this.db.getRepository(StudyPlanVersionEntity).find({ where: { studyId }, order: { version: 'ASC' } });
  }

  silos(ids: string[]): Promise<SiloEntity[]> {
    return this.db.getRepository(SiloEntity).find({ where: { id: In(ids) } });
  }

  /**
   * Where each study's rounds stand and the latest accuracy they measured, in ONE statement for all the studies (the
   * console polls the list): the highest training round, the final evaluation's latest attempt, and the latest round
   * attempt whose summary holds a mean accuracy. Only the one figure is read out of the summaries, not the summaries
   * themselves (they carry per-silo screening and the aggregation trace). The lookups use the (study_id, number,
   * attempt) unique index.
   */
  async progress(studyIds: readonly string[]): Promise<Map<string, StudyProgressRow>> {
    if (studyIds.length === 0) return new Map();
    const rows = await this.db.query<StudyProgressRow[]>(
      `SELECT s.id::text AS "studyId",
              t.round AS "round",
              e.status AS "finalEvaluation",
              a.number AS "accuracyRound",
              a.kind AS "accuracyKind",
              a.mean AS "accuracyMean",
              a.noisy AS "accuracyNoisy"
         FROM unnest($1::uuid[]) AS s(id)
         LEFT JOIN LATERAL (
           SELECT MAX(r.number)::int AS round FROM rounds r WHERE r.study_id = s.id AND r.kind = 'train'
         ) t ON true
         LEFT JOIN LATERAL (
           SELECT r.status FROM rounds r
            WHERE r.study_id = s.id AND r.kind = 'evaluate'
            ORDER BY r.number DESC, r.attempt DESC LIMIT 1
         ) e ON true
         LEFT JOIN LATERAL (
           SELECT r.number, r.kind,
                  (r.summary #>> '{evaluation,accuracy,unweighted}')::float8 AS mean,
                  COALESCE((r.summary #>> '{evaluation,noisy}')::boolean, false) AS noisy
             FROM rounds r
            WHERE r.study_id = s.id AND jsonb_typeof(r.summary #> '{evaluation,accuracy,unweighted}') = 'number'
            ORDER BY r.number DESC, r.attempt DESC LIMIT 1
         ) a ON true`,
      [studyIds],
    );
    return new Map(rows.map((r) => [r.studyId, r]));
  }
}
