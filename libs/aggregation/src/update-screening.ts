import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import { medianOf, scaledMedianAbsoluteDeviation } from './order-statistics.util';
import type { BlockwiseOptions } from './robust-aggregation';
import {
  type BlockVisitor,
  checkBatch,
  checkBlockParameters,
  checkReader,
  DEFAULT_BLOCK_PARAMETERS,
  forEachBlock,
  forEachBlockInMemory,
  type UpdateBlockReader,
} from './update-blocks';
import { dotProduct } from './update-geometry';
import { assertFiniteSquaredNorm, assertLength, squaredNorm } from './update-validation';

/*
 * Update screening: per round, three statistics per update — its L2 norm, its cosine to the round's aggregate and
 * its cosine to the previous global update — and a robust outlier rule over each. Scaling attacks show in the norm,
 * sign flips and model replacement in the cosines. The statistics are sums over coordinates, so they come from one
 * pass, in memory or block by block; the rule itself is a pure function of the numbers (screenStatistics).
 *
 * Calibration for small rounds and small models (issue 20, item 3; docs/aggregation.md, "Calibration"):
 * - norms are compared on a log scale: honest silos with more data take more local steps and their norms differ by
 *   a factor (2–3× on the heart-disease demo), not by an amount, and a ×k attack is log k away whatever the scale;
 * - the scaled MAD carries the small-sample correction of Croux & Rousseeuw (1992): below ten values the plain MAD
 *   underestimates the spread (by 27% for n = 4), which is what made four honest hospitals look like outliers;
 * - the scale floors are at least 1/√m for a model of m parameters: the norm and the cosines of an m-dimensional
 *   update carry sampling noise of that order (a cosine between unrelated directions has standard deviation 1/√m;
 *   a norm's relative spread is 1/√(2m)), so with 14 parameters no honest round is tighter than ±0.27.
 *
 * Second calibration, on the heart-disease demo's real rounds (docs/benchmarks.md §12, "Screening calibration"):
 * - the MAD measures the spread of the central half of the round only. Among 4 updates it is the mean of the 2nd
 *   and 3rd smallest deviations: when three hospitals agree, the fourth is "many deviations" away however ordinary
 *   its difference; among 8, two silos with the same kind of data are invisible to it the same way. On the demo that
 *   hospital is Switzerland (27 training records, almost all sick): its honest update points away from the
 *   example-weighted aggregate, up to 1.36 below the others' median cosine (−0.57 against 0.80), and 10 of 20
 *   attack-free runs flagged it. The floors are the honest spread between hospitals that the MAD cannot see:
 *   0.45 for a cosine (a cosine must lie 1.6 below the median at the default threshold, i.e. point against a
 *   consensus) and 0.35 log units for the norm (3.4 × the median norm; honest hospitals measured up to 2.7 ×, a
 *   ×10 update is ln 10 / 0.35 = 6.6 deviations up). A plan whose silos are alike may lower them (its
 *   screening.normScaleFloor and cosineScaleFloor), which finds more sign flips among many silos (§12 measures it);
 * - the norm is flagged above the median only. A short update cannot move an aggregate (silos with few records
 *   take few local steps: Switzerland's halves send 0.08–0.27 × the median norm, round after round); the scaling
 *   attacks the norm exists to catch are all long. A free-rider sending a zero update is therefore not flagged.
 */

/** The vectors the updates are compared with. Both are deltas (global-model changes), length m, held by the caller. */
export interface ScreeningReferences {
  /** The round's aggregate delta (what the chosen aggregator produced from these updates). */
  readonly aggregate: Float32Array;
  /** The previous round's global update (its aggregate delta as applied); absent in a study's first round. */
  readonly previousUpdate?: Float32Array;
}

/** The three statistics of one update. A cosine with a zero vector is defined as 0. */
export interface UpdateStatistics {
  readonly norm: number;
  readonly cosineToAggregate: number;
  /** null when no previous update was given. */
  readonly cosineToPrevious: number | null;
}

