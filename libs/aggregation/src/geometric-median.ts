import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import type { GeometricMedianTrace } from './aggregation-trace';
import type { BlockwiseOptions } from './robust-aggregation';
import {
  checkBatch,
  checkBlockParameters,
  checkReader,
  DEFAULT_BLOCK_PARAMETERS,
  type UpdateBlockReader,
} from './update-blocks';
import { assertWeight } from './update-validation';
import {
  combineBlockwise,
  combineInMemory,
  type LinearCombination,
  pairwiseSquaredDistances,
  pairwiseSquaredDistancesBlockwise,
} from './update-geometry';

export interface GeometricMedianOptions {
  /**
   * Stop when the objective Σ αₖ‖z − uₖ‖ decreased by at most `tolerance` × its value in one iteration (the RFA
   * criterion). Default 1e-6. 0 runs `maxIterations` exactly.
   */
  readonly tolerance?: number;
  /** Upper bound on Weiszfeld iterations; default 100. The result after the last one is returned, converged or not. */
  readonly maxIterations?: number;
  /**
   * ν > 0, in parameter units: a distance below ν counts as ν when reweighting (Pillutla et al.'s smoothing), so an
   * iterate landing on an update never divides by zero. Default 1e-6, as in RFA.
   */
  readonly smoothing?: number;
  /**
   * α: one weight per update (e.g. example counts), normalised to sum 1. Default: unweighted (robustness is about the
   * number of bad silos; a silo could inflate its own example count).
   */
  readonly weights?: readonly number[];
}

export interface CheckedGeometricMedianOptions {
  readonly tolerance: number;
  readonly maxIterations: number;
  readonly smoothing: number;
  readonly alpha: Float64Array;
  readonly weighted: boolean;
}

export interface GeometricMedianResult {
  readonly delta: Float32Array;
  readonly trace: GeometricMedianTrace;
}

/** Validates the options for n updates (InvalidParameter, LengthMismatch, InvalidWeight) before any update is read. */
export function checkGeometricMedianOptions(
  count: number,
  options: GeometricMedianOptions,
): CheckedGeometricMedianOptions {
  const tolerance = options.tolerance ?? 1e-6;
  const maxIterations = options.maxIterations ?? 100;
  const smoothing = options.smoothing ?? 1e-6;
  if (!(tolerance >= 0 && Number.isFinite(tolerance))) {
    throw new AggregationException(AggregationErrorCode.InvalidParameter, `tolerance must be a finite number ≥ 0`);
  }
  if (!Number.isInteger(maxIterations) || maxIterations < 1) {
    throw new AggregationException(AggregationErrorCode.InvalidParameter, `maxIterations must be an integer ≥ 1`);
  }
  if (!(smoothing > 0 && Number.isFinite(smoothing))) {
    throw new AggregationException(AggregationErrorCode.InvalidParameter, `smoothing ν must be a finite number > 0`);
  }
  const weights = options.weights ?? Array.from({ length: count }, () => 1);
  if (weights.length !== count) {
    throw new AggregationException(
      AggregationErrorCode.LengthMismatch,
      `${weights.length} weights for ${count} updates`,
    );
  }
  weights.forEach(assertWeight);
  const total = weights.reduce((a, b) => a + b, 0);
  const alpha = Float64Array.from(weights, (w) => w / total);
  return { tolerance, maxIterations, smoothing, alpha, weighted: options.weights !== undefined };
}

/**
 * Distances ‖uᵢ − z‖ from every update to z = Σⱼ cⱼuⱼ (Σ cⱼ = 1), from the squared pairwise distances D alone:
 * ‖uᵢ − z‖² = Σⱼ cⱼDᵢⱼ − ½ Σⱼₖ cⱼcₖDⱼₖ (expand ‖Σⱼ cⱼ(uᵢ − uⱼ)‖² with 2⟨a, b⟩ = ‖a‖² + ‖b‖² − ‖a − b‖²).
 * Rounding can make a tiny square negative; it is clamped to 0.
 */
function distancesToCombination(d: Float64Array, n: number, c: Float64Array, out: Float64Array): void {
  let quadratic = 0;
  for (let i = 0; i < n; i += 1) {
    let s = 0;
    for (let j = 0; j < n; j += 1) s += c[j]! * d[i * n + j]!;
    out[i] = s;
    quadratic += c[i]! * s;
  }
  for (let i = 0; i < n; i += 1) out[i] = Math.sqrt(Math.max(0, out[i]! - quadratic / 2));
}

function objective(alpha: Float64Array, distances: Float64Array): number {
  let g = 0;
  for (let i = 0; i < alpha.length; i += 1) g += alpha[i]! * distances[i]!;
  return g;
}

