import { Inject, Injectable } from '@nestjs/common';
import {
  chargedEpsilon,
  planLimitRefusal,
  privacyMechanismOf,
  privacySpendOf,
  type PrivacyMechanism,
} from '@tessera/dp';
import { type PrivacySpend, type StudyPlan } from '@tessera/protocol';
import { AuditTrail } from '../audit/audit-trail';
import type { PrivacyLedgerEntity } from './privacy-ledger.entity';
import { chargeOfTask, chargesNothing, reportAgrees, type ChargeCounts } from './privacy-report.util';
import { PrivacyRepository, type OpenTransaction } from './privacy.repository';

export interface LedgerEntryView {
  siloId: string;
  round: number;
  attempt: number;
  /** The task charged. */
  kind: 'train' | 'evaluate';
  /** 'issued': charged when the task was issued; 'accepted': a row from before issue 13 (charged on acceptance). */
  chargedOn: 'issued' | 'accepted';
  /** What this charge added. */
  added: ChargeCounts;
  mechanism: string;
  unit: string;
  noiseMultiplier: number;
  clipNorm: number;
  samplingRate: number;
  steps: number;
  delta: number;
  /** The hub's counts after this charge. */
  trainingRounds: number;
  evaluationReleases: number;
  epsilonRound: number;
  epsilonCumulative: number;
  accountant: string;
  /** Null until the silo reports on this task (and forever if it never does: the charge stands). */
  agrees: boolean | null;
  reported: PrivacySpend | null;
  at: string;
}

/**
 * Per study and silo: the hub's figure of what the silo has spent, and what one more training round would bring it
 * to. The figure counts are the larger of the hub's own charges and what the silo reported (an agent that spent
 * more than the hub knows, by retraining a retried round, is believed on the side of caution).
 */
export interface SiloBudget {
  siloId: string;
  /** Training rounds: max(charged by the hub, reported by the silo). */
  trainingRounds: number;
  /** Noisy evaluation releases: max(charged by the hub, reported by the silo). */
  evaluationReleases: number;
  /** Personalizations (0 or 1): max(charged by the hub, reported by the silo). */
  personalizations: number;
  chargedTrainingRounds: number;
  chargedEvaluationReleases: number;
  /** Null when the silo never reported. */
  reportedTrainingRounds: number | null;
  reportedEvaluationReleases: number | null;
  /** The hub's own ε for the figure counts (chargedEpsilon, the accountant of libs/dp). */
  epsilon: number;
  /** The largest cumulative ε the silo reported (its own accountant), null when it never reported. */
  reportedEpsilon: number | null;
  /** Reports that disagreed with the hub's charge. */
  disagreements: number;
  /** ε after one more training round (with its evaluation release when the plan evaluates every round). */
  nextRoundEpsilon: number;
  targetEpsilon: number;
  delta: number;
}

/** One charge made when a task was issued (for the audit trail). */
export interface PrivacyCharge {
  siloId: string;
  round: number;
  attempt: number;
  kind: 'train' | 'evaluate';
  added: ChargeCounts;
  spend: PrivacySpend;
}

/** The outcome of attaching a silo's report to its charge. */
export interface PrivacyReportOutcome {
  charge: PrivacyCharge;
  agrees: boolean;
}

interface StudyRef {
  id: string;
  planHash: string;
  plan: StudyPlan;
}

/**
 * The hub's privacy ledger (docs/privacy.md, "The hub's ledger"): the hub charges every silo when it ISSUES a task
 * that makes the silo spend privacy, computing the spend itself with the same accountant as the agent (libs/dp via
 * libs/protocol), so a late, lost or refused upload is charged as the silo charged it. A retried attempt of the same
 * round is not charged again (the agent re-sends the same release). Each silo's report is attached to its charge and
 * any disagreement flagged; the hub's figure is the larger of its own count and the silo's, and no round opens that
 * would take a participant past the approved plan (`planLimitRefusal`, the rule the agents enforce too).
 */
@Injectable()
export class PrivacyLedgerService {
  private readonly mechanisms = new Map<string, PrivacyMechanism | null>();

  constructor(
    private readonly rows: PrivacyRepository,
    @Inject(AuditTrail) private readonly audit: AuditTrail,
  ) {}

  /** The study's mechanism (cached per plan hash: calibration takes a moment). */
  mechanismOf(planHash: string, plan: StudyPlan): PrivacyMechanism | null {
    if (!this.mechanisms.has(planHash)) this.mechanisms.set(planHash, privacyMechanismOf(plan));
    return this.mechanisms.get(planHash) ?? null;
  }