export interface ScreeningOptions {
  /**
   * A statistic is an outlier when it lies more than `threshold` robust standard deviations from the round's median
   * (the scaled MAD, floored). Default 3.5, the modified-z-score cut-off of Iglewicz & Hoaglin 1993. Norms are
   * flagged only above (a ×10 update), cosines only below (pointing away from the others).
   */
  readonly threshold?: number;
  /**
   * Smallest robust scale of the norm, on the log scale the norm is compared on (so, to first order, a fraction of
   * the median norm); default 0.35 (DEFAULT_SCALE_FLOORS): the smallest flagged norm is e^(threshold × 0.35) = 3.4
   * × the median at the defaults, above the 2–3 × by which honest hospitals' norms differ. Without a floor, honest
   * norms of many parameters concentrate so tightly that the MAD approaches 0 and a 1% difference would count as
   * many deviations. Raised to 1/√m when `parameters` is known.
   */
  readonly normScaleFloor?: number;
  /**
   * Smallest robust scale of a cosine (absolute, cosines lie in [−1, 1]); default 0.45 (DEFAULT_SCALE_FLOORS): at
   * the default threshold a cosine is flagged 1.6 below the round's median, where a hospital with different data
   * measured up to 1.36 below. Raised to 1/√m when `parameters` is known.
   */
  readonly cosineScaleFloor?: number;
  /** true: flagged updates are listed in `excluded`, for the caller to aggregate the round without them. */
  readonly exclude?: boolean;
  /**
   * The model's parameter count m: both floors are raised to at least 1/√m. screenUpdates and
   * screenUpdatesBlockwise set it from the updates; screenStatistics applies it only when given.
   */
  readonly parameters?: number;
}

export type ScreenedStatistic = 'norm' | 'cosine-to-aggregate' | 'cosine-to-previous';

/** Why one update was flagged on one statistic. */
export interface ScreeningFlag {
  readonly statistic: ScreenedStatistic;
  readonly value: number;
  readonly median: number;
  /** The robust scale used: max(scaled MAD, floor). */
  readonly scale: number;
  /** (value − median) / scale; ±Infinity when every other update had exactly the median value. */
  readonly score: number;
  /** One sentence for the audit trail and the console. */
  readonly reason: string;
}

export interface UpdateScreening extends UpdateStatistics {
  /** Index into the round's inputs. */
  readonly index: number;
  readonly flags: readonly ScreeningFlag[];
  readonly excluded: boolean;
}

/** The round's location and spread of one statistic. */
export interface StatisticSummary {
  readonly statistic: ScreenedStatistic;
  /** The round's median (for the norm: e^(median of the log norms), the geometric mean of the middle two for even n). */
  readonly median: number;
  /**
   * 1.4826 × the median absolute deviation × the small-sample factor (madSmallSampleFactor); for the norm, of the
   * log norms.
   */
  readonly scaledMad: number;
  /** max(scaledMad, floor): the divisor of the scores (log units for the norm). */
  readonly scale: number;
}

export interface ScreeningReport {
  readonly rule: {
    readonly method: 'median-absolute-deviation';
    readonly threshold: number;
    /** The floors applied: the options' floors, raised to 1/√m when the parameter count was known. */
    readonly normScaleFloor: number;
    readonly cosineScaleFloor: number;
    readonly exclude: boolean;
    /** false when the round had fewer than MIN_SCREENED_UPDATES updates: statistics only, nothing flagged. */
    readonly applied: boolean;
  };
  readonly summaries: readonly StatisticSummary[];
  readonly updates: readonly UpdateScreening[];
  /** Indices with at least one flag. */
  readonly flagged: readonly number[];
  /** Indices to leave out of the round: `flagged` when `exclude` is set, else empty. */
  readonly excluded: readonly number[];
}

/** Below three updates a median-based rule cannot tell which one is the outlier. */
export const MIN_SCREENED_UPDATES = 3;

