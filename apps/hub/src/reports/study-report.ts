import type { JsonObject } from '@tessera/audit';
import type { PrivacyMechanism } from '@tessera/dp';
import { fairnessView, type EvaluationMetrics, type FairnessView } from '@tessera/protocol';
import type { StoredChainVerification } from '../audit/audit-verification.service';
import type { RoundView } from '../rounds/rounds-query.service';
import type { StudyView } from '../studies/studies.service';
import {
  bySiloName,
  legacyPrivacySection,
  legacyReleaseSection,
  privacySection,
  releaseSection,
  roundSecureAggregation,
  secureAggregationSection,
  type PrivacySection,
  type ReleaseSection,
  type RoundSecureAggregation,
  type SecureAggregationSection,
  type SiloPrivacyFigures,
} from './study-report-sections';

/** The `kind` tag of the study summary carried in a report bundle's `study` member. */
export const STUDY_REPORT_KIND = 'tessera.study-report/1';

/** How an auditor checks the JSON report offline (printed in the PDF and carried in the summary). */
export const OFFLINE_VERIFY_COMMAND = 'npx tessera-verify report.json --public-key hub-public.pem';

export interface SiloRef {
  siloId: string;
  name: string;
}

export interface ApprovalLine {
  siloId: string;
  siloName: string;
  /** 'approve' | 'reject', or null when the silo has not decided on the current plan version. */
  decision: string | null;
  /** The exact plan hash the silo's agent sent (computed by the agent from the plan itself). */
  planHash: string | null;
  decidedAt: string | null;
  reason: string | null;
}

export interface SiloEvaluation {
  siloId: string;
  siloName: string;
  /** Null for a regression task (network plans), which has no accuracy. */
  accuracy: number | null;
  /** Null for a noisy evaluation (a DP release carries no loss). */
  loss: number | null;
  auc: number | null;
  /** Test records at the silo (a count, never a record); a noisy estimate when `noisy`. */
  n: number;
  /** True when the figures are estimates from a differentially private release (noisy score histogram). */
  noisy: boolean;
}

export interface RoundLine {
  round: number;
  attempt: number;
  kind: 'train' | 'evaluate';
  status: string;
  openedAt: string;
  closedAt: string | null;
  closeReason: string | null;
  /** The global model the round published (SHA-256 of its float32 bytes). */
  modelHash: string;
  /** The model a training round produced, null for evaluation rounds and rounds that did not close. */
  resultModelHash: string | null;
  participants: number;
  reported: number;
  /** Mean over silos (unweighted) of the test accuracy of `modelHash`, as reported by the silos. */
  meanAccuracy: number | null;
  /** Each reporting silo's evaluation of `modelHash` on its local hold-out. */
  evaluations: SiloEvaluation[];
  /** The secure sum this round's close recorded; null for a round that closed without one. */
  secureAggregation: RoundSecureAggregation | null;
}

/** A round's stored aggregation trace (RoundSummary.aggregationTrace), which the API's round view leaves out. */
export interface RoundAggregationTrace {
  round: number;
  attempt: number;
  trace: readonly object[];
}

export interface ChainVerificationLine {
  ok: boolean;
  verifiedAt: string;
  records: number;
  headSeq: number;
  headHash: string | null;
  checkpointsVerified: number;
  checkpointsTotal: number;
  firstBroken: { seq: number; code: string; message: string } | null;
}

/**
 * The study summary of a compliance report: the one source of every figure, in the JSON bundle (`study`) and in the
 * PDF rendered from that bundle. Plain JSON (no undefined, no Date) so it can be canonicalized and signed.
 */
