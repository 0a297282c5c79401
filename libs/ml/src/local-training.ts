import * as tf from '@tensorflow/tfjs';
import { latticeNoise, latticeNoisePlan, PrivacyParameterError, type LatticeNoisePlan } from '@tessera/dp';
import { ensureBackend } from './backend-selection';
import {
  backwardDeltas,
  clipFactors,
  forwardPass,
  perExampleGradientNorms,
  perExampleLoss,
  weightedGradientSums,
  weightsFromFlat,
  weightsToFlat,
  type DenseWeights,
} from './dense-network';
import { TrainingInputErrorCode, TrainingInputException } from './ml.exception';
import { denseLayers, type ModelSpec } from './model-spec';
import { assertParameters, parameterLayout } from './parameter-layout';
import { seededUniform, shuffleInPlace, type UniformRandom } from './seeded-random';
import { checkExamples, type LabelArray } from './training-input';

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

export interface LocalTrainingInput {
  readonly spec: ModelSpec;
  /** Global model received from the hub, in the flat layout. Not modified. */
  readonly parameters: Float32Array;
  /** Row-major n×d features. */
  readonly x: Float32Array;
  readonly y: LabelArray;
  /** Exactly one of epochs and steps. Under DP an epoch is round(1/q) steps; otherwise ceil(n / batchSize). */
  readonly epochs?: number;
  readonly steps?: number;
  /** Mini-batch size without DP. Must be absent under DP, which normalises by dp.expectedBatchSize instead. */
  readonly batchSize?: number;
  /** SGD step size. */
  readonly learningRate: number;
  /** FedProx μ (Li et al., MLSys 2020, eq. 2): adds μ/2·||w − w_global||² to the local objective. */
  readonly proximalMu?: number;
  readonly dp?: DpSgdConfig;
  /** Seeds shuffling (and Poisson sampling unless dp.sampling is given). Default 0. */
  readonly seed?: number;
}

export interface LocalTrainingResult {
  readonly parameters: Float32Array;
  /** New minus old parameters: what the agent uploads. */
  readonly delta: Float32Array;
  readonly steps: number;
  /**
   * Mean training loss of the examples drawn in each epoch (before each step's update). Not privatised: under DP
   * it must stay in the silo.
   */
  readonly lossHistory: number[];
  /** Σ over steps of the batch size (variable under Poisson sampling). */
  readonly examplesUsed: number;
  /** tfjs backend the computation ran on. */
  readonly backend: string;
}

function fail(code: TrainingInputErrorCode, message: string): never {
  throw new TrainingInputException(code, message);
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1;
}

interface StepPlan {
  readonly totalSteps: number;
  readonly stepsPerEpoch: number;
}

