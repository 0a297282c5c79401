import type { JsonObject } from '@tessera/audit';
import type { EvaluationMetrics, PrivacySpend, StudyPlan } from '@tessera/protocol';
import type { StoredChainVerification } from '../audit/audit-verification.service';
import type { RoundView } from '../rounds/rounds-query.service';
import type { StudyView } from '../studies/studies.service';

/** The `kind` tag of the study summary carried in a report bundle's `study` member. */
export const STUDY_REPORT_KIND = 'tessera.study-report/1';

/** How an auditor checks the JSON report offline (printed in the PDF and carried in the summary). */
export const OFFLINE_VERIFY_COMMAND = 'npx tessera-verify report.json --public-key hub-public.pem';

/** Said, in these words, in every report of a study trained without differential privacy. */
export const NO_DP_STATEMENT =
  'No differential privacy: this study was planned without it (privacy mode "none"). Updates carry no noise and no ' +
  'privacy budget is accounted; the protection of patient records rests on their never leaving the silos.';

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
  accuracy: number;
  loss: number;
  auc: number | null;
  /** Test records at the silo (a count, never a record). */
  n: number;
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
}

export interface SiloPrivacyLine {
  siloId: string;
  siloName: string;
  mechanism: string;
  unit: string;
  /** σ, relative to the clipping norm C (noise standard deviation = σ·C). */
  noiseMultiplier: number;
  /** C: the L2 clipping norm (per example for dp-sgd, per update for dp-fedavg). */
  clipNorm: number;
  /** q: Poisson sampling rate of each step. */
  samplingRate: number;
  /** Mechanism invocations summed over the silo's accepted updates. */
  steps: number;
  /** Cumulative ε at `delta` after the silo's last accepted update, as the silo reported it. */
  epsilon: number;
  delta: number;
  accountant: string;
  /** Accepted updates that carried a privacy statement. */
  updates: number;
}

export type PrivacySection =
  | { mode: 'none'; statement: string; perSilo: [] }
  | {
      mode: string;
      unit: string;
      targetEpsilon: number;
      delta: number;
      statement: string;
      perSilo: SiloPrivacyLine[];
    };

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
  /** The final evaluation round: each silo's evaluation of the final model. */
  finalEvaluation: { round: number; modelHash: string; perSilo: SiloEvaluation[] } | null;
  privacy: PrivacySection;
  /** The hub's verification of its whole stored chain, done just before the bundle was signed. */
  chainVerification: ChainVerificationLine;
  signingKey: { algorithm: 'Ed25519'; keyId: string };
  verifyOffline: string;
}

/** A round participant's privacy statement, as stored with its accepted update. */
export interface ParticipantPrivacy {
  round: number;
  attempt: number;
  siloId: string;
  privacy: PrivacySpend;
}

export interface StudyReportInput {
  study: StudyView;
  rounds: RoundView[];
  privacy: ParticipantPrivacy[];
  verification: StoredChainVerification;
  keyId: string;
}

/** By name in UTF-16 code-unit order: the same order on every machine, whatever its locale (the report is signed). */
function bySiloName(a: { siloName: string; siloId: string }, b: { siloName: string; siloId: string }): number {
  const x = a.siloName + '\u0000' + a.siloId;
  const y = b.siloName + '\u0000' + b.siloId;
  return x < y ? -1 : x > y ? 1 : 0;
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
    }))
    .sort(bySiloName);
}

function privacySection(plan: StudyPlan, rows: ParticipantPrivacy[], names: Map<string, string>): PrivacySection {
  if (plan.privacy.mode === 'none') return { mode: 'none', statement: NO_DP_STATEMENT, perSilo: [] };
  const bySilo = new Map<string, ParticipantPrivacy[]>();
  for (const row of rows) bySilo.set(row.siloId, [...(bySilo.get(row.siloId) ?? []), row]);
  const perSilo: SiloPrivacyLine[] = [...bySilo.entries()].map(([siloId, list]) => {
    const ordered = [...list].sort((a, b) => a.round - b.round || a.attempt - b.attempt);
    const last = ordered[ordered.length - 1]!.privacy;
    return {
      siloId,
      siloName: names.get(siloId) ?? 'unknown',
      mechanism: last.mechanism,
      unit: last.unit,
      noiseMultiplier: last.noiseMultiplier,
      clipNorm: last.clipNorm,
      samplingRate: last.samplingRate,
      steps: ordered.reduce((n, r) => n + r.privacy.steps, 0),
      epsilon: Math.max(...ordered.map((r) => r.privacy.epsilonCumulative)),
      delta: last.delta,
      accountant: last.accountant,
      updates: ordered.length,
    };
  });
  perSilo.sort(bySiloName);
  const unit = plan.privacy.unit === 'record' ? 'one patient record' : "one silo's whole dataset";
  return {
    mode: plan.privacy.mode,
    unit: plan.privacy.unit,
    targetEpsilon: plan.privacy.targetEpsilon,
    delta: plan.privacy.delta,
    statement:
      `Differential privacy (${plan.privacy.mode}); the protected unit is ${unit}. Target for the whole study: ` +
      `epsilon ${plan.privacy.targetEpsilon} at delta ${plan.privacy.delta}. Per-silo figures are those each silo ` +
      'reported with its accepted updates.',
    perSilo,
  };
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
  const firstBroken = verification.firstBroken;
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
    rounds: rounds.map((r) => ({
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
    })),
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
        : { round: finalRound.number, modelHash: finalRound.modelHash, perSilo: evaluationsOf(finalRound) },
    privacy: privacySection(plan, input.privacy, names),
    chainVerification: {
      ok: verification.ok,
      verifiedAt: verification.verifiedAt,
      records: verification.records,
      headSeq: verification.headSeq,
      headHash: verification.headHash,
      checkpointsVerified: verification.checkpoints.verified,
      checkpointsTotal: verification.checkpoints.total,
      firstBroken:
        firstBroken === null ? null : { seq: firstBroken.seq, code: firstBroken.code, message: firstBroken.message },
    },
    signingKey: { algorithm: 'Ed25519', keyId: input.keyId },
    verifyOffline: OFFLINE_VERIFY_COMMAND,
  };
  return summary;
}

/** The summary as the JSON object a bundle signs (it is plain JSON by construction). */
export function summaryJson(summary: StudyReportSummary): JsonObject {
  return summary as unknown as JsonObject;
}