/**
 * Default floors of the robust scales: the honest spread between hospitals that a round's MAD does not see (see the
 * note at the top). Norm in log units, cosine absolute. Calibrated on 20 attack-free runs of the heart-disease demo
 * and of its 8-silo split (docs/benchmarks.md §12, "Screening calibration"); the first defaults were 0.05 and 0.05.
 */
export const DEFAULT_SCALE_FLOORS = { norm: 0.35, cosine: 0.45 } as const;

interface CheckedScreeningOptions {
  readonly threshold: number;
  readonly normScaleFloor: number;
  readonly cosineScaleFloor: number;
  readonly exclude: boolean;
}

function checkScreeningOptions(options: ScreeningOptions): CheckedScreeningOptions {
  const { parameters } = options;
  if (parameters !== undefined && !(Number.isInteger(parameters) && parameters >= 1)) {
    throw new AggregationException(
      AggregationErrorCode.InvalidParameter,
      `parameters must be an integer ≥ 1 (the model's parameter count), got ${String(parameters)}`,
    );
  }
  const dimensionFloor = parameters === undefined ? 0 : 1 / Math.sqrt(parameters);
  const checked = {
    threshold: options.threshold ?? 3.5,
    normScaleFloor: options.normScaleFloor ?? DEFAULT_SCALE_FLOORS.norm,
    cosineScaleFloor: options.cosineScaleFloor ?? DEFAULT_SCALE_FLOORS.cosine,
    exclude: options.exclude ?? false,
  };
  if (!(checked.threshold > 0 && Number.isFinite(checked.threshold))) {
    throw new AggregationException(AggregationErrorCode.InvalidParameter, `threshold must be a finite number > 0`);
  }
  for (const name of ['normScaleFloor', 'cosineScaleFloor'] as const) {
    if (!(checked[name] >= 0 && Number.isFinite(checked[name]))) {
      throw new AggregationException(AggregationErrorCode.InvalidParameter, `${name} must be a finite number ≥ 0`);
    }
  }
  return {
    ...checked,
    normScaleFloor: Math.max(checked.normScaleFloor, dimensionFloor),
    cosineScaleFloor: Math.max(checked.cosineScaleFloor, dimensionFloor),
  };
}

/**
 * Small-sample correction of the scaled MAD, b_n of Croux & Rousseeuw (1992), "Time-efficient algorithms for two
 * highly robust estimators of scale", §3: for n normal values E[b_n · 1.4826 · MAD] ≈ σ. 1.4826 alone is the
 * large-sample constant; with 4 values the MAD is 27% short on average, which turns honest spread into "outliers".
 * n > 9: n / (n − 0.8). (update-screening.spec.ts checks the factors against a seeded simulation.)
 */
const MAD_FACTORS: Readonly<Record<number, number>> = {
  2: 1.196,
  3: 1.495,
  4: 1.363,
  5: 1.206,
  6: 1.2,
  7: 1.14,
  8: 1.129,
  9: 1.107,
};

export function madSmallSampleFactor(n: number): number {
  if (n <= 1) return 1;
  return MAD_FACTORS[n] ?? n / (n - 0.8);
}

/** Norms are compared as logarithms; a zero norm (a free-rider) becomes a very low finite value, not −∞. */
const logNorm = (norm: number): number => Math.log(Math.max(norm, Number.MIN_VALUE));

const fmt = (x: number): string => (Number.isFinite(x) ? Number(x.toPrecision(4)).toString() : String(x));

const LABELS: Record<ScreenedStatistic, string> = {
  norm: 'L2 norm',
  'cosine-to-aggregate': "cosine to the round's aggregate",
  'cosine-to-previous': 'cosine to the previous global update',
};

/** The round's centre and scale of one statistic, over `values` (log norms for the norm). */
function summarise(statistic: ScreenedStatistic, values: readonly number[], floor: number): StatisticSummary {
  const median = medianOf(values);
  const scaledMad = scaledMedianAbsoluteDeviation(values, median) * madSmallSampleFactor(values.length);
  return { statistic, median, scaledMad, scale: Math.max(scaledMad, floor) };
}

