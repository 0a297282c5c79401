// A second, tighter accountant for the Poisson-subsampled Gaussian mechanism: the privacy loss distribution (PLD),
// discretised pessimistically and composed exactly by FFT (Meiser, Mohammadi 2018; Koskela, Jälkö, Honkela 2020;
// the approach of Google's dp_accounting PLD accountant). It is reported under its own name, `pld-sampled-gaussian`,
// and is informational: Tessera prices, enforces and ledgers budgets with the Rényi-DP accountant only
// (rdp-accountant.ts), which the PLD accountant can only confirm or undercut, never raise.
//
// Mechanism (one step, sensitivity 1 after dividing by the clipping norm): with the record, the output is
// P = (1 - q) N(0, s^2) + q N(1, s^2); without it, Q = N(0, s^2). Poisson subsampling makes the two directions of
// neighbouring differ, so both are accounted and the larger delta is taken:
//   remove: the loss l(x) = ln(P(x) / Q(x)) = ln(1 - q + q exp((2x - 1) / (2 s^2))), X ~ P, increasing in x;
//   add:    the loss l(x) = -ln(1 - q + q exp((2x - 1) / (2 s^2))), X ~ Q, decreasing in x.
// Each loss distribution is put on the grid i * D (D = `discretization`) by connecting the dots (Doroshenko et al.
// 2022, see splitBucket): the mass of the losses between two grid points is split between them so that delta can
// only grow; the extreme lower tail is moved up onto the lowest grid point and the extreme upper tail to +infinity.
// Every move can only raise delta(epsilon), so the result is an upper bound for the true mechanism (a "pessimistic
// estimate", as dp_accounting calls it). The T-fold composition is the
// T-th convolution power of the bucket masses, computed exactly up to floating-point rounding by FFT; then
//   delta(epsilon) = m_inf + sum_j p_j max(0, 1 - exp(epsilon - l_j))
// and epsilon(delta) is the smallest epsilon with delta(epsilon) <= delta (bisection to 1e-9).

import { logErfc } from './log-math.util';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';
import { assertDelta, assertNoiseMultiplier, assertSamplingRate, assertSteps } from './rdp-accountant';

export const PLD_ACCOUNTANT_NAME = 'pld-sampled-gaussian';

/** Default grid spacing of the losses (dp_accounting's default value_discretization_interval). */
export const DEFAULT_PLD_DISCRETIZATION = 1e-4;
/** Gaussian tails beyond this many standard deviations (mass < 1e-17 each) are moved, never dropped. */
const TAIL_SIGMAS = 8.5;
/** Mass bound of each tail of the composed distribution that is moved to +infinity (dp_accounting's default). */
export const DEFAULT_PLD_TAIL_MASS = 1e-15;
/** Largest FFT the accountant performs: 2^23 points (two 64 MiB arrays). */
const MAX_FFT_POINTS = 2 ** 23;

export interface PldQuery {
  /** z: noise standard deviation relative to the clipping norm. */
  readonly noiseMultiplier: number;
  /** q: Poisson sampling rate. */
  readonly samplingRate: number;
  readonly steps: number;
  readonly delta: number;
  /** D: spacing of the loss grid (default 1e-4). Smaller is tighter and slower. */
  readonly discretization?: number;
}

export interface PldEpsilon {
  readonly epsilon: number;
  /** Which neighbouring direction is the binding one. */
  readonly direction: 'add' | 'remove';
  readonly discretization: number;
  readonly accountant: typeof PLD_ACCOUNTANT_NAME;
}

/** Loss grid masses for one step: masses[i] is the mass at loss (offset + i) * D; `infinity` the mass at +infinity. */
export interface DiscreteLossDistribution {
  readonly offset: number;
  readonly masses: Float64Array;
  readonly infinity: number;
  readonly discretization: number;
}

/** Phi(z), the standard normal CDF, accurate in the far tails. */
function normalCdf(z: number): number {
  return 0.5 * Math.exp(logErfc(-z / Math.SQRT2));
}

/** Mass of N(mean, s^2) on (a, b], computed on the side of the mean where it does not cancel. */
function gaussianMass(a: number, b: number, mean: number, s: number): number {
  const za = (a - mean) / s;
  const zb = (b - mean) / s;
  if (za >= 0) return Math.max(0, normalCdf(-za) - normalCdf(-zb));
  return Math.max(0, normalCdf(zb) - normalCdf(za));
}

