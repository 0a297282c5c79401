import * as tf from '@tensorflow/tfjs';
import { latticeNoise, latticeNoisePlan, PrivacyParameterError, type LatticeNoisePlan } from '@tessera/dp';
import { fail, TrainingInputErrorCode } from './ml.exception';
import { shuffleInPlace, type UniformRandom } from './seeded-random';

/*
 * The SGD and DP-SGD machinery every model's local training shares: the step schedule, batch sampling (shuffled
 * slices, or Poisson under DP), noise requested ahead of the step, and the release of a step's clipped gradient sum on
 * the lattice. The model-specific part — per-example clipped gradient sums — stays with each model family.
 */

/**
 * Integer noise source injected by the caller (the agent passes @tessera/dp's GaussianNoiseWorker.drawIntegers):
 * `length` independent draws of the exact discrete Gaussian N_Z(0, latticeSigma²) as a Float64Array of integers
 * (float32 cannot hold them exactly). trainLocal rounds each step's clipped gradient sum to the lattice γZ and adds
 * these integers in exact float64 arithmetic (@tessera/dp latticeNoise). It may answer with a promise: trainLocal asks
 * for a step's noise before computing that step's gradients and waits for it only afterwards, so a source that draws
 * on another thread works while the gradients are computed.
 */
export type LatticeNoiseSource = (length: number, latticeSigma: number) => Float64Array | Promise<Float64Array>;

/** Example-level DP-SGD settings (Abadi et al., CCS 2016, Algorithm 1, with Poisson sampling). */
export interface DpSgdConfig {
  /** C: every per-example gradient is scaled to L2 norm at most C. */
  readonly clipNorm: number;
  /**
   * σ: the noise stddev is σ times the sensitivity of the lattice-rounded sum, C + γ√d (at least σ·C), i.e. σ is
   * relative to the clipping norm. σ = 0 clips without noise (and without the lattice): no privacy.
   */
  readonly noiseMultiplier: number;
  /** q: each example joins each step's batch independently with probability q. */
  readonly samplingRate: number;
  /**
   * The public normaliser: the noisy sum of clipped gradients is divided by this constant (the plan's
   * `training.batchSize`), never by q·n — n is this silo's record count, and dividing by it would scale the released
   * update and its noise by a data-dependent factor. A positive integer; required.
   */
  readonly expectedBatchSize: number;
  readonly noise: LatticeNoiseSource;
  /**
   * Uniform source for Poisson sampling. Defaults to the seeded generator (reproducible); the privacy analysis
   * assumes the adversary cannot predict the batches, so production callers should pass a CSPRNG-backed source.
   */
  readonly sampling?: UniformRandom;
}

/** How many steps, of what batches, at which rate, with or without DP: the part of a training input shared by every model. */
export interface TrainingSchedule {
  /** Exactly one of epochs and steps. Under DP an epoch is round(1/q) steps; otherwise ceil(n / batchSize). */
  readonly epochs?: number;
  readonly steps?: number;
  /** Mini-batch size without DP. Must be absent under DP, which normalises by dp.expectedBatchSize instead. */
  readonly batchSize?: number;
  /** SGD step size. */
  readonly learningRate: number;
  /** FedProx μ (Li et al., MLSys 2020, eq. 2): adds μ/2·||w − w_global||² to the local objective. */
  readonly proximalMu?: number;
  /**
   * SCAFFOLD's correction c − c_i (scaffold.ts, controlCorrection), in the flat parameter layout: added to every
   * step's gradient. Data-independent within the round (under DP it is post-processing of earlier releases), so it is
   * added after the noise.
   */
  readonly controlCorrection?: Float32Array;
  readonly dp?: DpSgdConfig;
  /** Seeds shuffling (and Poisson sampling unless dp.sampling is given). Default 0. */
  readonly seed?: number;
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1;
}

export interface StepPlan {
  readonly totalSteps: number;
  readonly stepsPerEpoch: number;
}

