import type { JsonObject } from '@tessera/audit';
import { DEFAULT_RDP_ORDERS_DESCRIPTION, type PrivacyMechanism } from '@tessera/dp';
import {
  describeRelease,
  fairnessView,
  releasedWithoutDp,
  type EvaluationMetrics,
  type FairnessView,
  type StudyPlan,
} from '@tessera/protocol';
import type { StoredChainVerification } from '../audit/audit-verification.service';
import type { RoundView } from '../rounds/rounds-query.service';
import type { StudyView } from '../studies/studies.service';
import { LEGACY_RELEASE, LEGACY_TRAINING_LOSS_RELEASE } from '../study-state/stored-plan.util';

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

/** A training round's secure aggregation, as its close recorded it (the `secure-aggregation` aggregation-trace entry). */
export interface RoundSecureAggregation {
  protocol: string;
  /** Masked inputs summed: the silos that survived to unmasking, each one clipped and masked update. */
  summed: number;
  /** 'equal': the unmasked sum divided by `summed` (a secure sum cannot be weighted). */
  weights: string;
  /** C: the L2 norm each silo clipped its update to before quantisation. */
  clipNorm: number;
  /** Worst-case absolute error per coordinate of the dequantised sum (survivors / scale). */
  quantisationErrorBound: number;
  /** False: the hub held the masked inputs' running sum and their headers, never an individual update. */
  individualUpdatesStored: boolean;
}

/** The plan's secureAggregation block, as the stewards approved it, and what the rounds recorded of it. */
export interface SecureAggregationSection {
  protocol: 'SecAgg+';
  /** Shamir threshold t. */
  threshold: number;
  /** Neighbours per silo; null for the complete graph (n − 1 for a round of n silos). */
  neighbourCount: number | null;
  modulusBits: number;
  clipNorm: number;
  /** Training rounds whose close recorded a secure sum. */
  roundsSummed: number;
  statement: string;
}

/** A round's stored aggregation trace (RoundSummary.aggregationTrace), which the API's round view leaves out. */
export interface RoundAggregationTrace {
  round: number;
  attempt: number;
  trace: readonly object[];
}

/**
 * One silo's privacy spend in the study. The mechanism's parameters are the plan's (a report stating weaker ones is
 * refused at the hub). Counts are the hub's figure: the larger of the charges it made when it issued tasks and what
 * the silo reported. `hubEpsilon` is the hub's own recomputation for those counts; `reportedEpsilon` the largest
 * cumulative ε the silo reported.
 */
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
  /** Training rounds charged to the silo. */
  trainingRounds: number;
  /** Mechanism invocations in one round, and over the silo's charged rounds (trainingRounds × stepsPerRound). */
  stepsPerRound: number;
  steps: number;
  /** Noisy evaluation releases charged to the silo (0 without noisy evaluation). */
  evaluationReleases: number;
  /** The hub's recomputed charged ε at `delta`: max(training ε, evaluation ε), disjoint record sets. */
  hubEpsilon: number;
  /** The largest cumulative ε the silo itself reported; null when it never reported. */
  reportedEpsilon: number | null;
  /** Reports of this silo that disagreed with the hub's charge (flagged as privacy.disagreement in the trail). */
  disagreements: number;
  delta: number;
  accountant: string;
}

/** How the ε figures were computed: enough for an auditor to re-price them with another accountant. */
export interface PrivacyAccounting {
  accountant: string;
  /** The RDP orders the accountant minimises over. */
  orders: string;
  noiseMultiplier: number;
  clipNorm: number;
  samplingRate: number;
  stepsPerRound: number;
  plannedRounds: number;
  /** plannedRounds × stepsPerRound. */
  plannedSteps: number;
  /** ε of the whole plan (training and planned evaluation releases), at delta. */
  plannedEpsilon: number;
  /** The noisy evaluation: discrete Gaussian noise (standard deviation in counts) per released histogram count. */
  evaluation: { noiseStddev: number; releases: number; plannedEpsilon: number } | null;
}

export type PrivacySection =
  | { mode: 'none'; statement: string; perSilo: [] }
  | {
      mode: 'dp-sgd' | 'dp-fedavg';
      unit: string;
      targetEpsilon: number;
      delta: number;
      statement: string;
      accounting: PrivacyAccounting;
      perSilo: SiloPrivacyLine[];
    };

