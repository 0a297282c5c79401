import { Injectable } from '@nestjs/common';
import type { SiloPrivacyView, SiloStudyPrivacyView } from '@tessera/protocol';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { StudyEntity } from '../study-state/study.entity';
import { storedPlanOf } from '../study-state/stored-plan.util';
import { PrivacyLedgerService } from './privacy-ledger.service';
import { PrivacyRepository } from './privacy.repository';

/**
 * One silo's privacy across studies (docs/privacy.md, "One silo across studies"): for every study the silo was
 * invited to (or was charged by), the hub's figure of what the study spent on the silo's data, against the study's
 * target, and the basic-composition total. The hub does not know the silo's own cap: the agent holds and enforces it.
 */
@Injectable()
export class SiloPrivacyService {
  constructor(
    private readonly rows: PrivacyRepository,
    private readonly ledger: PrivacyLedgerService,
  ) {}

  async ofSilo(siloId: string): Promise<SiloPrivacyView> {
    const silo = await this.rows.findSilo(siloId);
    if (!silo) throw new HubException(HubErrorCode.NOT_FOUND, `No silo with id ${siloId}.`);
    const studies = await this.rows.studiesOfSilo(siloId);
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
    const [budget] = await this.ledger.budgets(this.rows.manager(), study, [siloId]);
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
    const row = await this.rows.legacyFigure(study.id, siloId);
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