export function planSteps(input: TrainingSchedule, n: number): StepPlan {
  const { epochs, steps, batchSize, dp } = input;
  if (dp !== undefined) {
    if (batchSize !== undefined) {
      fail(
        TrainingInputErrorCode.BatchSize,
        "batchSize must be absent under DP: give the plan's batch size as dp.expectedBatchSize",
      );
    }
  } else if (!isPositiveInteger(batchSize)) {
    fail(TrainingInputErrorCode.BatchSize, 'batchSize must be a positive integer');
  }
  const stepsPerEpoch =
    dp !== undefined ? Math.max(1, Math.round(1 / dp.samplingRate)) : Math.ceil(n / Math.min(batchSize!, n));
  if ((epochs === undefined) === (steps === undefined)) {
    fail(TrainingInputErrorCode.Epochs, 'give exactly one of epochs and steps');
  }
  if (epochs !== undefined) {
    if (!isPositiveInteger(epochs)) fail(TrainingInputErrorCode.Epochs, 'epochs must be a positive integer');
    return { totalSteps: epochs * stepsPerEpoch, stepsPerEpoch };
  }
  if (!isPositiveInteger(steps)) fail(TrainingInputErrorCode.Steps, 'steps must be a positive integer');
  return { totalSteps: steps, stepsPerEpoch };
}

/** The SCAFFOLD correction, checked against the model's size (null when the input has none). */
export function checkedCorrection(input: TrainingSchedule, size: number): Float32Array | null {
  const c = input.controlCorrection;
  if (c === undefined) return null;
  if (!(c instanceof Float32Array) || c.length !== size) {
    fail(TrainingInputErrorCode.Parameters, `controlCorrection must be a Float32Array of ${size} values`);
  }
  for (let i = 0; i < c.length; i++) {
    if (!Number.isFinite(c[i])) fail(TrainingInputErrorCode.Parameters, 'controlCorrection has a non-finite value');
  }
  return c;
}

export function validateScalars(input: TrainingSchedule): void {
  const { learningRate, proximalMu, dp, seed } = input;
  if (!(typeof learningRate === 'number' && Number.isFinite(learningRate) && learningRate > 0)) {
    fail(TrainingInputErrorCode.LearningRate, 'learningRate must be a finite number > 0');
  }
  if (proximalMu !== undefined && !(Number.isFinite(proximalMu) && proximalMu >= 0)) {
    fail(TrainingInputErrorCode.ProximalMu, 'proximalMu must be a finite number >= 0');
  }
  if (seed !== undefined && !Number.isInteger(seed)) fail(TrainingInputErrorCode.Seed, 'seed must be an integer');
  if (dp === undefined) return;
  if (!(Number.isFinite(dp.clipNorm) && dp.clipNorm > 0)) {
    fail(TrainingInputErrorCode.ClipNorm, 'clipNorm must be a finite number > 0');
  }
  if (!(Number.isFinite(dp.noiseMultiplier) && dp.noiseMultiplier >= 0)) {
    fail(TrainingInputErrorCode.NoiseMultiplier, 'noiseMultiplier must be a finite number >= 0');
  }
  if (!(Number.isFinite(dp.samplingRate) && dp.samplingRate > 0 && dp.samplingRate <= 1)) {
    fail(TrainingInputErrorCode.SamplingRate, 'samplingRate must be in (0, 1]');
  }
  if (!(Number.isSafeInteger(dp.expectedBatchSize) && dp.expectedBatchSize >= 1)) {
    fail(
      TrainingInputErrorCode.BatchSize,
      "dp.expectedBatchSize must be a positive integer (the plan's training.batchSize): DP-SGD divides the noisy " +
        "gradient sum by this public constant, never by a count of the silo's records",
    );
  }
  if (typeof dp.noise !== 'function') fail(TrainingInputErrorCode.Noise, 'noise must be a function');
}

/** Checks the source's answer before it is used: a Float64Array of the right length (latticeNoise checks the values). */
export function checkedNoise(raw: unknown, size: number): Float64Array {
  if (!(raw instanceof Float64Array) || raw.length !== size) {
    fail(TrainingInputErrorCode.Noise, `noise must return a Float64Array of ${size} integers`);
  }
  return raw;
}

/**
 * Noise requested ahead of the steps that use it: each step's noise is asked for NOISE_LOOKAHEAD steps early and
 * awaited only after that step's gradients are computed, so a source drawing on another thread has the time of
 * NOISE_LOOKAHEAD + 1 gradient computations to answer. Noise is data-independent, so drawing it early changes nothing
 * in the mechanism. Requests never run past the last step; if training fails, those in flight are dropped.
 */
export class NoiseQueue {
  private readonly queue: Promise<Float64Array>[] = [];
  private issued = 0;

  constructor(
    private readonly request: (() => Float64Array | Promise<Float64Array>) | null,
    private readonly total: number,
  ) {}

