import type { AggregatorPlan, NormBoundPlan, StudyPlan } from './study-plan';

/*
 * The cross-field rules and the words of a plan's `aggregation` and `screening` (docs/aggregation.md, "Choosing in a
 * plan"). A robust aggregator's guarantee depends on how many updates a round has; a round may be aggregated from as
 * few as participation.minSilosPerRound updates, so every rule is stated for that number: the plan is refused unless
 * the guarantee holds in every round that can close. The DP rules are argued in docs/privacy.md ("Robust aggregation
 * and screening under differential privacy").
 */

/** Below three updates a median cannot tell which one is the outlier (@tessera/aggregation MIN_SCREENED_UPDATES). */
export const MIN_MEDIAN_UPDATES = 3;

const ROBUST_LABELS: Record<Exclude<AggregatorPlan['kind'], 'fedavg'>, string> = {
  'coordinate-median': 'the coordinate-wise median',
  'trimmed-mean': 'the trimmed mean',
  krum: 'Krum',
  'geometric-median': 'the geometric median',
};

function robustProblems(aggregator: AggregatorPlan, n: number): string[] {
  const min = `participation.minSilosPerRound = ${n}`;
  switch (aggregator.kind) {
    case 'fedavg':
      return [];
    case 'coordinate-median':
    case 'geometric-median':
      return n < MIN_MEDIAN_UPDATES
        ? [
            `aggregation.aggregator.kind: the median of ${n} update(s) is their mean, which one bad update moves anywhere; ` +
              `${ROBUST_LABELS[aggregator.kind]} needs rounds of at least ${MIN_MEDIAN_UPDATES} updates, and a round may close with ${min}`,
          ]
        : [];
    case 'trimmed-mean': {
      const trimmed = Math.floor(aggregator.trimFraction * n);
      return trimmed < 1
        ? [
            `aggregation.aggregator.trimFraction: β = ${aggregator.trimFraction} trims ⌊β·n⌋ = 0 values from each end in a round of ` +
              `${n} updates (${min}), which is a plain mean; choose β ≥ ${fmt(1 / n)} or more silos per round`,
          ]
        : [];
    }
    case 'krum': {
      const f = aggregator.byzantine;
      const m = aggregator.selected ?? 1;
      const out: string[] = [];
      if (n <= 2 * f + 2) {
        out.push(
          `aggregation.aggregator.byzantine: Krum tolerating f = ${f} Byzantine updates needs n > 2f + 2 = ${2 * f + 2} updates ` +
            `in every round, and a round may close with ${min}; raise minSilosPerRound to at least ${2 * f + 3} ` +
            `(with as many silos invited) or lower f`,
        );
      } else if (m > n - f) {
        out.push(
          `aggregation.aggregator.selected: Multi-Krum averages at most n − f = ${n - f} updates in a round of ${n} (${min}), ` +
            `so that the average can be made of honest updates only; got ${m}`,
        );
      }
      return out;
    }
  }
}

function normBoundProblems(bound: NormBoundPlan | undefined, n: number): string[] {
  if (bound?.mode !== 'median-multiple' || n >= MIN_MEDIAN_UPDATES) return [];
  return [
    `aggregation.normBound.mode: a bound of a multiple of the round's median norm needs rounds of at least ` +
      `${MIN_MEDIAN_UPDATES} updates (with fewer, one inflated update sets the median); a round may close with ` +
      `participation.minSilosPerRound = ${n}; use a fixed bound or more silos per round`,
  ];
}

/**
 * Which choices break the plan's privacy guarantee. DP-SGD (record level) protects each update at its silo: whatever
 * the hub computes from updates is post-processing, so every aggregator and screening is allowed. DP-FedAvg (silo
 * level) calibrates its noise to the SUM of updates clipped to C (sensitivity C when one silo is added or removed):
 * a median, trimmed mean, Krum or geometric median is not that sum (Krum returns one silo's update as it is), a bound
 * that follows the round's median norm makes every silo's scaling depend on the others, and excluding flagged
 * updates makes who enters the sum depend on every update — each would void the guarantee the noise is priced for.
 */
function privacyProblems(plan: StudyPlan): string[] {
  if (plan.privacy.mode !== 'dp-fedavg') return [];
  const out: string[] = [];
  const aggregator = plan.aggregation?.aggregator;
  if (aggregator && aggregator.kind !== 'fedavg') {
    out.push(
      `aggregation.aggregator.kind: ${ROBUST_LABELS[aggregator.kind]} is not a sum, and DP-FedAvg's noise is calibrated to the ` +
        `sum of clipped updates: with dp-fedavg the guarantee would not hold; choose fedavg (with a fixed norm bound ` +
        `if you want one), or record-level DP (dp-sgd), under which any aggregator is allowed`,
    );
  }
  if (plan.aggregation?.normBound?.mode === 'median-multiple') {
    out.push(
      `aggregation.normBound.mode: with dp-fedavg a bound that follows the round's median norm makes each silo's ` +
        `scaling depend on the other silos' updates, beyond the sensitivity the noise is calibrated to; use a fixed bound`,
    );
  }
  if (plan.screening?.exclude) {
    out.push(
      `screening.exclude: with dp-fedavg, leaving flagged updates out makes which silos enter the noisy sum depend on ` +
        `every update, beyond the sensitivity the noise is calibrated to; screen without excluding, or use dp-sgd`,
    );
  }
  return out;
}