/**
 * Connect the dots (Doroshenko, Ghazi, Kamath, Kumar, Manurangsi 2022): the mass `mass` of losses in (a, b], whose
 * e^(-loss)-weighted mass is `weighted`, is split between the grid points a and b so that both the mass and the
 * e^(-loss) mean are kept. That is a mean-preserving spread of e^(-loss), and delta(epsilon) = E[(1 - e^epsilon
 * e^(-loss))_+] is convex in e^(-loss), so delta can only grow, for every epsilon and after any composition (convex
 * order is kept by products of independent non-negative variables), without rounding every loss up by D/2 on average.
 */
function splitBucket(masses: Float64Array, index: number, a: number, mass: number, weighted: number, d: number): void {
  if (mass <= 0) return;
  // w_a + w_b = mass, w_a e^-a + w_b e^-b = weighted, b = a + D  =>  w_b = (mass e^-a - weighted) / (e^-a - e^-b).
  const ratio = (mass - weighted * Math.exp(a)) / -Math.expm1(-d);
  const upper = Math.min(mass, Math.max(0, ratio));
  masses[index] = masses[index]! + (mass - upper);
  masses[index + 1] = masses[index + 1]! + upper;
}

/** The one-step loss distribution of one direction, on the grid (see the header). */
export function sampledGaussianLossDistribution(
  noiseMultiplier: number,
  samplingRate: number,
  direction: 'add' | 'remove',
  discretization: number = DEFAULT_PLD_DISCRETIZATION,
): DiscreteLossDistribution {
  assertNoiseMultiplier(noiseMultiplier);
  assertSamplingRate(samplingRate);
  assertDiscretization(discretization);
  const s = noiseMultiplier;
  const q = samplingRate;
  const d = discretization;
  const twoS2 = 2 * s * s;
  // Loss of the remove direction at x, and the x where it equals l (l > ln(1 - q)).
  const removeLoss = (x: number): number => Math.log(1 - q + q * Math.exp((2 * x - 1) / twoS2));
  const removeX = (l: number): number => s * s * Math.log((Math.exp(l) - (1 - q)) / q) + 0.5;
  // Masses of P (with the record) and Q (without) on x in (a, b].
  const massP = (a: number, b: number): number => (1 - q) * gaussianMass(a, b, 0, s) + q * gaussianMass(a, b, 1, s);
  const massQ = (a: number, b: number): number => gaussianMass(a, b, 0, s);

  if (direction === 'remove') {
    // X ~ P, loss increasing in x; e^(-loss) P = Q, so a bucket's weighted mass is its Q-mass.
    const first = Math.ceil(removeLoss(-TAIL_SIGMAS * s) / d);
    const last = Math.ceil(removeLoss(1 + TAIL_SIGMAS * s) / d);
    const masses = new Float64Array(last - first + 1);
    let previous = removeX(first * d);
    masses[0] = massP(-Infinity, previous); // the lowest losses, rounded up to the first grid point
    for (let i = first + 1; i <= last; i++) {
      const edge = removeX(i * d);
      splitBucket(masses, i - 1 - first, (i - 1) * d, massP(previous, edge), massQ(previous, edge), d);
      previous = edge;
    }
    return { offset: first, masses, infinity: massP(previous, Infinity), discretization: d };
  }

  // add: X ~ Q, loss -removeLoss(x) decreasing in x, bounded by -ln(1 - q) when q < 1; e^(-loss) Q = P.
  const first = Math.ceil(-removeLoss(TAIL_SIGMAS * s) / d);
  const bounded = q < 1;
  const last = bounded ? Math.ceil(-Math.log(1 - q) / d) : Math.ceil(-removeLoss(-TAIL_SIGMAS * s) / d);
  const masses = new Float64Array(last - first + 1);
  // x where the loss equals l: removeX(-l), or -infinity at and beyond the bound.
  const xOf = (l: number): number => (-l > Math.log(1 - q) ? removeX(-l) : -Infinity);
  let previous = xOf(first * d); // losses in (-infinity, first D] are x >= previous
  masses[0] = massQ(previous, Infinity);
  for (let i = first + 1; i <= last; i++) {
    const edge = xOf(i * d);
    splitBucket(masses, i - 1 - first, (i - 1) * d, massQ(edge, previous), massP(edge, previous), d);
    previous = edge;
  }
  return { offset: first, masses, infinity: bounded ? 0 : massQ(-Infinity, previous), discretization: d };
}