  /** The noise for `step` (null without noise), with the requests of the following steps already on their way. */
  next(step: number): Promise<Float64Array> | null {
    if (this.request === null) return null;
    while (this.issued < Math.min(this.total, step + 1 + NOISE_LOOKAHEAD)) {
      const pending = Promise.resolve(this.request());
      // Awaited in its step; if training stops first, a failing draw must not become an unhandled rejection.
      pending.catch(() => undefined);
      this.queue.push(pending);
      this.issued++;
    }
    return this.queue.shift()!;
  }
}

/** Steps of noise requested beyond the current one. */
const NOISE_LOOKAHEAD = 1;

/**
 * Poisson sampling: every index of 0..n-1 is included independently with probability q (the subsampling the
 * RDP accountant of the sampled Gaussian assumes; Mironov, Talwar, Zhang 2019). Instead of one uniform per example it
 * draws the gaps between included indices, which are Geometric(q) — P(gap ≥ k) = (1 − q)^k — by inversion
 * (Devroye 1986, "Non-Uniform Random Variate Generation", §X.2): same distribution, about q·n uniforms per step.
 */
export function poissonSample(n: number, q: number, random: UniformRandom): Int32Array {
  if (q >= 1) return Int32Array.from({ length: n }, (_, i) => i);
  const logMiss = Math.log1p(-q);
  const chosen: number[] = [];
  for (let i = -1; ;) {
    // 1 − u lies in (0, 1], so the logarithm is finite or 0 and the gap is a non-negative integer (or +Infinity).
    i += Math.floor(Math.log1p(-random()) / logMiss) + 1;
    if (!(i < n)) break;
    chosen.push(i);
  }
  return Int32Array.from(chosen);
}

/** Batch indices: Poisson sampling under DP, else consecutive slices of a seeded shuffle, reshuffled per epoch. */
export class BatchSampler {
  private readonly order: Int32Array;
  private cursor: number;

  constructor(
    private readonly n: number,
    private readonly random: UniformRandom,
    private readonly batchSize: number,
    private readonly samplingRate: number | null,
  ) {
    this.order = Int32Array.from({ length: n }, (_, i) => i);
    this.cursor = n;
  }

  next(): Int32Array {
    if (this.samplingRate !== null) return poissonSample(this.n, this.samplingRate, this.random);
    if (this.cursor >= this.n) {
      shuffleInPlace(this.order, this.random);
      this.cursor = 0;
    }
    const batch = this.order.slice(this.cursor, Math.min(this.n, this.cursor + this.batchSize));
    this.cursor += this.batchSize;
    return batch;
  }
}

/** The step's lattice for the whole parameter vector; a refusal of @tessera/dp becomes this library's error. */
export function planLattice(dp: DpSgdConfig, size: number): LatticeNoisePlan {
  try {
    return latticeNoisePlan({ clipNorm: dp.clipNorm, noiseMultiplier: dp.noiseMultiplier, dimension: size });
  } catch (error) {
    if (error instanceof PrivacyParameterError) fail(TrainingInputErrorCode.NoiseMultiplier, error.message);
    throw error;
  }
}

/**
 * The DP-SGD release of one step, outside TensorFlow.js: the clipped gradient sums (float32 tensors, one per layout
 * entry, at `offsets`) are copied into `noisySum` (float64), noised on the lattice in place (exact; skipped when
 * σ = 0), and divided by the public normaliser into `gradient` (float32: rounding after the release is
 * post-processing).
 */
export async function releaseNoisyGradient(
  sums: readonly tf.Tensor[],
  offsets: readonly number[],
  lattice: LatticeNoisePlan | null,
  pendingNoise: Promise<Float64Array> | null,
  normaliser: number,
  noisySum: Float64Array,
  gradient: Float32Array,
): Promise<void> {
  if (offsets.length !== sums.length) {
    throw new Error(`DP-SGD: ${sums.length} gradient sums but ${offsets.length} offsets`);
  }
  sums.forEach((sum, i) => noisySum.set(sum.dataSync(), offsets[i]));
  if (lattice !== null && pendingNoise !== null) {
    const noise = checkedNoise(await pendingNoise, noisySum.length);
    try {
      latticeNoise(noisySum, lattice, noise, noisySum);
    } catch (error) {
      if (!(error instanceof PrivacyParameterError)) throw error;
      if (error.parameter === 'noise') fail(TrainingInputErrorCode.Noise, error.message);
      // A sum off the lattice's range is a diverged step (clipping bounds each record's contribution by C).
      throw new Error(`DP-SGD: the clipped gradient sum cannot be noised: ${error.message}`);
    }
  }
  for (let i = 0; i < gradient.length; i++) gradient[i] = noisySum[i]! / normaliser;
}
