import { Injectable } from '@nestjs/common';
import { planChanges, type DecisionHistoryView, type PlanVersionsView, type RoundHistoryView } from '@tessera/protocol';
import { roundHistory } from '../rounds/round-history.util';
import { RoundsQueryService } from '../rounds/rounds-query.service';
import { invitedSilosOf } from '../study-state/stored-plan.util';
import { StudiesRepository } from './studies.repository';
import { StudiesService } from './studies.service';

/** The read side of a study's history: every round with each silo's status, every decision, every plan version. */
@Injectable()
export class StudyHistoryService {
  constructor(
    private readonly repository: StudiesRepository,
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
    const rows = await this.repository.decisionHistory(studyId);
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
    const rows = await this.repository.planVersions(studyId);
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
    const silos = await this.repository.silos(ids);
    return new Map(silos.map((s) => [s.id, s.name]));
  }
}