  /**
   * Charges the silos a task was issued to, inside the transaction that opens the round. A silo already charged for
   * this round and kind (an earlier attempt) is not charged again. Returns the new charges, for the audit trail.
   */
  async chargeIssued(
    tx: OpenTransaction,
    study: StudyRef,
    round: { number: number; attempt: number; kind: 'train' | 'evaluate' },
    siloIds: string[],
  ): Promise<PrivacyCharge[]> {
    const m = this.mechanismOf(study.planHash, study.plan);
    if (!m || siloIds.length === 0) return [];
    const added = chargeOfTask(m, study.plan, round.kind);
    if (chargesNothing(added)) return [];
    const charged = new Set(
      await this.rows.chargedSilos(tx, { studyId: study.id, round: round.number, kind: round.kind }),
    );
    const fresh = siloIds.filter((s) => !charged.has(s));
    if (fresh.length === 0) return [];
    const figures = new Map((await this.budgets(tx, study, fresh)).map((b) => [b.siloId, b]));
    const out: PrivacyCharge[] = [];
    for (const siloId of fresh) {
      const before = figures.get(siloId)!;
      const spend = privacySpendOf(
        m,
        before.trainingRounds + added.trainingRounds,
        before.evaluationReleases + added.evaluationReleases,
        added,
        before.personalizations + (added.personalizations ?? 0),
      );
      await this.rows.insertCharge(tx, {
        studyId: study.id,
        siloId,
        round: round.number,
        attempt: round.attempt,
        kind: round.kind,
        chargedOn: 'issued',
        trainingAdded: added.trainingRounds,
        evaluationAdded: added.evaluationReleases,
        personalizationAdded: added.personalizations ?? 0,
        mechanism: spend.mechanism,
        unit: spend.unit,
        noiseMultiplier: spend.noiseMultiplier,
        clipNorm: spend.clipNorm,
        samplingRate: spend.samplingRate,
        steps: spend.steps,
        delta: spend.delta,
        trainingRounds: spend.trainingRounds,
        evaluationReleases: spend.evaluationReleases,
        epsilonRound: spend.epsilonRound,
        epsilonCumulative: spend.epsilonCumulative,
        accountant: spend.accountant,
        reported: null,
        agrees: null,
        reportedAt: null,
      });
      out.push({ siloId, round: round.number, attempt: round.attempt, kind: round.kind, added, spend });
    }
    return out;
  }

  /**
   * Attaches a silo's report (already checked against the plan's mechanism by privacyReportRefusal) to its charge,
   * inside the acceptance transaction. A report with larger counts than the stored one replaces it (the hub's figure
   * follows the silo's largest claim); a smaller one is flagged and kept only in the audit trail.
   */
  async recordReport(
    tx: OpenTransaction,
    study: StudyRef,
    round: { number: number; attempt: number; kind: 'train' | 'evaluate' },
    siloId: string,
    reported: PrivacySpend,
  ): Promise<PrivacyReportOutcome | null> {
    const m = this.mechanismOf(study.planHash, study.plan);
    if (!m) return null;
    const key = { studyId: study.id, round: round.number, kind: round.kind };
    let row = await this.rows.issuedCharge(tx, key, siloId);
    if (!row) {
      // A task issued before this hub charged on issue (an upgrade mid-study): charge it now, then compare.
      await this.chargeIssued(tx, study, round, [siloId]);
      row = await this.rows.issuedCharge(tx, key, siloId);
      if (!row) return null;
    }
    // A study personalizes at most once, at its final evaluation: the row's added count is its cumulative one.
    const agrees = reportAgrees({ ...row, personalizations: row.personalizationAdded }, reported);
    const stored = row.reported;
    if (
      stored === null ||
      (reported.trainingRounds >= stored.trainingRounds &&
        reported.evaluationReleases >= stored.evaluationReleases &&
        (reported.personalizations ?? 0) >= (stored.personalizations ?? 0))
    ) {
      await this.rows.attachReport(tx, row.id, { reported, agrees, reportedAt: new Date() });
    }
    return {
      charge: {
        siloId,
        round: row.round,
        attempt: row.attempt,
        kind: row.kind,
        added: addedOfRow(row),
        spend: spendOfRow(row),
      },
      agrees,
    };
  }

  /**
   * Audit records of the charges made when tasks were issued. Call inside the transaction that made the charges: the
   * records join it (AmbientTransactions), so a charge is never stored without its record, nor recorded without it.
   */
  async auditCharges(studyId: string, charges: PrivacyCharge[]): Promise<void> {
    for (const c of charges) {
      await this.audit.record({
        actor: { type: 'system', id: 'privacy-ledger' },
        action: 'privacy.charged',
        subject: { studyId, siloId: c.siloId },
        details: { round: c.round, attempt: c.attempt, kind: c.kind, added: { ...c.added }, ...c.spend },
      });
    }
  }

  /** The audit record of a report that disagrees with the hub's charge; call inside the acceptance transaction. */
  async auditReport(
    ids: { studyId: string; siloId: string; siloName: string; round: number },
    outcome: PrivacyReportOutcome,
    reported: PrivacySpend,
  ): Promise<void> {
    if (outcome.agrees) return;
    await this.audit.record({
      actor: { type: 'silo', id: ids.siloId, name: ids.siloName },
      action: 'privacy.disagreement',
      subject: { studyId: ids.studyId, siloId: ids.siloId },
      details: { round: ids.round, kind: outcome.charge.kind, reported, computed: outcome.charge.spend },
    });
  }

