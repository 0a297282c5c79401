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
   * (the scaled MAD). Default 3.5, the modified-z-score cut-off of Iglewicz & Hoaglin 1993. Norms are flagged on
   * both sides (a ×10 update, or a near-zero free-rider), cosines only below (pointing away from the others).
   */
  readonly threshold?: number;
  /**
   * Smallest robust scale of the norm, as a fraction of the median norm; default 0.05. With many parameters honest
   * norms concentrate so tightly that the MAD approaches 0 and a 1% difference would count as many deviations;
   * the floor makes the smallest flagged norm deviation threshold × 5% = 17.5% of the median at the defaults.
   */
  readonly normScaleFloor?: number;
  /** Smallest robust scale of a cosine (absolute, cosines lie in [−1, 1]); default 0.05, for the same reason. */
  readonly cosineScaleFloor?: number;
  /** true: flagged updates are listed in `excluded`, for the caller to aggregate the round without them. */
  readonly exclude?: boolean;
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
  readonly median: number;
  /** 1.4826 × the median absolute deviation. */
  readonly scaledMad: number;
  /** max(scaledMad, floor): the divisor of the scores. */
  readonly scale: number;
}

export interface ScreeningReport {
  readonly rule: {
    readonly method: 'median-absolute-deviation';
    readonly threshold: number;
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

interface CheckedScreeningOptions {
  readonly threshold: number;
  readonly normScaleFloor: number;
  readonly cosineScaleFloor: number;
  readonly exclude: boolean;
}

function checkScreeningOptions(options: ScreeningOptions): CheckedScreeningOptions {
  const checked = {
    threshold: options.threshold ?? 3.5,
    normScaleFloor: options.normScaleFloor ?? 0.05,
    cosineScaleFloor: options.cosineScaleFloor ?? 0.05,
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
  return checked;
}

const fmt = (x: number): string => (Number.isFinite(x) ? Number(x.toPrecision(4)).toString() : String(x));

const LABELS: Record<ScreenedStatistic, string> = {
  norm: 'L2 norm',
  'cosine-to-aggregate': "cosine to the round's aggregate",
  'cosine-to-previous': 'cosine to the previous global update',
};

function summarise(statistic: ScreenedStatistic, values: readonly number[], floor: number): StatisticSummary {
  const median = medianOf(values);
  const scaledMad = scaledMedianAbsoluteDeviation(values, median);
  return { statistic, median, scaledMad, scale: Math.max(scaledMad, floor) };
}

/** The flag for `value`, or undefined. `twoSided`: flag above and below; otherwise only below. */
function flagOf(
  summary: StatisticSummary,
  value: number,
  threshold: number,
  twoSided: boolean,
): ScreeningFlag | undefined {
  const deviation = value - summary.median;
  const score = summary.scale > 0 ? deviation / summary.scale : deviation === 0 ? 0 : deviation * Infinity;
  const outlier = twoSided ? Math.abs(score) > threshold : score < -threshold;
  if (!outlier) return undefined;
  const side = score > 0 ? 'above' : 'below';
  const distance = Number.isFinite(score)
    ? `${fmt(Math.abs(score))} robust deviations`
    : 'infinitely many robust deviations';
  const reason =
    `${LABELS[summary.statistic]} ${fmt(value)} is ${distance} ${side} the round's median ${fmt(summary.median)} ` +
    `(scale ${fmt(summary.scale)}, threshold ${fmt(threshold)})`;
  return { statistic: summary.statistic, value, median: summary.median, scale: summary.scale, score, reason };
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
  const norms = statistics.map((s) => s.norm);
  const normSummary = summarise('norm', norms, checked.normScaleFloor * medianOf(norms));
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
          flagOf(normSummary, s.norm, checked.threshold, true),
          flagOf(aggregateSummary, s.cosineToAggregate, checked.threshold, false),
          previousSummary && s.cosineToPrevious !== null
            ? flagOf(previousSummary, s.cosineToPrevious, checked.threshold, false)
            : undefined,
        ].filter((f): f is ScreeningFlag => f !== undefined)
      : [];
    return { index, ...s, flags, excluded: checked.exclude && flags.length > 0 };
  });
  const flagged = updates.filter((u) => u.flags.length > 0).map((u) => u.index);
  return {
    rule: { method: 'median-absolute-deviation', ...checked, applied },
    summaries: [normSummary, aggregateSummary, ...(previousSummary ? [previousSummary] : [])],
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
      sums.squares[k] += squaredNorm(block);
      sums.withAggregate[k] += dotProduct(block, a);
      if (p) sums.withPrevious[k] += dotProduct(block, p);
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
      cosineToAggregate: cosine(sums.withAggregate[k], norm, referenceNorms.aggregate),
      cosineToPrevious:
        referenceNorms.previous === null ? null : cosine(sums.withPrevious[k], norm, referenceNorms.previous),
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
  return screenStatistics(updateStatistics(updates, references), options);
}

/** Screens the updates behind `reader` in one pass of bounded memory. */
export async function screenUpdatesBlockwise(
  reader: UpdateBlockReader,
  references: ScreeningReferences,
  options: ScreeningOptions & BlockwiseOptions = {},
): Promise<ScreeningReport> {
  checkScreeningOptions(options);
  return screenStatistics(await updateStatisticsBlockwise(reader, references, options), options);
}
