// Numerical integration of A_alpha for the Poisson-subsampled Gaussian, the fallback of the fractional-order series
// when that series is ill-conditioned (A - 1 far below rounding of its largest terms) or converges too slowly.
//
// Mironov, Talwar, Zhang 2019 (section 3) define A_alpha = E_{z ~ N(0, sigma^2)}[(1 - q + q exp((2z - 1)/(2 sigma^2)))^alpha].
// With x(z) = q expm1((2z - 1)/(2 sigma^2)) we have E[x] = 0, so
//   A_alpha - 1 = E[(1 + x)^alpha - 1 - alpha x],
// whose integrand is non-negative (convexity of (1 + x)^alpha for alpha > 1): no cancellation anywhere, and the RDP
// log1p(A - 1) / (alpha - 1) keeps full relative precision even when it is ~1e-12. Integrated by adaptive 15-point
// Gauss-Kronrod (QUADPACK QK15 nodes and weights) in a scaled form that cannot overflow.

import { logAdd } from './log-math.util';

// Kronrod nodes (positive half, descending) and weights; Gauss 7-point weights for nodes 1, 3, 5, 7.
const XGK = [
  0.9914553711208126, 0.9491079123427585, 0.8648644233597691, 0.7415311855993945, 0.5860872354676911,
  0.4058451513773972, 0.20778495500789848, 0,
];
const WGK = [
  0.022935322010529224, 0.06309209262997856, 0.10479001032225019, 0.14065325971552592, 0.1690047266392679,
  0.19035057806478542, 0.20443294007529889, 0.20948214108472782,
];
const WG = [0.1294849661688697, 0.27970539148927664, 0.3818300505051189, 0.4179591836734694];

const RELATIVE_TOLERANCE = 1e-12;
const MAX_INTERVALS = 20_000;

/** log((1 + x)^alpha - 1 - alpha x) for x > -1, alpha > 1; -Infinity at x = 0. */
export function logBinomialRemainder(x: number, alpha: number): number {
  if (x === 0) return -Infinity;
  if (Math.abs(x) <= 0.1) {
    // sum_{k>=2} C(alpha, k) x^k; successive terms shrink by |x| |alpha - k| / (k + 1) <= 0.1-ish: no cancellation.
    let term = ((alpha * (alpha - 1)) / 2) * x * x;
    let sum = term;
    for (let k = 3; k < 80; k++) {
      term *= ((alpha - k + 1) / k) * x;
      sum += term;
      if (Math.abs(term) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.log(sum);
  }
  const a = alpha * Math.log1p(x);
  if (a > 40) return a + Math.log1p(-Math.exp(Math.log1p(alpha * x) - a));
  return Math.log(Math.expm1(a) - alpha * x);
}

/**
 * log(A_alpha) for 0 < q < 1, sigma > 0, alpha > 1, by quadrature of E[(1 + x)^alpha - 1 - alpha x] (see file header).
 * Returns NaN if the adaptive rule does not reach its tolerance within its interval budget.
 */
export function logASampledGaussianQuadrature(q: number, sigma: number, alpha: number): number {
  const sigma2 = sigma * sigma;
  const logNorm = -Math.log(sigma * Math.sqrt(2 * Math.PI));
  const logIntegrand = (z: number): number =>
    logNorm - (z * z) / (2 * sigma2) + logBinomialRemainder(q * Math.expm1((2 * z - 1) / (2 * sigma2)), alpha);

  // The integrand is a Gaussian bump near the origin (the x^2 regime) and one near z = alpha (the x^alpha regime),
  // each of width ~sigma; beyond 40 sigma of both, it is below exp(-800) of its peak.
  const a = Math.min(0, alpha) - 40 * sigma - 2;
  const b = Math.max(2, alpha) + 40 * sigma + 2;
  const step = Math.min(sigma / 2, (b - a) / 200);
  const peaks: number[] = [];
  let scale = -Infinity;
  let previous = -Infinity;
  let rising = true;
  for (let z = a; z <= b; z += step) {
    const value = logIntegrand(z);
    if (value > scale) scale = value;
    if (rising && value < previous) peaks.push(z - step);
    rising = value >= previous;
    previous = value;
  }
  if (!Number.isFinite(scale)) return NaN;

  // Breakpoints around every local maximum at sigma-scaled distances, so no bump can hide inside a wide interval.
  const breaks = new Set<number>([a, b]);
  for (const peak of peaks) {
    for (const k of [0, 0.5, 1, 2, 4, 8, 16, 32]) {
      for (const z of [peak - k * sigma, peak + k * sigma]) if (z > a && z < b) breaks.add(z);
    }
  }
  const points = [...breaks].sort((u, v) => u - v);

  const integrand = (z: number): number => Math.exp(logIntegrand(z) - scale);
  const rule = (lo: number, hi: number): { kronrod: number; error: number } => {
    const centre = (lo + hi) / 2;
    const half = (hi - lo) / 2;
    const fc = integrand(centre);
    let kronrod = WGK[7]! * fc;
    let gauss = WG[3]! * fc;
    for (let k = 0; k < 7; k++) {
      const sum = integrand(centre - half * XGK[k]!) + integrand(centre + half * XGK[k]!);
      kronrod += WGK[k]! * sum;
      if (k % 2 === 1) gauss += WG[(k - 1) / 2]! * sum;
    }
    return { kronrod: kronrod * half, error: Math.abs((kronrod - gauss) * half) };
  };

  const pending: Array<{ lo: number; hi: number; kronrod: number; error: number }> = [];
  let total = 0;
  for (let k = 0; k + 1 < points.length; k++) {
    const r = rule(points[k]!, points[k + 1]!);
    pending.push({ lo: points[k]!, hi: points[k + 1]!, ...r });
    total += r.kronrod;
  }
  let intervals = pending.length;
  let accepted = 0;
  while (pending.length > 0) {
    const item = pending.pop() as { lo: number; hi: number; kronrod: number; error: number };
    const width = item.hi - item.lo;
    if (item.error <= RELATIVE_TOLERANCE * total * (width / (b - a)) || item.error <= 1e-15 * total) {
      accepted += item.kronrod;
      continue;
    }
    if (intervals > MAX_INTERVALS) return NaN;
    const mid = (item.lo + item.hi) / 2;
    const left = rule(item.lo, mid);
    const right = rule(mid, item.hi);
    total += left.kronrod + right.kronrod - item.kronrod;
    pending.push({ lo: item.lo, hi: mid, ...left }, { lo: mid, hi: item.hi, ...right });
    intervals += 2;
  }
  if (!(accepted > 0)) return accepted === 0 ? 0 : NaN;
  // log A = log(1 + (A - 1)) with log(A - 1) = scale + log(accepted).
  return logAdd(0, scale + Math.log(accepted));
}