/**
 * The flag for `value`, or undefined: an outlier on `side` of the median only. For the norm the summary is of log
 * norms: the score is ln(value / median) / scale, and the flag states the median as a norm.
 */
function flagOf(
  summary: StatisticSummary,
  value: number,
  threshold: number,
  side: 'above' | 'below',
): ScreeningFlag | undefined {
  const isNorm = summary.statistic === 'norm';
  const deviation = (isNorm ? logNorm(value) : value) - summary.median;
  const score = summary.scale > 0 ? deviation / summary.scale : deviation === 0 ? 0 : deviation * Infinity;
  const outlier = side === 'above' ? score > threshold : score < -threshold;
  if (!outlier) return undefined;
  const median = isNorm ? Math.exp(summary.median) : summary.median;
  const distance = Number.isFinite(score)
    ? `${fmt(Math.abs(score))} robust deviations`
    : 'infinitely many robust deviations';
  const scale = isNorm
    ? `×${fmt(median > 0 ? value / median : Infinity)} the median; log scale ${fmt(summary.scale)}`
    : `scale ${fmt(summary.scale)}`;
  const reason =
    `${LABELS[summary.statistic]} ${fmt(value)} is ${distance} ${side} the round's median ${fmt(median)} ` +
    `(${scale}, threshold ${fmt(threshold)})`;
  return { statistic: summary.statistic, value, median, scale: summary.scale, score, reason };
}

/**
 * The outlier rule on precomputed statistics (pure): for each statistic, the round's median and scaled median absolute
 * deviation (floored), and a flag with its reason wherever an update lies beyond `threshold` of them.
 */
export function screenStatistics(
  statistics: readonly UpdateStatistics[],
  options: ScreeningOptions = {},
): ScreeningReport {
  const checked = checkScreeningOptions(options);
  const n = statistics.length;
  const applied = n >= MIN_SCREENED_UPDATES;
  const logNormSummary = summarise(
    'norm',
    statistics.map((s) => logNorm(s.norm)),
    checked.normScaleFloor,
  );
  const aggregateSummary = summarise(
    'cosine-to-aggregate',
    statistics.map((s) => s.cosineToAggregate),
    checked.cosineScaleFloor,
  );
  const previous = statistics.map((s) => s.cosineToPrevious).filter((c): c is number => c !== null);
  const previousSummary =
    n > 0 && previous.length === n ? summarise('cosine-to-previous', previous, checked.cosineScaleFloor) : undefined;
  const updates = statistics.map((s, index): UpdateScreening => {
    const flags = applied
      ? [
          flagOf(logNormSummary, s.norm, checked.threshold, 'above'),
          flagOf(aggregateSummary, s.cosineToAggregate, checked.threshold, 'below'),
          previousSummary && s.cosineToPrevious !== null
            ? flagOf(previousSummary, s.cosineToPrevious, checked.threshold, 'below')
            : undefined,
        ].filter((f): f is ScreeningFlag => f !== undefined)
      : [];
    return { index, ...s, flags, excluded: checked.exclude && flags.length > 0 };
  });
  const flagged = updates.filter((u) => u.flags.length > 0).map((u) => u.index);
  return {
    rule: { method: 'median-absolute-deviation', ...checked, applied },
    summaries: [
      { ...logNormSummary, median: Math.exp(logNormSummary.median) },
      aggregateSummary,
      ...(previousSummary ? [previousSummary] : []),
    ],
    updates,
    flagged,
    excluded: checked.exclude ? flagged : [],
  };
}

/** Per update: Σ u², Σ u·aggregate, Σ u·previous, block by block. */
interface StatisticSums {
  readonly squares: Float64Array;
  readonly withAggregate: Float64Array;
  readonly withPrevious: Float64Array;
}