function planSteps(input: LocalTrainingInput, n: number): StepPlan {
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

function validateScalars(input: LocalTrainingInput): void {
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
function checkedNoise(raw: unknown, size: number): Float64Array {
  if (!(raw instanceof Float64Array) || raw.length !== size) {
    fail(TrainingInputErrorCode.Noise, `noise must return a Float64Array of ${size} integers`);
  }
  return raw;
}

/**
 * The largest clipping target whose float32 clipping cannot produce a contribution of norm above C. The ghost norm
 * ||g_i|| is computed in float32: per layer a sum of w squares (w = units) times a sum of h + 1 squares (h = inputs),
 * then a sum over L layers and a square root. Every term is non-negative, so (Higham, "Accuracy and Stability of
 * Numerical Algorithms", 2nd ed., §3.1 and Lemma 3.1) the computed norm is at least (1 − γ_{M+L+1})·||g_i||, with
 * M = max_l (w_l + h_l + 3), γ_m = m·u/(1 − m·u) and u = 2^-24. The factor min(1, C'/(norm + 1e-6)) is rounded once
 * (≤ 1 + u) and the contribution c·a_i⊗δ_i twice more (≤ (1 + u)²). So the clipped contribution has norm at most
 * C'·(1 + u)³/(1 − γ_{M+L+1}) ≤ C'·(1 + 2(M + L + 8)u), and C' = C·(1 − 2(M + L + 8)u) keeps it ≤ C. For the
 * 784-256-10 MLP the margin is 1.3e-4 of C. (The float32 sum over the batch is another matter: docs/privacy.md.)
 */
export function conservativeClipNorm(spec: ModelSpec, clipNorm: number): number {
  const layers = denseLayers(spec);
  const widest = Math.max(...layers.map((l) => l.units + l.inputs + 3));
  return clipNorm * (1 - 2 * (widest + layers.length + 8) * 2 ** -24);
}

/**
 * Noise requested ahead of the steps that use it: each step's noise is asked for NOISE_LOOKAHEAD steps early and
 * awaited only after that step's gradients are computed, so a source drawing on another thread has the time of
 * NOISE_LOOKAHEAD + 1 gradient computations to answer. Noise is data-independent, so drawing it early changes nothing
 * in the mechanism. Requests never run past the last step; if training fails, those in flight are dropped.
 */
class NoiseQueue {
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
class BatchSampler {
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

/**
 * One silo's local training (the agent calls this each round). Without DP: mini-batch SGD on seeded shuffled
 * batches, gradient = mean of per-example gradients. With DP: DP-SGD (Abadi et al., CCS 2016, Algorithm 1) with
 * Poisson sampling at rate q and per-example clipping to C via ghost norms (Goodfellow 2015; conservativeClipNorm).
 * The sum of clipped gradients leaves TensorFlow.js, is rounded to the lattice γZ and gets exact discrete-Gaussian
 * noise in float64 integer arithmetic (@tessera/dp latticeNoise: stddev σ·(C + γ√d), so the rounding is paid for and
 * no floating-point noise is ever added to data — Mironov 2012); only then is it divided by dp.expectedBatchSize, a
 * public constant from the plan, rather than by the realised batch size or q·n (both data-dependent), and turned back
 * into float32 for the update (post-processing). FedProx's proximal gradient μ(w − w_global) is data-independent and
 * is added after the noise (post-processing, no privacy cost).
 */
export async function trainLocal(input: LocalTrainingInput): Promise<LocalTrainingResult> {
  const backend = await ensureBackend();
  const { spec, dp } = input;
  assertParameters(spec, input.parameters);
  const { n, rowSquaredNorms } = checkExamples(spec, input.x, input.y);
  validateScalars(input);
  const plan = planSteps(input, n);

  const layers = denseLayers(spec);
  const classes = layers[layers.length - 1]!.units;
  const binary = classes === 1;
  const layout = parameterLayout(spec);
  const size = layout.size;
  const seedRandom = seededUniform(input.seed ?? 0);
  const sampler = new BatchSampler(
    n,
    dp?.sampling ?? seedRandom,
    dp === undefined ? Math.min(input.batchSize!, n) : 0,
    dp === undefined ? null : dp.samplingRate,
  );
  const mu = input.proximalMu ?? 0;
  const learningRate = input.learningRate;
  const normaliser = dp === undefined ? 0 : dp.expectedBatchSize;
  const clipTarget = dp === undefined ? 0 : conservativeClipNorm(spec, dp.clipNorm);
  const lattice = dp !== undefined && dp.noiseMultiplier > 0 ? planLattice(dp, size) : null;
  // Per step: the clipped sum in float64 (noised in place on the lattice), then the normalised gradient in float32.
  const noisySum = dp === undefined ? null : new Float64Array(size);
  const dpGradient = dp === undefined ? null : new Float32Array(size);

  const d = spec.inputDim;
  // ||x_i||² never changes during training: the validation pass computed it for the first layer's ghost norms.
  const xSquaredNorms = dp === undefined ? null : rowSquaredNorms;
  // Batches are gathered in JS and uploaded: tf.gather on the wasm backend was ~15× slower than copying rows.
  const xBatch = new Float32Array(n * d);
  const targetBatch = new Float32Array(n * classes);
  const normBatch = new Float32Array(n);
  const global = mu > 0 ? weightsFromFlat(spec, input.parameters) : null;
  let weights: DenseWeights = weightsFromFlat(spec, input.parameters);

  const lossHistory: number[] = [];
  let epochLoss = 0;
  let epochExamples = 0;
  let examplesUsed = 0;
  const noiseAhead = new NoiseQueue(
    dp !== undefined && lattice !== null ? () => dp.noise(size, lattice.latticeSigma) : null,
    plan.totalSteps,
  );
  try {
    for (let step = 0; step < plan.totalSteps; step++) {
      const indices = sampler.next();
      const batch = indices.length;
      const pendingNoise = noiseAhead.next(step);
      const current = weights;
      const { gradients, lossSum } = tf.tidy(() => {
        const gradients: { kernels: tf.Tensor[]; biases: tf.Tensor[] } = { kernels: [], biases: [] };
        let lossSum: tf.Scalar = tf.scalar(0);
        if (batch > 0) {
          for (let k = 0; k < batch; k++) {
            const row = indices[k]!;
            xBatch.set(input.x.subarray(row * d, (row + 1) * d), k * d);
            if (binary) targetBatch[k] = input.y[row]!;
            else {
              targetBatch.fill(0, k * classes, (k + 1) * classes);
              targetBatch[k * classes + input.y[row]!] = 1;
            }
            if (xSquaredNorms !== null) normBatch[k] = xSquaredNorms[row]!;
          }
          const xb = tf.tensor2d(xBatch.subarray(0, batch * d), [batch, d]);
          const targets = tf.tensor2d(targetBatch.subarray(0, batch * classes), [batch, classes]);
          const trace = forwardPass(layers, current, xb);
          lossSum = tf.sum(perExampleLoss(trace.logits, targets, binary));
          const deltas = backwardDeltas(layers, current, trace, targets);
          let sums: DenseWeights;
          if (dp !== undefined) {
            const norms = perExampleGradientNorms(trace, deltas, tf.tensor1d(normBatch.subarray(0, batch)));
            sums = weightedGradientSums(trace, deltas, clipFactors(norms, clipTarget));
          } else {
            sums = weightedGradientSums(trace, deltas);
          }
          gradients.kernels = sums.kernels;
          gradients.biases = sums.biases;
        } else {
          // An empty Poisson batch still takes a (pure-noise) step: skipping it would change the mechanism.
          gradients.kernels = current.kernels.map((k) => tf.zerosLike(k));
          gradients.biases = current.biases.map((b) => tf.zerosLike(b));
        }
        return { gradients, lossSum };
      });
      let privateGradient: Float32Array | null = null;
      try {
        if (noisySum !== null && dpGradient !== null) {
          await releaseNoisyGradient(gradients, layout, lattice, pendingNoise, normaliser, noisySum, dpGradient);
          privateGradient = dpGradient;
        }
      } catch (error) {
        tf.dispose([...gradients.kernels, ...gradients.biases, lossSum]);
        throw error;
      }
      const next = tf.tidy(() => {
        const update = (param: tf.Tensor, sum: tf.Tensor, entryIndex: number, globalParam: tf.Tensor | undefined) => {
          let gradient: tf.Tensor;
          if (privateGradient !== null) {
            const entry = layout.entries[entryIndex]!;
            gradient = tf.tensor(privateGradient.subarray(entry.offset, entry.offset + entry.length), param.shape);
          } else {
            gradient = tf.mul(sum, 1 / batch);
          }
          if (globalParam !== undefined) gradient = tf.add(gradient, tf.mul(tf.sub(param, globalParam), mu));
          return tf.sub(param, tf.mul(gradient, learningRate));
        };
        const next: DenseWeights = {
          kernels: current.kernels.map(
            (k, l) => update(k, gradients.kernels[l]!, 2 * l, global?.kernels[l]) as tf.Tensor2D,
          ),
          biases: current.biases.map(
            (b, l) => update(b, gradients.biases[l]!, 2 * l + 1, global?.biases[l]) as tf.Tensor1D,
          ),
        };
        return next;
      });
      tf.dispose([...current.kernels, ...current.biases, ...gradients.kernels, ...gradients.biases]);
      weights = next;
      epochLoss += lossSum.dataSync()[0]!;
      lossSum.dispose();
      epochExamples += batch;
      examplesUsed += batch;
      if ((step + 1) % plan.stepsPerEpoch === 0 || step + 1 === plan.totalSteps) {
        lossHistory.push(epochExamples > 0 ? epochLoss / epochExamples : Number.NaN);
        epochLoss = 0;
        epochExamples = 0;
      }
    }
    const parameters = weightsToFlat(spec, weights);
    const delta = new Float32Array(size);
    for (let i = 0; i < size; i++) delta[i] = parameters[i]! - input.parameters[i]!;
    return { parameters, delta, steps: plan.totalSteps, lossHistory, examplesUsed, backend };
  } finally {
    tf.dispose([...weights.kernels, ...weights.biases]);
    if (global !== null) tf.dispose([...global.kernels, ...global.biases]);
  }
}

/** The step's lattice for the whole parameter vector; a refusal of @tessera/dp becomes this library's error. */
function planLattice(dp: DpSgdConfig, size: number): LatticeNoisePlan {
  try {
    return latticeNoisePlan({ clipNorm: dp.clipNorm, noiseMultiplier: dp.noiseMultiplier, dimension: size });
  } catch (error) {
    if (error instanceof PrivacyParameterError) fail(TrainingInputErrorCode.NoiseMultiplier, error.message);
    throw error;
  }
}

/**
 * The DP-SGD release of one step, outside TensorFlow.js: the clipped gradient sums (float32 tensors, layout order)
 * are copied into `noisySum` (float64), noised on the lattice in place (exact; skipped when σ = 0), and divided by the
 * public normaliser into `gradient` (float32: rounding after the release is post-processing).
 */
async function releaseNoisyGradient(
  sums: { readonly kernels: readonly tf.Tensor[]; readonly biases: readonly tf.Tensor[] },
  layout: ReturnType<typeof parameterLayout>,
  lattice: LatticeNoisePlan | null,
  pendingNoise: Promise<Float64Array> | null,
  normaliser: number,
  noisySum: Float64Array,
  gradient: Float32Array,
): Promise<void> {
  sums.kernels.forEach((kernel, l) => {
    noisySum.set(kernel.dataSync(), layout.entries[2 * l]!.offset);
    noisySum.set(sums.biases[l]!.dataSync(), layout.entries[2 * l + 1]!.offset);
  });
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