export interface StudyReportSummary {
  kind: typeof STUDY_REPORT_KIND;
  id: string;
  name: string;
  purpose: string;
  status: string;
  planVersion: number;
  planHash: string;
  createdAt: string;
  startedAt: string | null;
  endedAt: string | null;
  endReason: string | null;
  model: string;
  training: { rounds: number; localEpochs: number; algorithm: string; serverOptimizer: string };
  invited: SiloRef[];
  participants: SiloRef[];
  approvals: ApprovalLine[];
  rounds: RoundLine[];
  models: {
    /** The first round's published model. */
    initial: string | null;
    /** The study's final model, once completed (what the evaluation round measured). */
    final: string | null;
    perRound: { round: number; attempt: number; input: string; output: string | null }[];
  };
  /**
   * The final evaluation round: each silo's evaluation of the final model, and the fairness view across silos
   * (worst and best silo, their gap; with plan.personalization each silo's personalized figure and its change from
   * its local-only baseline; docs/personalization.md).
   */
  finalEvaluation: { round: number; modelHash: string; perSilo: SiloEvaluation[]; fairness: FairnessView } | null;
  releases: ReleaseSection;
  privacy: PrivacySection;
  /** Under a plan with secureAggregation its parameters and statement; null without it. */
  secureAggregation: SecureAggregationSection | null;
  /**
   * The audit chain head this report covers (the bundle's last record). Every format of one report names it, and a
   * download with `?upTo=<seq>` covers the same head again whatever was appended since.
   */
  chainHead: { seq: number; hash: string };
  /**
   * The hub's verification of its stored chain, done just before the bundle was signed, stated up to chainHead: when
   * the whole stored chain verified, so did every record and checkpoint up to the head (what later records add is
   * not this report's subject); a broken chain is stated as found, wherever the break.
   */
  chainVerification: ChainVerificationLine;
  signingKey: { algorithm: 'Ed25519'; keyId: string };
  verifyOffline: string;
}

export interface StudyReportInput {
  study: StudyView;
  rounds: RoundView[];
  /** The plan's mechanism (privacyMechanismOf), null without DP. */
  mechanism: PrivacyMechanism | null;
  privacy: SiloPrivacyFigures[];
  verification: StoredChainVerification;
  /** The head the report covers, and the number of stored checkpoints at or below it. */
  head: { seq: number; hash: string; checkpoints: number };
  keyId: string;
  /** The rounds' stored aggregation traces; a round without one states no secure sum. */
  aggregationTraces?: readonly RoundAggregationTrace[];
}

/** The verification as it concerns the chain up to `head` (see StudyReportSummary.chainVerification). */
export function verificationAtHead(
  verification: StoredChainVerification,
  head: StudyReportInput['head'],
): ChainVerificationLine {
  const firstBroken = verification.firstBroken;
  const line: ChainVerificationLine = {
    ok: verification.ok,
    verifiedAt: verification.verifiedAt,
    records: verification.records,
    headSeq: verification.headSeq,
    headHash: verification.headHash,
    checkpointsVerified: verification.checkpoints.verified,
    checkpointsTotal: verification.checkpoints.total,
    firstBroken:
      firstBroken === null ? null : { seq: firstBroken.seq, code: firstBroken.code, message: firstBroken.message },
  };
  if (!verification.ok || verification.headSeq < head.seq) return line;
  return {
    ...line,
    records: head.seq,
    headSeq: head.seq,
    headHash: head.hash,
    checkpointsVerified: head.checkpoints,
    checkpointsTotal: head.checkpoints,
  };
}

/** The fairness view of a final evaluation round's reports (silos in name order). */
export function fairnessOfRound(round: RoundView): FairnessView {
  return fairnessView(
    [...round.participants].sort(bySiloName).map((p) => ({
      siloId: p.siloId,
      siloName: p.siloName,
      global: p.evaluation,
      personalized: p.personalization?.personalized ?? null,
      localBaseline: p.personalization?.localBaseline ?? null,
    })),
  );
}

function evaluationsOf(round: RoundView): SiloEvaluation[] {
  return round.participants
    .filter((p): p is typeof p & { evaluation: EvaluationMetrics } => p.evaluation !== null)
    .map((p) => ({
      siloId: p.siloId,
      siloName: p.siloName,
      accuracy: p.evaluation.accuracy,
      loss: p.evaluation.loss,
      auc: p.evaluation.auc,
      n: p.evaluation.n,
      noisy: p.evaluation.noisy === true,
    }))
    .sort(bySiloName);
}