function statisticsKernel(sums: StatisticSums, references: ScreeningReferences): BlockVisitor {
  const { aggregate, previousUpdate } = references;
  return (blocks, start, end) => {
    const a = aggregate.subarray(start, end);
    const p = previousUpdate?.subarray(start, end);
    blocks.forEach((block, k) => {
      sums.squares[k]! += squaredNorm(block);
      sums.withAggregate[k]! += dotProduct(block, a);
      if (p) sums.withPrevious[k]! += dotProduct(block, p);
    });
  };
}

function checkReferences(references: ScreeningReferences, m: number): { aggregate: number; previous: number | null } {
  assertLength(references.aggregate, m, 'aggregate');
  const aggregate = Math.sqrt(assertFiniteSquaredNorm(references.aggregate, 'aggregate'));
  if (references.previousUpdate === undefined) return { aggregate, previous: null };
  assertLength(references.previousUpdate, m, 'previous global update');
  return {
    aggregate,
    previous: Math.sqrt(assertFiniteSquaredNorm(references.previousUpdate, 'previous global update')),
  };
}

const cosine = (dot: number, a: number, b: number): number => (a > 0 && b > 0 ? dot / (a * b) : 0);

function statisticsOf(
  sums: StatisticSums,
  referenceNorms: { aggregate: number; previous: number | null },
): UpdateStatistics[] {
  return Array.from(sums.squares, (square, k): UpdateStatistics => {
    const norm = Math.sqrt(square);
    return {
      norm,
      cosineToAggregate: cosine(sums.withAggregate[k]!, norm, referenceNorms.aggregate),
      cosineToPrevious:
        referenceNorms.previous === null ? null : cosine(sums.withPrevious[k]!, norm, referenceNorms.previous),
    };
  });
}

function emptySums(n: number): StatisticSums {
  return { squares: new Float64Array(n), withAggregate: new Float64Array(n), withPrevious: new Float64Array(n) };
}

/** The three statistics of every in-memory update (one pass, the same block sums as the blockwise version). */
export function updateStatistics(
  updates: readonly Float32Array[],
  references: ScreeningReferences,
): UpdateStatistics[] {
  const m = checkBatch(updates);
  const referenceNorms = checkReferences(references, m);
  const sums = emptySums(updates.length);
  forEachBlockInMemory(updates, DEFAULT_BLOCK_PARAMETERS, statisticsKernel(sums, references));
  return statisticsOf(sums, referenceNorms);
}

/** The three statistics of every update behind `reader`: one pass, 24·n bytes of sums. */
export async function updateStatisticsBlockwise(
  reader: UpdateBlockReader,
  references: ScreeningReferences,
  options: BlockwiseOptions = {},
): Promise<UpdateStatistics[]> {
  const blockParameters = options.blockParameters ?? DEFAULT_BLOCK_PARAMETERS;
  checkReader(reader);
  checkBlockParameters(blockParameters);
  const referenceNorms = checkReferences(references, reader.length);
  const sums = emptySums(reader.count);
  await forEachBlock(reader, blockParameters, statisticsKernel(sums, references));
  return statisticsOf(sums, referenceNorms);
}

/** Screens in-memory updates: their statistics, then the outlier rule. */
export function screenUpdates(
  updates: readonly Float32Array[],
  references: ScreeningReferences,
  options: ScreeningOptions = {},
): ScreeningReport {
  checkScreeningOptions(options);
  const parameters = options.parameters ?? (updates.length > 0 ? updates[0]!.length : undefined);
  return screenStatistics(updateStatistics(updates, references), { ...options, parameters });
}

/** Screens the updates behind `reader` in one pass of bounded memory. */
export async function screenUpdatesBlockwise(
  reader: UpdateBlockReader,
  references: ScreeningReferences,
  options: ScreeningOptions & BlockwiseOptions = {},
): Promise<ScreeningReport> {
  checkScreeningOptions(options);
  const statistics = await updateStatisticsBlockwise(reader, references, options);
  return screenStatistics(statistics, { ...options, parameters: options.parameters ?? reader.length });
}