/** What the plan lets a silo send besides its (noised) update, and what of it is outside the DP guarantee. */
export interface ReleaseSection {
  /** The release plan in words (describeRelease). */
  description: string;
  evaluation: StudyPlan['release']['evaluation'];
  trainingExamples: StudyPlan['release']['trainingExamples'];
  /** releasedWithoutDp(plan): empty when everything a silo sends is inside the DP guarantee. */
  releasedWithoutDp: string[];
  /** "Released without differential privacy: nothing", or the list. */
  statement: string;
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

/** A silo's figures from the hub's privacy ledger (PrivacyLedgerService.budgets). */
export interface SiloPrivacyFigures {
  siloId: string;
  trainingRounds: number;
  evaluationReleases: number;
  /** The hub's recomputed charged ε for those counts. */
  epsilon: number;
  reportedEpsilon: number | null;
  disagreements: number;
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

/** By name in UTF-16 code-unit order: the same order on every machine, whatever its locale (the report is signed). */
function bySiloName(a: { siloName: string; siloId: string }, b: { siloName: string; siloId: string }): number {
  const x = a.siloName + '\u0000' + a.siloId;
  const y = b.siloName + '\u0000' + b.siloId;
  return x < y ? -1 : x > y ? 1 : 0;
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

/** The statement every report makes about what left the silos outside differential privacy. */
export function releasedWithoutDpStatement(items: string[]): string {
  return `Released without differential privacy: ${items.length === 0 ? 'nothing' : items.join('; ')}`;
}

function releaseSection(plan: StudyPlan): ReleaseSection {
  const items = releasedWithoutDp(plan);
  return {
    description: describeRelease(plan),
    evaluation: plan.release.evaluation,
    trainingExamples: plan.release.trainingExamples,
    releasedWithoutDp: items,
    statement: releasedWithoutDpStatement(items),
  };
}

/**
 * A plan of an earlier format declared no releases: its silos sent what that protocol always sent (LEGACY_RELEASE,
 * plus the training loss). Only the stored plan's privacy mode is read, which both formats share.
 */
function legacyReleaseSection(stored: StudyPlan, note: string): ReleaseSection {
  const asReleased: StudyPlan = { ...stored, release: LEGACY_RELEASE };
  const items = [...releasedWithoutDp(asReleased), LEGACY_TRAINING_LOSS_RELEASE];
  return {
    description: `${note} Under that format every silo sent: ${describeRelease(asReleased)}; and ${LEGACY_TRAINING_LOSS_RELEASE}.`,
    evaluation: LEGACY_RELEASE.evaluation,
    trainingExamples: LEGACY_RELEASE.trainingExamples,
    releasedWithoutDp: items,
    statement: releasedWithoutDpStatement(items),
  };
}

function privacySection(
  plan: StudyPlan,
  m: PrivacyMechanism | null,
  figures: SiloPrivacyFigures[],
  names: Map<string, string>,
): PrivacySection {
  if (plan.privacy.mode === 'none' || m === null) return { mode: 'none', statement: NO_DP_STATEMENT, perSilo: [] };
  const perSilo: SiloPrivacyLine[] = figures
    .filter((f) => f.trainingRounds > 0 || f.evaluationReleases > 0 || f.reportedEpsilon !== null)
    .map((f) => ({
      siloId: f.siloId,
      siloName: names.get(f.siloId) ?? 'unknown',
      mechanism: m.mechanism,
      unit: m.unit,
      noiseMultiplier: m.noiseMultiplier,
      clipNorm: m.clipNorm,
      samplingRate: m.samplingRate,
      trainingRounds: f.trainingRounds,
      stepsPerRound: m.stepsPerRound,
      steps: f.trainingRounds * m.stepsPerRound,
      evaluationReleases: f.evaluationReleases,
      hubEpsilon: f.epsilon,
      reportedEpsilon: f.reportedEpsilon,
      disagreements: f.disagreements,
      delta: m.delta,
      accountant: m.accountant,
    }));
  perSilo.sort(bySiloName);
  const unit = plan.privacy.unit === 'record' ? 'one patient record' : "one silo's whole dataset";
  const evaluation =
    m.evaluation === null
      ? ''
      : ` Noisy evaluation: each released histogram count carries discrete Gaussian noise of standard deviation ` +
        `${m.evaluation.noiseStddev.toPrecision(4)} counts, at most ${m.evaluation.releases} release(s); test records ` +
        'never train, so the charged epsilon is the larger of the training and evaluation parts.';
  const distributed =
    plan.privacy.mode === 'dp-fedavg' && plan.privacy.noise === 'distributed'
      ? ' The noise was added by each silo to its quantised update before masking (distributed discrete Gaussian, ' +
        `sized so that any t = ${plan.secureAggregation?.threshold} shares carry the charged noise): the hub never ` +
        'saw an update without noise.'
      : '';
  return {
    mode: m.mechanism,
    unit: plan.privacy.unit,
    targetEpsilon: plan.privacy.targetEpsilon,
    delta: plan.privacy.delta,
    statement:
      `Differential privacy (${plan.privacy.mode}); the protected unit is ${unit}. Target for the whole study: ` +
      `epsilon ${plan.privacy.targetEpsilon} at delta ${plan.privacy.delta}. The hub charged each silo when it ` +
      'issued a task (whether or not the upload arrived) and recomputed epsilon itself; the figure each silo ' +
      `reported is shown beside it.${evaluation}${distributed}`,
    accounting: {
      accountant: m.accountant,
      orders: DEFAULT_RDP_ORDERS_DESCRIPTION,
      noiseMultiplier: m.noiseMultiplier,
      clipNorm: m.clipNorm,
      samplingRate: m.samplingRate,
      stepsPerRound: m.stepsPerRound,
      plannedRounds: m.rounds,
      plannedSteps: m.rounds * m.stepsPerRound,
      plannedEpsilon: m.plannedEpsilon,
      evaluation: m.evaluation === null ? null : { ...m.evaluation },
    },
    perSilo,
  };
}

/** The privacy section of a plan of an earlier format: what was approved, and why it does not hold as stated. */
function legacyPrivacySection(section: PrivacySection): PrivacySection {
  if (section.mode === 'none') return section;
  return {
    ...section,
    statement:
      `${section.statement} This plan predates the current plan format: the figures are the mechanism the stewards ` +
      "approved, as stored with the study; the records' split and encoding depended on every record of a silo's " +
      'file, so the guarantee does not hold as stated for this study. Per-silo charges are in the privacy ledger ' +
      '(GET /api/studies/:id/privacy) and the audit trail.',
  };
}

/**
 * The `secure-aggregation` entry of a round's stored trace (entries are `{ siloIds?, record }`), or null without one.
 * A malformed entry is the hub's own stored state gone wrong: refused, naming the round, rather than misreported.
 */
export function roundSecureAggregation(trace: readonly object[], round: string): RoundSecureAggregation | null {
  const records = trace.map((entry) => (entry as { record?: unknown }).record ?? entry);
  const found = records.filter(
    (r): r is Record<string, unknown> =>
      typeof r === 'object' && r !== null && (r as { step?: unknown }).step === 'secure-aggregation',
  );
  if (found.length === 0) return null;
  if (found.length > 1) throw new Error(`round ${round}: the stored trace holds ${found.length} secure sums, not one`);
  const r = found[0]!;
  const bad = (field: string): Error =>
    new Error(`round ${round}: the stored secure-aggregation trace entry has no valid ${field}`);
  if (typeof r.protocol !== 'string') throw bad('protocol');
  if (typeof r.summed !== 'number' || !Number.isInteger(r.summed) || r.summed < 1) throw bad('summed');
  if (typeof r.weights !== 'string') throw bad('weights');
  if (typeof r.clipNorm !== 'number' || !(r.clipNorm > 0)) throw bad('clipNorm');
  if (typeof r.quantisationErrorBound !== 'number' || !(r.quantisationErrorBound >= 0)) {
    throw bad('quantisationErrorBound');
  }
  if (typeof r.individualUpdatesStored !== 'boolean') throw bad('individualUpdatesStored');
  return {
    protocol: r.protocol,
    summed: r.summed,
    weights: r.weights,
    clipNorm: r.clipNorm,
    quantisationErrorBound: r.quantisationErrorBound,
    individualUpdatesStored: r.individualUpdatesStored,
  };
}

function secureAggregationSection(plan: StudyPlan, rounds: RoundLine[]): SecureAggregationSection | null {
  const sa = plan.secureAggregation;
  if (!sa) return null;
  const summed = rounds.filter((r) => r.secureAggregation !== null);
  const stored = summed.filter((r) => r.secureAggregation!.individualUpdatesStored).length;
  const graph =
    sa.neighbourCount === undefined
      ? 'the complete graph (each silo shares with every other)'
      : `${sa.neighbourCount} neighbours per silo`;
  return {
    protocol: 'SecAgg+',
    threshold: sa.threshold,
    neighbourCount: sa.neighbourCount ?? null,
    modulusBits: sa.modulusBits,
    clipNorm: sa.clipNorm,
    roundsSummed: summed.length,
    statement:
      `Secure aggregation (SecAgg+): each silo clipped its update to L2 norm C = ${sa.clipNorm}, quantised and ` +
      `masked it; the hub summed the masked inputs modulo 2^${sa.modulusBits} and unmasked only their sum ` +
      `(Shamir threshold t = ${sa.threshold}, ${graph}). ` +
      (stored === 0
        ? `No individual update was stored in any of the ${summed.length} training round(s) aggregated this way; ` +
          'each round states how many masked inputs were summed.'
        : `${stored} of the ${summed.length} round(s) aggregated this way recorded an individual update as stored.`),
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
