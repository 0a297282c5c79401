import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import type { AggregationTrace, ClipTrace, MeanTrace, NoiseTrace, WeightTrace } from './aggregation-trace';
import {
  type AggregatedDelta,
  type AggregatedSum,
  type DeltaAggregator,
  FedAvgAggregator,
  type SumDeltaAggregator,
} from './delta-aggregator';
import { assertFiniteSquaredNorm, assertLength, assertWeight } from './update-validation';

/**
 * The Gaussian mechanism on the float64 sum of clipped updates, injected so this pure library never owns randomness:
 * returns the noisy sum (same length, finite) and the stddev of the noise it added (on the sum, ≥ z·S). Production
 * passes @tessera/dp's `latticeNoisySum`, which rounds the sum onto a power-of-two lattice and adds exact
 * discrete-Gaussian integers in exact float64 arithmetic, inflating the noise for the rounding; tests pass a
 * deterministic stand-in.
 */
export type SumNoiseMechanism = (
  sum: Float64Array,
  parameters: { readonly clipNorm: number; readonly noiseMultiplier: number },
) => { readonly sum: Float64Array; readonly plan: { readonly effectiveStddev: number; readonly granularity: number } };

export interface DpFedAvgOptions {
  /** S: every silo's whole update is scaled to L2 norm ≤ S before it enters the sum. Parameter units. */
  readonly clippingNorm: number;
  /**
   * z: the Gaussian noise on the SUM has standard deviation z·S (z is relative to the clipping norm). z = 0 clips
   * without noise and gives no privacy; the trace records it.
   */
  readonly noiseMultiplier: number;
  /**
   * W: the public, fixed denominator — the number of silos expected to report this round (qN in McMahan et al.
   * 2018, for uniform weights). Not the number that actually reported; see DpFedAvgAggregator.
   */
  readonly expectedSilos: number;
}

/**
 * Silo-level DP-FedAvg (McMahan, Ramage, Talwar, Zhang 2018, "Learning Differentially Private Recurrent Language
 * Models", Algorithm 1 with the fixed-denominator estimator f̃_f of §2), as a wrapper around a sum strategy:
 *
 * 1. add(): the update's L2 norm is measured (float64) and the update scaled by min(1, S/norm), so every silo's
 *    contribution has norm ≤ S; every silo gets weight 1 (the reported example count is recorded, not used: a
 *    data-dependent weight would let one silo move the sum by more than S).
 * 2. finish(): the float64 sum Σ clip(Δᵢ) has L2 sensitivity S when one silo is added or removed. The injected
 *    mechanism adds Gaussian noise of stddev ≥ z·S to the sum itself (production: on the lattice, exactly, so no
 *    floating-point rounding of data plus noise leaks low-order bits — Mironov 2012), and only the noisy sum is
 *    divided by the FIXED denominator W (`expectedSilos`) and rounded to float32 (post-processing). Why fixed: dividing by the actual count would make
 *    the denominator itself depend on whether a silo took part, so the sensitivity of the mean would no longer be
 *    S/W and participation would leak through the scale. The price: the estimate is scaled by (reported / W) when
 *    fewer silos report than expected (unbiased when participation is Poisson with mean W).
 *
 * Clipping uses factor = (S / norm)·(1 − 2⁻²³): rounding each coordinate to float32 changes the norm by a relative
 * 2⁻²⁴ at most, so the shrink guarantees the stored, clipped update never exceeds S.
 */
export class DpFedAvgAggregator implements DeltaAggregator {
  readonly clippingNorm: number;
  readonly noiseMultiplier: number;
  readonly expectedSilos: number;
  private readonly scratch: Float32Array;

  constructor(
    private readonly inner: SumDeltaAggregator,
    options: DpFedAvgOptions,
    private readonly noise: SumNoiseMechanism,
  ) {
    const { clippingNorm, noiseMultiplier, expectedSilos } = options;
    if (!(Number.isFinite(clippingNorm) && clippingNorm > 0)) {
      throw new AggregationException(AggregationErrorCode.InvalidParameter, 'clippingNorm must be finite and > 0');
    }
    if (!(Number.isFinite(noiseMultiplier) && noiseMultiplier >= 0)) {
      throw new AggregationException(AggregationErrorCode.InvalidParameter, 'noiseMultiplier must be finite and ≥ 0');
    }
    if (!(Number.isFinite(expectedSilos) && expectedSilos > 0)) {
      throw new AggregationException(AggregationErrorCode.InvalidParameter, 'expectedSilos must be finite and > 0');
    }
    if (typeof noise !== 'function') {
      throw new AggregationException(AggregationErrorCode.InvalidParameter, 'a sum noise mechanism is required');
    }
    this.clippingNorm = clippingNorm;
    this.noiseMultiplier = noiseMultiplier;
    this.expectedSilos = expectedSilos;
    // One reusable buffer for clipped copies: no allocation per update, and the caller's array is never modified.
    this.scratch = new Float32Array(inner.length);
  }

