import { DEFAULT_RDP_ORDERS_DESCRIPTION, type PrivacyMechanism } from '@tessera/dp';
import { describeRelease, releasedWithoutDp, type StudyPlan } from '@tessera/protocol';
import { LEGACY_RELEASE, LEGACY_TRAINING_LOSS_RELEASE } from '../study-state/stored-plan.util';

/*
 * The sections of a study's report that state its protections: what left the silos (releases), the privacy budget
 * and how it was accounted, and the secure aggregation, each from the approved plan and what the hub recorded of it.
 * The summary that holds them is study-report.ts's.
 */

/** Said, in these words, in every report of a study trained without differential privacy. */
export const NO_DP_STATEMENT =
  'No differential privacy: this study was planned without it (privacy mode "none"). Updates carry no noise and no ' +
  'privacy budget is accounted; the protection of patient records rests on their never leaving the silos.';

/** By name in UTF-16 code-unit order: the same order on every machine, whatever its locale (the report is signed). */
export function bySiloName(a: { siloName: string; siloId: string }, b: { siloName: string; siloId: string }): number {
  const x = a.siloName + '\u0000' + a.siloId;
  const y = b.siloName + '\u0000' + b.siloId;
  return x < y ? -1 : x > y ? 1 : 0;
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

/** The statement every report makes about what left the silos outside differential privacy. */
export function releasedWithoutDpStatement(items: string[]): string {
  return `Released without differential privacy: ${items.length === 0 ? 'nothing' : items.join('; ')}`;
}

export function releaseSection(plan: StudyPlan): ReleaseSection {
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
export function legacyReleaseSection(stored: StudyPlan, note: string): ReleaseSection {
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

export function privacySection(
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
export function legacyPrivacySection(section: PrivacySection): PrivacySection {
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

export function secureAggregationSection(
  plan: StudyPlan,
  rounds: readonly { secureAggregation: RoundSecureAggregation | null }[],
): SecureAggregationSection | null {
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
