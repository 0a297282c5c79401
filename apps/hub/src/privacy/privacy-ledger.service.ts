import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import {
  epsilonAfterRounds,
  epsilonsAgree,
  privacyMechanismOf,
  privacySpendOf,
  type PrivacyMechanism,
  type PrivacySpend,
  type StudyPlan,
} from '@tessera/protocol';
import { DataSource, type EntityManager } from 'typeorm';
import { AuditTrail } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import { PrivacyLedgerEntity } from './privacy-ledger.entity';

export interface LedgerEntryView {
  siloId: string;
  round: number;
  attempt: number;
  mechanism: string;
  unit: string;
  noiseMultiplier: number;
  clipNorm: number;
  samplingRate: number;
  steps: number;
  delta: number;
  epsilonRound: number;
  epsilonCumulative: number;
  accountant: string;
  agrees: boolean;
  reported: PrivacySpend | null;
  at: string;
}

/** Per study and silo: the spend so far and what the next round would bring it to. */
export interface SiloBudget {
  siloId: string;
  roundsSpent: number;
  epsilon: number;
  nextRoundEpsilon: number;
  targetEpsilon: number;
  delta: number;
}

/**
 * The hub's privacy ledger: the hub computes every silo's spend itself (same accountant as the agent, libs/dp),
 * records the mechanism with it, flags any disagreement with what the silo reported, and refuses to open a round
 * that would take a participant past the study's target.
 */
@Injectable()
export class PrivacyLedgerService {
  private readonly mechanisms = new Map<string, PrivacyMechanism | null>();

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(AuditTrail) private readonly audit: AuditTrail,
  ) {}

  /** The study's mechanism (cached per plan hash: calibration takes a moment). */
  mechanismOf(planHash: string, plan: StudyPlan): PrivacyMechanism | null {
    if (!this.mechanisms.has(planHash)) this.mechanisms.set(planHash, privacyMechanismOf(plan));
    return this.mechanisms.get(planHash) ?? null;
  }

  /**
   * Records the spend of an accepted DP update inside the acceptance transaction. A DP study's update must carry
   * the silo's own report; a report that differs from the hub's computation is kept and flagged, not trusted.
   */
  async recordSpend(
    tx: EntityManager,
    entry: {
      studyId: string;
      siloId: string;
      round: number;
      attempt: number;
      planHash: string;
      plan: StudyPlan;
      reported: PrivacySpend | null;
    },
  ): Promise<{ spend: PrivacySpend; agrees: boolean } | null> {
    const m = this.mechanismOf(entry.planHash, entry.plan);
    if (!m) return null;
    if (!entry.reported) {
      throw new HubException(
        HubErrorCode.UPDATE_MALFORMED,
        'An update of a differentially private study must report its privacy spend.',
      );
    }
    const spent = await tx
      .getRepository(PrivacyLedgerEntity)
      .count({ where: { studyId: entry.studyId, siloId: entry.siloId } });
    const spend = privacySpendOf(m, spent + 1);
    const r = entry.reported;
    const agrees =
      r.mechanism === spend.mechanism &&
      r.unit === spend.unit &&
      r.steps === spend.steps &&
      epsilonsAgree(r.noiseMultiplier, spend.noiseMultiplier) &&
      epsilonsAgree(r.clipNorm, spend.clipNorm) &&
      epsilonsAgree(r.samplingRate, spend.samplingRate) &&
      epsilonsAgree(r.delta, spend.delta) &&
      epsilonsAgree(r.epsilonRound, spend.epsilonRound) &&
      epsilonsAgree(r.epsilonCumulative, spend.epsilonCumulative);
    await tx.getRepository(PrivacyLedgerEntity).insert({
      studyId: entry.studyId,
      siloId: entry.siloId,
      round: entry.round,
      attempt: entry.attempt,
      mechanism: spend.mechanism,
      unit: spend.unit,
      noiseMultiplier: spend.noiseMultiplier,
      clipNorm: spend.clipNorm,
      samplingRate: spend.samplingRate,
      steps: spend.steps,
      delta: spend.delta,
      roundsSpent: spent + 1,
      epsilonRound: spend.epsilonRound,
      epsilonCumulative: spend.epsilonCumulative,
      accountant: spend.accountant,
      reported: r,
      agrees,
    });
    return { spend, agrees };
  }

  /** Audit records for a recorded spend (written after the transaction commits). */
  async auditSpend(
    ids: { studyId: string; siloId: string; siloName: string; round: number },
    result: { spend: PrivacySpend; agrees: boolean },
    reported: PrivacySpend | null,
  ): Promise<void> {
    await this.audit.record({
      actor: { type: 'system', id: 'privacy-ledger' },
      action: 'privacy.spent',
      subject: { studyId: ids.studyId, siloId: ids.siloId },
      details: { round: ids.round, ...result.spend },
    });
    if (!result.agrees) {
      await this.audit.record({
        actor: { type: 'silo', id: ids.siloId, name: ids.siloName },
        action: 'privacy.disagreement',
        subject: { studyId: ids.studyId, siloId: ids.siloId },
        details: { round: ids.round, reported, computed: result.spend },
      });
    }
  }

  /** Budgets of the given silos in a study. */
  async budgets(
    m: EntityManager,
    studyId: string,
    mechanism: PrivacyMechanism,
    siloIds: string[],
  ): Promise<SiloBudget[]> {
    const rows = (await m.query(
      `SELECT silo_id, count(*)::int AS n FROM privacy_ledger WHERE study_id = $1 GROUP BY silo_id`,
      [studyId],
    )) as { silo_id: string; n: number }[];
    const spent = new Map(rows.map((r) => [r.silo_id, r.n]));
    return siloIds.map((siloId) => {
      const n = spent.get(siloId) ?? 0;
      return {
        siloId,
        roundsSpent: n,
        epsilon: epsilonAfterRounds(mechanism, n),
        nextRoundEpsilon: epsilonAfterRounds(mechanism, n + 1),
        targetEpsilon: mechanism.targetEpsilon,
        delta: mechanism.delta,
      };
    });
  }

  /** The participants a further round would take past the target (the hub then does not open it). */
  async overBudget(
    m: EntityManager,
    studyId: string,
    mechanism: PrivacyMechanism,
    siloIds: string[],
  ): Promise<SiloBudget[]> {
    // A hair of tolerance: the planned rounds were calibrated to land exactly on the target.
    return (await this.budgets(m, studyId, mechanism, siloIds)).filter(
      (b) => b.nextRoundEpsilon > b.targetEpsilon * (1 + 1e-9),
    );
  }

  manager(): EntityManager {
    return this.db.manager;
  }

  async ledger(studyId: string): Promise<LedgerEntryView[]> {
    const rows = await this.db
      .getRepository(PrivacyLedgerEntity)
      .find({ where: { studyId }, order: { createdAt: 'ASC' } });
    return rows.map((r) => ({
      siloId: r.siloId,
      round: r.round,
      attempt: r.attempt,
      mechanism: r.mechanism,
      unit: r.unit,
      noiseMultiplier: r.noiseMultiplier,
      clipNorm: r.clipNorm,
      samplingRate: r.samplingRate,
      steps: r.steps,
      delta: r.delta,
      epsilonRound: r.epsilonRound,
      epsilonCumulative: r.epsilonCumulative,
      accountant: r.accountant,
      agrees: r.agrees,
      reported: r.reported,
      at: r.createdAt.toISOString(),
    }));
  }
}