/** In-place iterative radix-2 FFT of (re, im); `inverse` also divides by n. */
function fft(re: Float64Array, im: Float64Array, inverse: boolean): void {
  const n = re.length;
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j]!, re[i]!];
      [im[i], im[j]] = [im[j]!, im[i]!];
    }
  }
  for (let length = 2; length <= n; length <<= 1) {
    const angle = ((inverse ? 2 : -2) * Math.PI) / length;
    const wRe = Math.cos(angle);
    const wIm = Math.sin(angle);
    for (let start = 0; start < n; start += length) {
      let uRe = 1;
      let uIm = 0;
      for (let k = 0; k < length / 2; k++) {
        const a = start + k;
        const b = a + length / 2;
        const tRe = re[b]! * uRe - im[b]! * uIm;
        const tIm = re[b]! * uIm + im[b]! * uRe;
        re[b] = re[a]! - tRe;
        im[b] = im[a]! - tIm;
        re[a] = re[a]! + tRe;
        im[a] = im[a]! + tIm;
        const nextRe = uRe * wRe - uIm * wIm;
        uIm = uRe * wIm + uIm * wRe;
        uRe = nextRe;
      }
    }
  }
  if (inverse) {
    for (let i = 0; i < n; i++) {
      re[i] = re[i]! / n;
      im[i] = im[i]! / n;
    }
  }
}

/** ln sum_i masses[i] exp(t * loss_i), the log moment-generating function of the finite part at t. */
function logMgf(one: DiscreteLossDistribution, t: number): number {
  let max = -Infinity;
  for (let i = 0; i < one.masses.length; i++) {
    if (one.masses[i]! > 0) max = Math.max(max, Math.log(one.masses[i]!) + t * (one.offset + i) * one.discretization);
  }
  let sum = 0;
  for (let i = 0; i < one.masses.length; i++) {
    const m = one.masses[i]!;
    if (m > 0) sum += Math.exp(Math.log(m) + t * (one.offset + i) * one.discretization - max);
  }
  return max + Math.log(sum);
}

/** Chernoff-bound exponents t tried for the window of the composition. */
const CHERNOFF_T = Array.from({ length: 49 }, (_, i) => 10 ** (-3 + i / 8));

/**
 * The T-fold composition of a loss distribution: the T-th convolution power of the finite part, by FFT, on a window
 * [L, U] of losses outside which the composed finite mass is at most `tailMass` on each side (Chernoff bounds from the
 * one-step moment-generating function). Cyclic wrap-around only moves that outside mass into the window, and both
 * tails' bounds are added to the mass at +infinity, so the result stays an upper bound on delta(epsilon).
 */
