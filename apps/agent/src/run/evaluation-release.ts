import { DiscreteGaussianSampler, type ExactRational, type RandomSource } from '@tessera/dp';
import type { ExactEvaluation, NoisyEvaluation } from '@tessera/protocol';

/**
 * x² as an exact rational of BigInts, for a positive finite double x (every double is m·2^e with an integer m, so
 * its square is m²·2^(2e) exactly). Lets the exact sampler use the plan's σ itself, neither rounded nor floated.
 */
export function exactSquareOf(x: number): ExactRational {
  if (!(Number.isFinite(x) && x > 0))
    throw new RangeError(`a noise standard deviation must be finite and > 0; got ${x}`);
  let mantissa = x;
  let exponent = 0;
  // Scale by powers of two (exact) until the value is an integer: at most 1074 steps for the smallest subnormal.
  while (!Number.isInteger(mantissa)) {
    mantissa *= 2;
    exponent -= 1;
  }
  const m = BigInt(mantissa);
  return exponent < 0
    ? { numerator: m * m, denominator: 1n << BigInt(-2 * exponent) }
    : { numerator: m * m, denominator: 1n };
}

/**
 * The noisy release of a test split's score histograms: each count plus independent discrete Gaussian noise
 * N_Z(0, σ²) on the integers with σ = `noiseStddev` counts (Canonne, Kamath, Steinke, NeurIPS 2020, Algorithm 3,
 * exact: no floating-point noise). One test record changes one count by one (L2 sensitivity 1), so the release is
 * the Gaussian mechanism the plan's accountant charged: ε of ρ-zCDP with ρ = 1/(2σ²) (CKS20, Theorem 4).
 * `rng` is the CSPRNG in production (defaultRandomSource); tests inject a seeded source.
 */
export function noisyHistogramEvaluation(
  histograms: { negatives: readonly number[]; positives: readonly number[] },
  noiseStddev: number,
  rng: RandomSource,
): NoisyEvaluation {
  if (histograms.negatives.length !== histograms.positives.length) {
    throw new RangeError('negatives and positives need the same number of bins');
  }
  const sampler = new DiscreteGaussianSampler(exactSquareOf(noiseStddev), rng);
  const noised = (counts: readonly number[]) =>
    counts.map((c) => {
      if (!Number.isSafeInteger(c) || c < 0) throw new RangeError('histogram counts must be non-negative integers');
      return c + sampler.sample();
    });
  return {
    kind: 'noisy-histogram',
    noiseStddev,
    negatives: noised(histograms.negatives),
    positives: noised(histograms.positives),
  };
}

/** Exact metrics as the protocol's ExactEvaluation (released WITHOUT differential privacy, by the plan's consent). */
export function exactEvaluation(m: {
  loss: number;
  accuracy: number;
  auc: number | null;
  n: number;
  positives: number;
}): ExactEvaluation {
  return { kind: 'exact', loss: m.loss, accuracy: m.accuracy, auc: m.auc, n: m.n, positives: m.positives };
}