/** The aggregation and screening problems of a plan that passed its schema, each naming its field path. */
export function aggregationProblems(plan: StudyPlan): string[] {
  const n = plan.participation.minSilosPerRound;
  const out: string[] = [];
  if (plan.aggregation) {
    out.push(...robustProblems(plan.aggregation.aggregator, n));
    out.push(...normBoundProblems(plan.aggregation.normBound, n));
  }
  if (plan.screening && n < MIN_MEDIAN_UPDATES) {
    out.push(
      `screening: screening compares each update with the round's median and flags nothing in a round of fewer than ` +
        `${MIN_MEDIAN_UPDATES} updates; a round may close with participation.minSilosPerRound = ${n}`,
    );
  }
  out.push(...privacyProblems(plan));
  return out;
}

const fmt = (x: number): string => Number(x.toPrecision(3)).toString();

function describeAggregator(plan: StudyPlan): string {
  const a = plan.aggregation?.aggregator ?? { kind: 'fedavg' as const };
  switch (a.kind) {
    case 'fedavg':
      if (plan.privacy.mode === 'dp-fedavg') {
        return 'FedAvg as DP-FedAvg (each update clipped, equal weights, Gaussian noise added by the hub)';
      }
      return plan.release.trainingExamples === 'exact'
        ? 'FedAvg (the mean of the updates, weighted by the released record counts)'
        : 'FedAvg (the mean of the updates, equal weights)';
    case 'coordinate-median':
      return 'coordinate-wise median (robust to bad values from fewer than half of the silos; unweighted)';
    case 'trimmed-mean':
      return `trimmed mean, β = ${a.trimFraction} (drops the ⌊β·n⌋ largest and smallest values of each coordinate; unweighted)`;
    case 'krum': {
      const m = a.selected ?? 1;
      return m === 1
        ? `Krum, f = ${a.byzantine} (keeps the one update closest to its neighbours; tolerates f arbitrary updates; unweighted)`
        : `Multi-Krum, f = ${a.byzantine}, the mean of the ${m} best-scored updates (tolerates f arbitrary updates; unweighted)`;
    }
    case 'geometric-median':
      return `geometric median (Weiszfeld, tolerance ${a.tolerance ?? 1e-6}, at most ${a.maxIterations ?? 100} iterations; robust to fewer than half bad updates; unweighted)`;
  }
}

/** The plan's aggregation in words: the aggregator, and the norm bound applied before it. */
export function describeAggregation(plan: StudyPlan): string {
  const bound = plan.aggregation?.normBound;
  const bounding =
    bound === undefined
      ? ''
      : bound.mode === 'fixed'
        ? `; every update first scaled down to L2 norm ≤ ${bound.maxNorm}`
        : `; every update first scaled down to L2 norm ≤ ${bound.multiplier} × the round's median update norm`;
  return `${describeAggregator(plan)}${bounding}`;
}

/**
 * The smallest robust scales screening uses when the plan names none: @tessera/aggregation's DEFAULT_SCALE_FLOORS
 * (this library depends on nothing of ours; the hub's plan-aggregation.util.spec.ts checks that the two agree).
 */
export const SCREENING_DEFAULT_FLOORS = { norm: 0.35, cosine: 0.45 } as const;

/** The plan's screening in words. */
export function describeScreening(plan: StudyPlan): string {
  const s = plan.screening;
  if (!s) return 'none';
  const action = s.exclude ? 'flagged in the audit trail and left out of the aggregate' : 'flagged in the audit trail';
  const normFloor = s.normScaleFloor ?? SCREENING_DEFAULT_FLOORS.norm;
  const cosineFloor = s.cosineScaleFloor ?? SCREENING_DEFAULT_FLOORS.cosine;
  return (
    `each update's L2 norm and cosines to the round's aggregate and to the previous global update; a norm more ` +
    `than ${s.threshold} robust deviations above the round's median, or a cosine more than ${s.threshold} below ` +
    `it (deviations of at least ${fmt(normFloor)} in log norm and ${fmt(cosineFloor)} in cosine, the spread honest ` +
    `hospitals show): ${action}`
  );
}

/** One statistic the screening flagged an update on, with the sentence the audit trail and the console show. */
export interface ScreeningFlagView {
  statistic: 'norm' | 'cosine-to-aggregate' | 'cosine-to-previous';
  value: number;
  /** The round's median of the statistic. */
  median: number;
  /** The robust scale used: max(scaled MAD, floor). */
  scale: number;
  /** (value − median) / scale; null when infinite (every other update had exactly the median value). */
  score: number | null;
  reason: string;
}

/** A round's screening as recorded in its summary (GET /api/studies/:id/rounds): per silo, its figures and flags. */
export interface RoundScreeningView {
  rule: {
    method: 'median-absolute-deviation';
    threshold: number;
    normScaleFloor: number;
    cosineScaleFloor: number;
    exclude: boolean;
    /** false when the round had fewer than 3 updates: figures only, nothing flagged. */
    applied: boolean;
  };
  /** Per statistic: the round's median, scaled MAD and the scale used. */
  summaries: { statistic: ScreeningFlagView['statistic']; median: number; scaledMad: number; scale: number }[];
  updates: {
    siloId: string;
    norm: number;
    cosineToAggregate: number;
    /** null in a study's first round (no previous global update). */
    cosineToPrevious: number | null;
    flags: ScreeningFlagView[];
    /** Left out of the round's aggregate (the plan's screening.exclude). */
    excluded: boolean;
  }[];
  /**
   * Set when leaving the flagged updates out would have left fewer updates than the plan needs: the round was not
   * aggregated (it closes short and is retried as the plan allows), and this says why.
   */
  notAggregated?: string;
}
