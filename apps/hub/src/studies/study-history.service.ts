import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { planChanges, type DecisionHistoryView, type PlanVersionsView, type RoundHistoryView } from '@tessera/protocol';
import { DataSource, In } from 'typeorm';
import { roundHistory } from '../rounds/round-history.util';
import { RoundsQueryService } from '../rounds/rounds-query.service';
import { SiloEntity } from '../silos/silo.entity';
import { invitedSilosOf } from '../study-state/stored-plan.util';
import { StudiesService } from './studies.service';
import { StudyDecisionEntity } from './study-decision.entity';
import { StudyPlanVersionEntity } from './study-plan-version.entity';

/** The read side of a study's history: every round with each silo's status, every decision, every plan version. */
@Injectable()
export class StudyHistoryService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly studies: StudiesService,
    private readonly rounds: RoundsQueryService,
  ) {}

  async roundHistory(studyId: string): Promise<RoundHistoryView> {
    const study = await this.studies.entity(studyId);
    const own = study.participants.length ? study.participants : invitedSilosOf(study.plan);
    const names = await this.namesOf(own);
    const rounds = await this.rounds.roundsOf(studyId);
    return roundHistory(
      studyId,
      own.map((id) => ({ id, name: names.get(id) ?? 'unknown' })),
      rounds,
    );
  }

  /** Every decision on every version, oldest first: a rejection stays listed after a later approval. */
  async decisions(studyId: string): Promise<DecisionHistoryView> {
    const study = await this.studies.entity(studyId);
    const rows = await this.db
      .getRepository(StudyDecisionEntity)
      .find({ where: { studyId }, order: { decidedAt: 'ASC', planVersion: 'ASC' } });
    const names = await this.namesOf([...new Set(rows.map((r) => r.siloId))]);
    return {
      studyId,
      currentPlanVersion: study.planVersion,
      decisions: rows.map((r) => ({
        siloId: r.siloId,
        siloName: names.get(r.siloId) ?? 'unknown',
        planVersion: r.planVersion,
        planHash: r.planHash,
        decision: r.decision,
        reason: r.reason,
        decidedAt: r.decidedAt.toISOString(),
        current: r.planVersion === study.planVersion && r.planHash === study.planHash,
      })),
    };
  }

  /** Every plan version with the fields it changed from the one before it. */
  async planVersions(studyId: string): Promise<PlanVersionsView> {
    await this.studies.entity(studyId);
    const rows = await this.db
      .getRepository(StudyPlanVersionEntity)
      .find({ where: { studyId }, order: { version: 'ASC' } });
    return {
      studyId,
      versions: rows.map((r, i) => ({
        version: r.version,
        planHash: r.planHash,
        createdAt: r.createdAt.toISOString(),
        plan: r.plan,
        changes: i === 0 ? [] : planChanges(rows[i - 1]!.plan, r.plan),
      })),
    };
  }

  private async namesOf(ids: string[]): Promise<Map<string, string>> {
    if (ids.length === 0) return new Map();
    const silos = await this.db.getRepository(SiloEntity).find({ where: { id: In(ids) } });
    return new Map(silos.map((s) => [s.id, s.name]));
  }
}