  /** The hub's figures for the given silos of a study (see SiloBudget). */
  async budgets(m: OpenTransaction, study: StudyRef, siloIds: string[]): Promise<SiloBudget[]> {
    const mechanism = this.mechanismOf(study.planHash, study.plan);
    if (!mechanism) return [];
    const studyId = study.id;
    const rows = await this.rows.totals(m, studyId);
    const bySilo = new Map(rows.map((r) => [r.siloId, r]));
    const nextRound = chargeOfTask(mechanism, study.plan, 'train');
    return siloIds.map((siloId) => {
      const r = bySilo.get(siloId);
      const chargedTraining = r?.chargedTraining ?? 0;
      const chargedEvaluations = r?.chargedEvaluations ?? 0;
      const reportedTraining = r?.reportedTraining ?? null;
      const reportedEvaluations = r?.reportedEvaluations ?? null;
      const trainingRounds = Math.max(chargedTraining, reportedTraining ?? 0);
      const evaluationReleases = Math.max(chargedEvaluations, reportedEvaluations ?? 0);
      const personalizations = Math.max(r?.chargedPersonalizations ?? 0, r?.reportedPersonalizations ?? 0);
      return {
        siloId,
        trainingRounds,
        evaluationReleases,
        personalizations,
        chargedTrainingRounds: chargedTraining,
        chargedEvaluationReleases: chargedEvaluations,
        reportedTrainingRounds: reportedTraining,
        reportedEvaluationReleases: reportedEvaluations,
        epsilon: chargedEpsilon(mechanism, trainingRounds, evaluationReleases, personalizations),
        reportedEpsilon: r?.reportedEpsilon ?? null,
        disagreements: r?.disagreements ?? 0,
        nextRoundEpsilon: chargedEpsilon(
          mechanism,
          trainingRounds + nextRound.trainingRounds,
          evaluationReleases + nextRound.evaluationReleases,
          personalizations,
        ),
        targetEpsilon: mechanism.targetEpsilon,
        delta: mechanism.delta,
      };
    });
  }

  /**
   * Why issuing a task of this kind to these silos would break the approved plan, per silo (empty: it may be
   * issued). Counts from the hub's figure, so a silo that reported more than the hub charged is held to its report.
   */
  async planLimits(
    m: OpenTransaction,
    study: StudyRef,
    round: { number: number; kind: 'train' | 'evaluate' },
    siloIds: string[],
  ): Promise<{ siloId: string; reason: string }[]> {
    const mechanism = this.mechanismOf(study.planHash, study.plan);
    if (!mechanism) return [];
    const added = chargeOfTask(mechanism, study.plan, round.kind);
    if (chargesNothing(added)) return [];
    // A silo already charged for this round and kind is not charged again by a retried attempt.
    const charged = new Set(
      await this.rows.chargedSilos(m, { studyId: study.id, round: round.number, kind: round.kind }),
    );
    const out: { siloId: string; reason: string }[] = [];
    for (const b of await this.budgets(m, study, siloIds)) {
      const more: ChargeCounts = charged.has(b.siloId) ? { trainingRounds: 0, evaluationReleases: 0 } : added;
      const reason = planLimitRefusal(mechanism, {
        trainingRounds: b.trainingRounds + more.trainingRounds,
        evaluationReleases: b.evaluationReleases + more.evaluationReleases,
        personalizations: b.personalizations + (more.personalizations ?? 0),
      });
      if (reason !== null) out.push({ siloId: b.siloId, reason });
    }
    return out;
  }

  /** The manager outside any transaction, for a caller that reads budgets without one. */
  manager(): OpenTransaction {
    return this.rows.manager();
  }

  async ledger(studyId: string): Promise<LedgerEntryView[]> {
    const rows = await this.rows.entries(studyId);
    return rows.map((r) => ({
      siloId: r.siloId,
      round: r.round,
      attempt: r.attempt,
      kind: r.kind,
      chargedOn: r.chargedOn,
      added: addedOfRow(r),
      ...spendOfRow(r),
      agrees: r.agrees,
      reported: r.reported,
      at: r.createdAt.toISOString(),
    }));
  }
}

function addedOfRow(r: PrivacyLedgerEntity): ChargeCounts {
  return {
    trainingRounds: r.trainingAdded,
    evaluationReleases: r.evaluationAdded,
    ...(r.personalizationAdded > 0 ? { personalizations: r.personalizationAdded } : {}),
  };
}

function spendOfRow(r: PrivacyLedgerEntity): PrivacySpend {
  return {
    mechanism: r.mechanism,
    unit: r.unit,
    noiseMultiplier: r.noiseMultiplier,
    clipNorm: r.clipNorm,
    samplingRate: r.samplingRate,
    steps: r.steps,
    delta: r.delta,
    trainingRounds: r.trainingRounds,
    evaluationReleases: r.evaluationReleases,
    // Charged only by the final evaluation (at most once), so the added count is the cumulative one there.
    ...(r.personalizationAdded > 0 ? { personalizations: r.personalizationAdded } : {}),
    epsilonRound: r.epsilonRound,
    epsilonCumulative: r.epsilonCumulative,
    accountant: r.accountant,
  };
}
