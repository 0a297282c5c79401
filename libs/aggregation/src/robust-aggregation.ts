import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import { assertFiniteSquaredNorm, assertLength } from './update-validation';

/*
 * Robust aggregators. NOT STREAMING: an order statistic of each coordinate needs every silo's value of that
 * coordinate, so the caller must hold all n updates (n·m float32 = 4·n·m bytes, 2.5 GB for 64 × 10M). Use them for
 * small models or few silos; the streaming path is FedAvgAggregator / WeightedMeanAccumulator.
 * Unweighted by design: the robustness argument is about the number of bad silos, not their example counts.
 */

function checkBatch(updates: readonly Float32Array[]): number {
  if (updates.length === 0) {
    throw new AggregationException(AggregationErrorCode.EmptyAggregate, 'at least one update is required');
  }
  const m = updates[0].length;
  updates.forEach((u, k) => {
    assertLength(u, m, `update #${k}`);
    assertFiniteSquaredNorm(u, `update #${k}`);
  });
  return m;
}

/** Applies `reduce` to the sorted column of every coordinate; one n-element scratch column, reused. */
function reduceColumns(updates: readonly Float32Array[], reduce: (sorted: Float64Array) => number): Float32Array {
  const m = checkBatch(updates);
  const n = updates.length;
  const column = new Float64Array(n);
  const out = new Float32Array(m);
  for (let i = 0; i < m; i += 1) {
    for (let k = 0; k < n; k += 1) column[k] = updates[k][i];
    column.sort();
    out[i] = reduce(column);
  }
  return out;
}

/**
 * Coordinate-wise median (Yin, Chen, Ramchandran, Bartlett 2018, "Byzantine-Robust Distributed Learning: Towards
 * Optimal Statistical Rates", §3 "median-based"): for even n, the mean of the two middle values. Not streaming.
 */
export function coordinateMedian(updates: readonly Float32Array[]): Float32Array {
  return reduceColumns(updates, (c) => {
    const h = c.length >> 1;
    return c.length % 2 === 1 ? c[h] : (c[h - 1] + c[h]) / 2;
  });
}

/**
 * Coordinate-wise β-trimmed mean (Yin et al. 2018, §3 "trimmed mean"): per coordinate, drop the ⌊β·n⌋ largest and
 * ⌊β·n⌋ smallest values and average the rest. β ∈ [0, 0.5); β = 0 is the plain mean. Not streaming.
 */
export function trimmedMean(updates: readonly Float32Array[], trimFraction: number): Float32Array {
  if (!(trimFraction >= 0 && trimFraction < 0.5)) {
    throw new AggregationException(AggregationErrorCode.InvalidParameter, 'trimFraction must be in [0, 0.5)');
  }
  const trim = Math.floor(trimFraction * updates.length);
  return reduceColumns(updates, (c) => {
    let s = 0;
    for (let k = trim; k < c.length - trim; k += 1) s += c[k];
    return s / (c.length - 2 * trim);
  });
}