interface WeiszfeldOutcome {
  /** Unnormalised weights βₖ of the last step and their sum: z = Σ βₖuₖ / Σ βₖ. */
  readonly beta: Float64Array;
  readonly betaSum: number;
  readonly iterations: number;
  readonly converged: boolean;
  readonly objective: number;
}

/**
 * Smoothed Weiszfeld iterations (Weiszfeld 1937; smoothing and stopping rule of Pillutla, Kakade, Harchaoui 2019,
 * "Robust Aggregation for Federated Learning", arXiv:1912.13445, the smoothed Weiszfeld algorithm): start at the weighted mean, then
 * βₖ = αₖ / max(ν, ‖z − uₖ‖), z ← Σ βₖuₖ / Σ βₖ. Every iterate is a combination of the updates, so the loop runs on
 * the n coefficients and the pairwise distances: O(n²) per iteration, no pass over the m parameters.
 */
function weiszfeld(d: Float64Array, n: number, options: CheckedGeometricMedianOptions): WeiszfeldOutcome {
  const { alpha, smoothing, tolerance, maxIterations } = options;
  let beta = Float64Array.from(alpha);
  let betaSum = 1;
  const c = Float64Array.from(alpha);
  const dist = new Float64Array(n);
  distancesToCombination(d, n, c, dist);
  let g = objective(alpha, dist);
  for (let iteration = 1; iteration <= maxIterations; iteration += 1) {
    const next = new Float64Array(n);
    let sum = 0;
    for (let k = 0; k < n; k += 1) {
      next[k] = alpha[k]! / Math.max(smoothing, dist[k]!);
      sum += next[k]!;
    }
    for (let k = 0; k < n; k += 1) c[k] = next[k]! / sum;
    beta = next;
    betaSum = sum;
    distancesToCombination(d, n, c, dist);
    const gNext = objective(alpha, dist);
    const decrease = g - gNext;
    g = gNext;
    if (Math.abs(decrease) <= tolerance * gNext) {
      return { beta, betaSum, iterations: iteration, converged: true, objective: g };
    }
  }
  return { beta, betaSum, iterations: maxIterations, converged: false, objective: g };
}

function combinationOf(outcome: WeiszfeldOutcome): LinearCombination {
  const indices = Array.from(outcome.beta, (_, k) => k);
  return { indices, weights: Array.from(outcome.beta), denominator: outcome.betaSum };
}

function result(
  count: number,
  options: CheckedGeometricMedianOptions,
  outcome: WeiszfeldOutcome,
  delta: Float32Array,
): GeometricMedianResult {
  return {
    delta,
    trace: {
      step: 'geometric-median',
      count,
      weighting: options.weighted ? 'weighted' : 'unweighted',
      iterations: outcome.iterations,
      converged: outcome.converged,
      tolerance: options.tolerance,
      maxIterations: options.maxIterations,
      smoothing: options.smoothing,
      objective: outcome.objective,
      coefficients: Array.from(outcome.beta, (b) => b / outcome.betaSum),
    },
  };
}

/**
 * Geometric median of in-memory updates by smoothed Weiszfeld (Pillutla et al. 2019, RFA): the point minimising the
 * sum of Euclidean distances to the updates. Breakdown point 1/2: fewer than half the (weighted) updates cannot move
 * it arbitrarily far. The updates are read twice (distances, then the final combination).
 */
export function geometricMedian(
  updates: readonly Float32Array[],
  options: GeometricMedianOptions = {},
): GeometricMedianResult {
  const checked = checkGeometricMedianOptions(updates.length, options);
  checkBatch(updates);
  const outcome = weiszfeld(pairwiseSquaredDistances(updates), updates.length, checked);
  return result(updates.length, checked, outcome, combineInMemory(updates, combinationOf(outcome)));
}

/**
 * geometricMedian through a reader in bounded memory: one pass accumulates the pairwise distances (8·n² bytes), the
 * Weiszfeld loop runs on them, a second pass forms the result. Two passes whatever the number of iterations.
 */
export async function geometricMedianBlockwise(
  reader: UpdateBlockReader,
  options: GeometricMedianOptions & BlockwiseOptions = {},
): Promise<GeometricMedianResult> {
  const blockParameters = options.blockParameters ?? DEFAULT_BLOCK_PARAMETERS;
  checkReader(reader);
  checkBlockParameters(blockParameters);
  const checked = checkGeometricMedianOptions(reader.count, options);
  const distances = await pairwiseSquaredDistancesBlockwise(reader, blockParameters);
  const outcome = weiszfeld(distances, reader.count, checked);
  const delta = await combineBlockwise(reader, combinationOf(outcome), blockParameters);
  return result(reader.count, checked, outcome, delta);
}