/**
 * Builds the study summary of a compliance report from the hub's read models. Pure: the caller reads the study,
 * its rounds, the participants' privacy statements and the chain verification, and signs the result in a bundle.
 */
export function buildStudyReportSummary(input: StudyReportInput): StudyReportSummary {
  const { study, rounds, verification } = input;
  const names = new Map(study.decisions.map((d) => [d.siloId, d.siloName]));
  for (const r of rounds) for (const p of r.participants) names.set(p.siloId, p.siloName);
  const ref = (siloId: string): SiloRef => ({ siloId, name: names.get(siloId) ?? 'unknown' });
  const finalRound = [...rounds].reverse().find((r) => r.kind === 'evaluate' && r.status === 'closed');
  const plan = study.plan;
  const traces = new Map((input.aggregationTraces ?? []).map((t) => [`${t.round}.${t.attempt}`, t.trace]));
  const roundLines: RoundLine[] = rounds.map((r) => {
    const trace = traces.get(`${r.number}.${r.attempt}`);
    return {
      round: r.number,
      attempt: r.attempt,
      kind: r.kind,
      status: r.status,
      openedAt: r.openedAt,
      closedAt: r.closedAt,
      closeReason: r.closeReason,
      modelHash: r.modelHash,
      resultModelHash: r.resultModelHash,
      participants: r.participants.length,
      reported: r.summary?.reported ?? r.participants.filter((p) => p.status !== 'waiting').length,
      meanAccuracy: r.summary?.evaluation.accuracy.unweighted ?? null,
      evaluations: evaluationsOf(r),
      secureAggregation: trace === undefined ? null : roundSecureAggregation(trace, `${r.number}.${r.attempt}`),
    };
  });
  const summary: StudyReportSummary = {
    kind: STUDY_REPORT_KIND,
    id: study.id,
    name: study.name,
    purpose: plan.purpose,
    status: study.status,
    planVersion: study.planVersion,
    planHash: study.planHash,
    createdAt: study.createdAt,
    startedAt: study.startedAt,
    endedAt: study.endedAt,
    endReason: study.endReason,
    model: plan.model.kind,
    training: {
      rounds: plan.training.rounds,
      localEpochs: plan.training.localEpochs,
      algorithm: plan.training.algorithm,
      serverOptimizer: plan.training.serverOptimizer.kind,
    },
    invited: plan.silos.map(ref),
    participants: study.participants.map(ref),
    approvals: study.decisions.map((d) => ({
      siloId: d.siloId,
      siloName: d.siloName,
      decision: d.decision,
      planHash: d.planHash,
      decidedAt: d.decidedAt,
      reason: d.reason,
    })),
    rounds: roundLines,
    models: {
      initial: rounds[0]?.modelHash ?? null,
      final: study.status === 'completed' ? study.currentModelHash : null,
      perRound: rounds.map((r) => ({
        round: r.number,
        attempt: r.attempt,
        input: r.modelHash,
        output: r.resultModelHash,
      })),
    },
    finalEvaluation:
      finalRound === undefined
        ? null
        : {
            round: finalRound.number,
            modelHash: finalRound.modelHash,
            perSilo: evaluationsOf(finalRound),
            fairness: fairnessOfRound(finalRound),
          },
    releases: study.legacyPlan ? legacyReleaseSection(plan, study.legacyPlan.note) : releaseSection(plan),
    privacy: study.legacyPlan
      ? legacyPrivacySection(privacySection(plan, input.mechanism, input.privacy, names))
      : privacySection(plan, input.mechanism, input.privacy, names),
    secureAggregation: secureAggregationSection(plan, roundLines),
    chainHead: { seq: input.head.seq, hash: input.head.hash },
    chainVerification: verificationAtHead(verification, input.head),
    signingKey: { algorithm: 'Ed25519', keyId: input.keyId },
    verifyOffline: OFFLINE_VERIFY_COMMAND,
  };
  return summary;
}

/** The summary as the JSON object a bundle signs (it is plain JSON by construction). */
export function summaryJson(summary: StudyReportSummary): JsonObject {
  return summary as unknown as JsonObject;
}
