import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { SiloPrivacyView, SiloStudyPrivacyView } from '@tessera/protocol';
import { DataSource } from 'typeorm';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { SiloEntity } from '../silos/silo.entity';
import { StudyEntity } from '../study-state/study.entity';
import { storedPlanOf } from '../study-state/stored-plan.util';
import { PrivacyLedgerService } from './privacy-ledger.service';

/**
 * One silo's privacy across studies (docs/privacy.md, "One silo across studies"): for every study the silo was
 * invited to (or was charged by), the hub's figure of what the study spent on the silo's data, against the study's
 * target, and the basic-composition total. The hub does not know the silo's own cap: the agent holds and enforces it.
 */
@Injectable()
export class SiloPrivacyService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly ledger: PrivacyLedgerService,
  ) {}

  async ofSilo(siloId: string): Promise<SiloPrivacyView> {
    const silo = await this.db.getRepository(SiloEntity).findOne({ where: { id: siloId } });
    if (!silo) throw new HubException(HubErrorCode.NOT_FOUND, `No silo with id ${siloId}.`);
    const studies = await this.db
      .getRepository(StudyEntity)
      .createQueryBuilder('s')
      .where(`s.status <> 'draft'`)
      .andWhere(
        `(s.plan -> 'silos' ? :siloId OR s.id IN (SELECT l.study_id FROM privacy_ledger l WHERE l.silo_id = CAST(:siloId AS uuid)))`,
        { siloId },
      )
      .orderBy('s.created_at', 'ASC')
      .getMany();
    const lines: SiloStudyPrivacyView[] = [];
    for (const study of studies) lines.push(await this.lineOf(study, siloId));
    const dp = lines.filter((l) => l.mode !== 'none');
    return {
      siloId,
      siloName: silo.name,
      studies: lines,
      total: {
        composition: 'basic',
        epsilon: dp.reduce((sum, l) => sum + (l.epsilon ?? 0), 0),
        delta: dp.reduce((sum, l) => sum + (l.delta ?? 0), 0),
        studies: dp.length,
        withoutPrivacy: lines.length - dp.length,
      },
      cap: null,
    };
  }

  private async lineOf(study: StudyEntity, siloId: string): Promise<SiloStudyPrivacyView> {
    const base = {
      studyId: study.id,
      studyName: study.name,
      status: study.status,
      participant: study.participants.includes(siloId),
    };
    if (!storedPlanOf(study.plan).current) return this.legacyLineOf(study, siloId, base);
    const mechanism = this.ledger.mechanismOf(study.planHash, study.plan);
    if (!mechanism) {
      return {
        ...base,
        mode: 'none',
        unit: null,
        epsilon: null,
        plannedEpsilon: null,
        targetEpsilon: null,
        delta: null,
        trainingRounds: null,
        evaluationReleases: null,
        disagreements: 0,
      };
    }
    const [budget] = await this.ledger.budgets(this.db.manager, study, [siloId]);
    return {
      ...base,
      mode: mechanism.mechanism,
      unit: mechanism.unit,
      epsilon: budget?.epsilon ?? 0,
      plannedEpsilon: mechanism.plannedEpsilon,
      targetEpsilon: mechanism.targetEpsilon,
      delta: mechanism.delta,
      trainingRounds: budget?.trainingRounds ?? 0,
      evaluationReleases: budget?.evaluationReleases ?? 0,
      disagreements: budget?.disagreements ?? 0,
    };
  }

  /**
   * A plan of an earlier format: the current accountant cannot read it, so the figure is the largest cumulative ε
   * the hub recorded in its charges (or the silo reported), at the δ the stewards approved.
   */
  private async legacyLineOf(
    study: StudyEntity,
    siloId: string,
    base: Pick<SiloStudyPrivacyView, 'studyId' | 'studyName' | 'status' | 'participant'>,
  ): Promise<SiloStudyPrivacyView> {
    const cost = study.privacyCost;
    const [row] = (await this.db.query(
      `SELECT MAX(GREATEST(epsilon_cumulative, COALESCE((reported->>'epsilonCumulative')::float8, 0))) AS epsilon,
              COUNT(*) FILTER (WHERE agrees = false)::int AS disagreements
         FROM privacy_ledger WHERE study_id = $1 AND silo_id = $2`,
      [study.id, siloId],
    )) as { epsilon: number | null; disagreements: number }[];
    if (!cost) {
      return {
        ...base,
        mode: 'none',
        unit: null,
        epsilon: null,
        plannedEpsilon: null,
        targetEpsilon: null,
        delta: null,
        trainingRounds: null,
        evaluationReleases: null,
        disagreements: 0,
      };
    }
    return {
      ...base,
      mode: cost.mechanism,
      unit: cost.unit,
      epsilon: row?.epsilon ?? 0,
      plannedEpsilon: cost.epsilon,
      targetEpsilon: cost.targetEpsilon,
      delta: cost.delta,
      trainingRounds: null,
      evaluationReleases: null,
      disagreements: row?.disagreements ?? 0,
    };
  }
}