export function composeLossDistribution(
  one: DiscreteLossDistribution,
  steps: number,
  tailMass = DEFAULT_PLD_TAIL_MASS,
): DiscreteLossDistribution {
  assertSteps(steps);
  const d = one.discretization;
  const logTail = Math.log(tailMass);
  let upper = Infinity;
  let lower = -Infinity;
  for (const t of CHERNOFF_T) {
    upper = Math.min(upper, (steps * logMgf(one, t) - logTail) / t);
    lower = Math.max(lower, (logTail - steps * logMgf(one, -t)) / t);
  }
  // The window in grid units, never wider than the composition's own support.
  const first = Math.max(steps * one.offset, Math.floor(lower / d));
  const last = Math.min(steps * (one.offset + one.masses.length - 1), Math.ceil(upper / d));
  let n = 1;
  while (n < last - first + 1) n *= 2;
  if (n > MAX_FFT_POINTS) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidOption,
      'discretization',
      `the PLD accountant needs ${last - first + 1} grid points for ${steps} steps at discretization ${d}; ` +
        `use a coarser discretization or the RDP accountant`,
    );
  }
  const re = new Float64Array(n);
  const im = new Float64Array(n);
  // One step, folded onto the cyclic grid of n points (folding commutes with cyclic convolution).
  for (let i = 0; i < one.masses.length; i++) re[i % n] = re[i % n]! + one.masses[i]!;
  fft(re, im, false);
  for (let i = 0; i < n; i++) {
    // (r e^{i theta})^T in polar form.
    const r = Math.hypot(re[i]!, im[i]!);
    const theta = Math.atan2(im[i]!, re[i]!);
    const rT = r === 0 ? 0 : Math.exp(steps * Math.log(r));
    re[i] = rT * Math.cos(steps * theta);
    im[i] = rT * Math.sin(steps * theta);
  }
  fft(re, im, true);
  // Cyclic index k holds composed grid points g = steps * offset + k (mod n); keep g in [first, first + n).
  const base = steps * one.offset;
  const masses = new Float64Array(last - first + 1);
  for (let g = first; g <= last; g++) {
    const k = (((g - base) % n) + n) % n;
    // FFT rounding leaves values of order 1e-17 around zero: clamp the negative ones.
    masses[g - first] = Math.max(0, re[k]!);
  }
  const finiteTails =
    first > steps * one.offset || last < steps * (one.offset + one.masses.length - 1) ? 2 * tailMass : 0;
  return {
    offset: first,
    masses,
    infinity: Math.min(1, 1 - Math.pow(1 - one.infinity, steps) + finiteTails),
    discretization: d,
  };
}

/** delta(epsilon) = m_inf + sum_j p_j max(0, 1 - exp(epsilon - l_j)) of a (composed) loss distribution. */
export function deltaOfLossDistribution(pld: DiscreteLossDistribution, epsilon: number): number {
  let delta = pld.infinity;
  const { offset, masses, discretization } = pld;
  for (let j = masses.length - 1; j >= 0; j--) {
    const loss = (offset + j) * discretization;
    if (loss <= epsilon) break;
    delta += masses[j]! * -Math.expm1(epsilon - loss);
  }
  return delta;
}

/** Smallest epsilon >= 0 with delta(epsilon) <= delta, by bisection (delta(epsilon) is non-increasing). */
function epsilonOfLossDistribution(pld: DiscreteLossDistribution, delta: number): number {
  if (deltaOfLossDistribution(pld, 0) <= delta) return 0;
  if (pld.infinity > delta) return Infinity;
  let low = 0;
  let high = (pld.offset + pld.masses.length) * pld.discretization; // delta(high) = m_inf <= delta
  for (let i = 0; i < 200 && high - low > 1e-9 * Math.max(1, high); i++) {
    const mid = (low + high) / 2;
    if (deltaOfLossDistribution(pld, mid) <= delta) high = mid;
    else low = mid;
  }
  return high;
}

function assertDiscretization(d: number): void {
  if (typeof d !== 'number' || !Number.isFinite(d) || d <= 0 || d > 0.1) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidOption,
      'discretization',
      `discretization must be a number in (0, 0.1]; got ${String(d)}`,
    );
  }
}

/**
 * epsilon of `steps` Poisson-subsampled Gaussian steps at `delta`, by the PLD accountant (informational: Tessera's
 * budgets are priced and enforced with the RDP accountant). Both neighbouring directions; the larger epsilon.
 */
export function pldEpsilon(query: PldQuery): PldEpsilon {
  const discretization = query.discretization ?? DEFAULT_PLD_DISCRETIZATION;
  assertNoiseMultiplier(query.noiseMultiplier);
  assertSamplingRate(query.samplingRate);
  assertSteps(query.steps);
  assertDelta(query.delta);
  assertDiscretization(discretization);
  if (query.samplingRate === 0)
    return { epsilon: 0, direction: 'remove', discretization, accountant: PLD_ACCOUNTANT_NAME };
  let best: PldEpsilon | null = null;
  for (const direction of ['remove', 'add'] as const) {
    const one = sampledGaussianLossDistribution(query.noiseMultiplier, query.samplingRate, direction, discretization);
    const epsilon = epsilonOfLossDistribution(composeLossDistribution(one, query.steps), query.delta);
    if (best === null || epsilon > best.epsilon) {
      best = { epsilon, direction, discretization, accountant: PLD_ACCOUNTANT_NAME };
    }
  }
  return best!;
}