  get length(): number {
    return this.inner.length;
  }

  get count(): number {
    return this.inner.count;
  }

  /** Nominal standard deviation added to each coordinate of the mean: z·S / W (the lattice adds a little more). */
  get meanNoiseStddev(): number {
    return (this.noiseMultiplier * this.clippingNorm) / this.expectedSilos;
  }

  add(update: Float32Array, weight: number): readonly AggregationTrace[] {
    assertLength(update, this.length, 'update');
    assertWeight(weight);
    const norm = Math.sqrt(assertFiniteSquaredNorm(update, 'update'));
    const S = this.clippingNorm;
    let factor = 1;
    let contribution = update;
    if (norm > S) {
      factor = (S / norm) * (1 - 2 ** -23);
      const out = this.scratch;
      for (let i = 0; i < out.length; i += 1) out[i] = update[i]! * factor;
      contribution = out;
    }
    this.inner.add(contribution, 1);
    const weightTrace: WeightTrace = { step: 'weight', reportedWeight: weight, appliedWeight: 1 };
    const clip: ClipTrace = { step: 'clip', norm, clippingNorm: S, factor };
    return [weightTrace, clip];
  }

  finish(): AggregatedDelta {
    return releaseDpFedAvgSum(this.inner.finishSum(), this, this.noise);
  }
}

/**
 * DpFedAvgAggregator's release step on a sum of clipped updates however it was computed (one update at a time, or
 * fused and blockwise by fusedDpFedAvg): the injected mechanism's noise on the float64 sum, checked never to be less
 * than z·S, then division by the fixed denominator W and rounding to float32 (post-processing).
 */
export function releaseDpFedAvgSum(
  base: AggregatedSum,
  options: DpFedAvgOptions,
  noise: SumNoiseMechanism,
): AggregatedDelta {
  const W = options.expectedSilos;
  const z = options.noiseMultiplier;
  const S = options.clippingNorm;
  let sum = base.sum;
  let stddevOnSum = 0;
  let granularity: number | undefined;
  if (z > 0) {
    const noisy = noise(base.sum, { clipNorm: S, noiseMultiplier: z });
    if (!(noisy?.sum instanceof Float64Array) || noisy.sum.length !== base.sum.length) {
      throw new AggregationException(
        AggregationErrorCode.NoiseSourceInvalid,
        `noise mechanism returned ${String(noisy?.sum?.length)} values, expected a Float64Array of ${base.sum.length}`,
      );
    }
    // Never less noise than accounted: a mechanism reporting less than z·S is refused, not trusted.
    if (!(noisy.plan.effectiveStddev >= z * S)) {
      throw new AggregationException(
        AggregationErrorCode.NoiseSourceInvalid,
        `noise mechanism added stddev ${noisy.plan.effectiveStddev}, below z·S = ${z * S}`,
      );
    }
    sum = noisy.sum;
    stddevOnSum = noisy.plan.effectiveStddev;
    granularity = noisy.plan.granularity;
  }
  const delta = new Float32Array(sum.length);
  for (let i = 0; i < delta.length; i += 1) {
    if (!Number.isFinite(sum[i])) {
      throw new AggregationException(AggregationErrorCode.NoiseSourceInvalid, `noisy sum value ${i} is not finite`);
    }
    // Divided and rounded to float32 only after the noise: post-processing of the released sum.
    delta[i] = sum[i]! / W;
  }
  const mean: MeanTrace = {
    step: 'mean',
    weighting: base.weighting,
    count: base.count,
    totalWeight: base.totalWeight,
    denominator: W,
  };
  const noiseTrace: NoiseTrace = {
    step: 'noise',
    mechanism: 'discrete-gaussian-lattice',
    noiseMultiplier: z,
    clippingNorm: S,
    denominator: W,
    stddev: stddevOnSum / W,
    ...(granularity === undefined ? {} : { granularity }),
  };
  return { delta, count: base.count, totalWeight: base.totalWeight, trace: [mean, noiseTrace] };
}

/**
 * DP-FedAvg over a uniform FedAvg sum (the usual composition): every silo counts 1, S-clipped, Gaussian noise.
 * See DpFedAvgAggregator for the mechanism (McMahan et al. 2018).
 */
export function createDpFedAvgAggregator(
  length: number,
  options: DpFedAvgOptions,
  noise: SumNoiseMechanism,
): DpFedAvgAggregator {
  return new DpFedAvgAggregator(new FedAvgAggregator(length, { weighting: 'unweighted' }), options, noise);
}
