// Statistical checks shared by the samplers' tests. Tests draw from fixed-seed SeededRandomSources, so they are
// deterministic and cannot flake; their bounds are still set as if the draws were fresh: frequencies within 5 standard
// errors (a correct sampler fails such a check with probability < 1e-6), chi-square statistics below the 1 - 1e-6
// quantile of their degrees of freedom (scipy.stats.chi2.ppf).

import { expect } from 'vitest';

export function expectFrequency(hits: number, n: number, p: number): void {
  const standardError = Math.sqrt((p * (1 - p)) / n);
  expect(Math.abs(hits / n - p), `frequency ${hits / n} vs p ${p}`).toBeLessThan(5 * standardError);
}

// scipy.stats.chi2.ppf(1 - 1e-6, df) for df = 1..60 (SciPy 1.x), rounded to 0.1.
const CHI_SQUARE_QUANTILES = [
  23.9, 27.6, 30.7, 33.4, 35.9, 38.3, 40.5, 42.7, 44.8, 46.9, 48.9, 50.8, 52.7, 54.6, 56.5, 58.3, 60.1, 61.9, 63.7,
  65.4, 67.1, 68.9, 70.5, 72.2, 73.9, 75.5, 77.2, 78.8, 80.4, 82.0, 83.6, 85.2, 86.8, 88.4, 89.9, 91.5, 93.1, 94.6,
  96.1, 97.7, 99.2, 100.7, 102.2, 103.7, 105.2, 106.7, 108.2, 109.7, 111.1, 112.6, 114.1, 115.5, 117.0, 118.5, 119.9,
  121.3, 122.8, 124.2, 125.7, 127.1,
];

/**
 * Pearson's chi-square test of `counts` (n draws) against `pmf` on the integers, in bins [b w, (b + 1) w) of width w:
 * every bin whose expected count is at least 5 is its own cell, all others (both tails) are pooled into one. Passes
 * below the 1 - 1e-6 quantile of its degrees of freedom.
 */
export function expectChiSquareFit(
  counts: Map<number, number>,
  pmf: (x: number) => number,
  n: number,
  binWidth = 1,
): void {
  const binProbability = (b: number): number => {
    let p = 0;
    for (let x = b * binWidth; x < (b + 1) * binWidth; x++) p += pmf(x);
    return p;
  };
  const binned = new Map<number, number>();
  for (const [x, c] of counts) {
    const b = Math.floor(x / binWidth);
    binned.set(b, (binned.get(b) ?? 0) + c);
  }
  let statistic = 0;
  let cells = 0;
  let pooledObserved = n;
  let pooledProbability = 1;
  // Walk outwards from bin 0 until bins become too small on each side.
  for (const direction of [1, -1]) {
    for (let b = direction === 1 ? 0 : -1; ; b += direction) {
      const p = binProbability(b);
      if (n * p < 5) break;
      const observed = binned.get(b) ?? 0;
      statistic += (observed - n * p) ** 2 / (n * p);
      cells++;
      pooledObserved -= observed;
      pooledProbability -= p;
    }
  }
  if (n * pooledProbability >= 5) {
    statistic += (pooledObserved - n * pooledProbability) ** 2 / (n * pooledProbability);
    cells++;
  } else {
    expect(pooledObserved, 'draws outside the cells').toBeLessThanOrEqual(Math.max(5, 10 * n * pooledProbability));
  }
  const degreesOfFreedom = cells - 1;
  expect(degreesOfFreedom).toBeGreaterThanOrEqual(1);
  expect(degreesOfFreedom, 'too many cells: widen the bins').toBeLessThanOrEqual(CHI_SQUARE_QUANTILES.length);
  expect(statistic, `chi-square ${statistic.toFixed(1)} on ${degreesOfFreedom} df`).toBeLessThan(
    CHI_SQUARE_QUANTILES[degreesOfFreedom - 1]!,
  );
}

/** The normalised pmf of a weight function over [-support, support]. */
export function normalisedPmf(weight: (x: number) => number, support: number): (x: number) => number {
  let total = 0;
  for (let x = -support; x <= support; x++) total += weight(x);
  return (x) => weight(x) / total;
}

/** Counts of each value among `n` draws. */
export function histogram(n: number, draw: () => number): Map<number, number> {
  const counts = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const x = draw();
    counts.set(x, (counts.get(x) ?? 0) + 1);
  }
  return counts;
}
