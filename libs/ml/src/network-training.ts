import * as tf from '@tensorflow/tfjs';
import type { NetworkSpec } from '@tessera/protocol';
import { ensureBackend } from './backend-selection';
import type { LocalTrainingResult } from './local-training';
import { checkNetworkExamples } from './network-data';
import { checkFixedFeatures, requireFixedFront, type NetworkRows } from './network-fixed-features';
import { dropoutMasks, type NetworkWeights } from './network-forward';
import { clippedGradientSum, gradientSum } from './network-gradients';
import { assertTaskLabels, targetWidth, writeTargets } from './network-loss';
import { TrainingInputErrorCode, TrainingInputException } from './ml.exception';
import { assertNetworkParameters, compileNetwork, type CompiledNetwork } from './network-model';
import { seededUniform } from './seeded-random';
import {
  BatchSampler,
  checkedCorrection,
  NoiseQueue,
  planLattice,
  planSteps,
  releaseNoisyGradient,
  validateScalars,
  type TrainingSchedule,
} from './sgd-schedule';
import type { LabelArray } from './training-input';

/**
 * Examples read a batch at a time (images streamed from disk): trainNetwork asks for the rows of each step's batch
 * and holds no more than one batch of rows. `readRows` writes the rows `indices` (0..n−1, in that order) into `out`,
 * rowLength values each; `step` lets a source apply per-step augmentation with randomness of its own (never drawn
 * from the data). Rows are checked (finite values) as they arrive.
 */
export interface NetworkExampleSource {
  readonly n: number;
  readRows(indices: ArrayLike<number>, out: Float32Array, step: number): Promise<void>;
}

export interface NetworkTrainingInput extends TrainingSchedule {
  readonly network: NetworkSpec;
  /** Global model received from the hub, in the network's flat layout. Not modified. */
  readonly parameters: Float32Array;
  /** Row-major n × rowLength data rows (see NetworkExamples), or a source that streams them batch by batch. */
  readonly x: Float32Array | NetworkExampleSource;
  /** Class indices (binary, multiclass) or target values (regression). */
  readonly y: LabelArray;
  /**
   * What x's rows are: the network's input rows (absent, 'input'), or the outputs of its fixed front
   * ('fixed-features': fixedFeatures, computed once per example), from which training runs the layers after it. The
   * sampling, clipping, noise and result are those of the whole network on the input rows.
   */
  readonly rows?: NetworkRows;
}

/**
 * Relative margin of the clipping target under DP-SGD: each example is clipped to C·(1 − 2⁻¹⁰). The per-example norm
 * (closed forms, float32) and the clipped sum (separate float32 products) round differently; on the test networks they
 * agree to 1e-5 relative, and 2⁻¹⁰ ≈ 9.8e-4 covers that a hundred times over so that no contribution exceeds C. It is
 * an empirical margin, not the proof the dense registry models have (conservativeClipNorm): docs/models.md.
 */
export const NETWORK_CLIP_MARGIN = 2 ** -10;

/** The clipping target DP-SGD applies for a declared clipping norm C. */
export function networkClipTarget(clipNorm: number): number {
  return clipNorm * (1 - NETWORK_CLIP_MARGIN);
}

/** Tensors for a flat parameter vector in layout order; the caller disposes them. */
export function networkWeightsFromFlat(network: CompiledNetwork, flat: Float32Array): tf.Tensor[] {
  return network.layout.entries.map((e) => tf.tensor(flat.subarray(e.offset, e.offset + e.length), [...e.shape]));
}

/** Flat parameter vector from tensors in layout order. */
export function networkWeightsToFlat(network: CompiledNetwork, weights: NetworkWeights): Float32Array {
  const flat = new Float32Array(network.layout.size);
  network.layout.entries.forEach((e, i) => flat.set(weights[i]!.dataSync(), e.offset));
  return flat;
}

/** Seed of a step's dropout masks: a function of the training seed and the step only (never of the data). */
function dropoutSeed(seed: number, step: number): number {
  return (Math.imul(seed, 0x9e3779b1) + step) >>> 0;
}

/**
 * One silo's local training of a declarative network: as trainLocal does for the registry models — mini-batch SGD
 * without DP; with DP, DP-SGD (Abadi et al. 2016) with Poisson sampling, per-example clipping by the closed forms of
 * network-gradients (one forward and one backward pass per batch, whatever the layers), the clipped sum released on
 * the lattice with exact discrete-Gaussian noise and divided by the plan's public batch size — and FedProx's proximal
 * term and SCAFFOLD's correction after the noise. Dropout masks come from a seeded generator (training seed, step), independent of the data.
 */
export async function trainNetwork(input: NetworkTrainingInput): Promise<LocalTrainingResult> {
  const backend = await ensureBackend();
  const { dp } = input;
  const network = compileNetwork(input.network);
  assertNetworkParameters(network, input.parameters);
  const source = input.x instanceof Float32Array ? null : input.x;
  const rows = input.rows ?? 'input';
  const n =
    source !== null
      ? checkSource(source)
      : rows === 'fixed-features'
        ? checkFixedFeatures(input.network, input.x as Float32Array, input.y).n
        : checkNetworkExamples(input.network, input.x as Float32Array, input.y).n;
  if (source !== null) assertTaskLabels(input.y, n, network.task);
  validateScalars(input);
  const plan = planSteps(input, n);

  const { layout } = network;
  const size = layout.size;
  const width = rows === 'fixed-features' ? requireFixedFront(network).rowLength : network.table.rowLength;
  const outputs = targetWidth(network.task);
  const seed = input.seed ?? 0;
  const sampler = new BatchSampler(
    n,
    dp?.sampling ?? seededUniform(seed),
    dp === undefined ? Math.min(input.batchSize!, n) : 0,
    dp === undefined ? null : dp.samplingRate,
  );
  const mu = input.proximalMu ?? 0;
  const correction = checkedCorrection(input, size);
  const clipTarget = dp === undefined ? 0 : networkClipTarget(dp.clipNorm);
  const lattice = dp !== undefined && dp.noiseMultiplier > 0 ? planLattice(dp, size) : null;
  const noisySum = dp === undefined ? null : new Float64Array(size);
  const dpGradient = dp === undefined ? null : new Float32Array(size);
  const offsets = layout.entries.map((e) => e.offset);
  // Batches are gathered in JS and uploaded: tf.gather on the wasm backend is far slower than copying rows. A source's
  // buffer grows to the largest batch seen (a Poisson batch has no fixed size), never to the whole data set.
  let xBatch = new Float32Array(source === null ? n * width : 0);
  const targetBatch = new Float32Array(n * outputs);
  const global = mu > 0 ? networkWeightsFromFlat(network, input.parameters) : null;
  let weights = networkWeightsFromFlat(network, input.parameters);
  const noiseAhead = new NoiseQueue(
    dp !== undefined && lattice !== null ? () => dp.noise(size, lattice.latticeSigma) : null,
    plan.totalSteps,
  );
  const lossHistory: number[] = [];
  let epochLoss = 0;
  let epochExamples = 0;
  let examplesUsed = 0;
  try {
    for (let step = 0; step < plan.totalSteps; step++) {
      const indices = sampler.next();
      const batch = indices.length;
      const pendingNoise = noiseAhead.next(step);
      if (source === null) {
        const x = input.x as Float32Array;
        for (let k = 0; k < batch; k++) {
          const row = indices[k]!;
          xBatch.set(x.subarray(row * width, (row + 1) * width), k * width);
        }
      } else {
        if (xBatch.length < batch * width) xBatch = new Float32Array(batch * width);
        await source.readRows(indices, xBatch.subarray(0, batch * width), step);
        assertFiniteRows(xBatch, batch * width, width);
      }
      writeTargets(input.y, network.task, targetBatch, indices);
      const current = weights;
      const { sums, lossSum } = tf.tidy(() => {
        if (batch === 0) {
          // An empty Poisson batch still takes a (pure-noise) step: skipping it would change the mechanism.
          return { sums: current.map((w) => tf.zerosLike(w)), lossSum: tf.scalar(0) };
        }
        const xb = tf.tensor2d(xBatch.subarray(0, batch * width), [batch, width]);
        const targets = tf.tensor2d(targetBatch.subarray(0, batch * outputs), [batch, outputs]);
        const masks = dropoutMasks(network, batch, dropoutSeed(seed, step));
        const result =
          dp === undefined
            ? gradientSum(network, current, xb, targets, masks, rows)
            : clippedGradientSum(network, current, xb, targets, clipTarget, masks, rows);
        return { sums: result.sums, lossSum: result.lossSum };
      });
      let privateGradient: Float32Array | null = null;
      try {
        if (noisySum !== null && dpGradient !== null) {
          await releaseNoisyGradient(sums, offsets, lattice, pendingNoise, dp!.expectedBatchSize, noisySum, dpGradient);
          privateGradient = dpGradient;
        }
      } catch (error) {
        tf.dispose([...sums, lossSum]);
        throw error;
      }
      const next = tf.tidy(() =>
        current.map((param, i) => {
          const entry = layout.entries[i]!;
          let gradient: tf.Tensor =
            privateGradient !== null
              ? tf.tensor(privateGradient.subarray(entry.offset, entry.offset + entry.length), param.shape)
              : tf.mul(sums[i]!, 1 / Math.max(batch, 1));
          if (global !== null) gradient = tf.add(gradient, tf.mul(tf.sub(param, global[i]!), mu));
          if (correction !== null) {
            gradient = tf.add(
              gradient,
              tf.tensor(correction.subarray(entry.offset, entry.offset + entry.length), param.shape),
            );
          }
          return tf.sub(param, tf.mul(gradient, input.learningRate));
        }),
      );
      tf.dispose([...current, ...sums]);
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
    const parameters = networkWeightsToFlat(network, weights);
    const delta = new Float32Array(size);
    for (let i = 0; i < size; i++) delta[i] = parameters[i]! - input.parameters[i]!;
    return { parameters, delta, steps: plan.totalSteps, lossHistory, examplesUsed, backend };
  } finally {
    tf.dispose(weights);
    if (global !== null) tf.dispose(global);
  }
}

function checkSource(source: NetworkExampleSource): number {
  if (!(Number.isInteger(source.n) && source.n > 0) || typeof source.readRows !== 'function') {
    throw new TrainingInputException(
      TrainingInputErrorCode.Features,
      'x must be a Float32Array or a source of n > 0 rows with readRows',
    );
  }
  return source.n;
}

/** A streamed batch's values are checked as they arrive: a source must never slip a NaN into a gradient. */
function assertFiniteRows(x: Float32Array, length: number, width: number): void {
  for (let i = 0; i < length; i++) {
    if (!Number.isFinite(x[i])) {
      throw new TrainingInputException(
        TrainingInputErrorCode.Features,
        `a streamed batch has a non-finite value at batch row ${Math.floor(i / width)}, column ${i % width}`,
      );
    }
  }
}

/** Per-example norms, clip factors and the clipped sum (flat layout) of one batch, as DP-SGD computes them. */
export interface NetworkClippedBatch {
  readonly norms: Float32Array;
  readonly clipFactors: Float32Array;
  readonly clippedSum: Float32Array;
}

/**
 * One batch's DP-SGD clipping exactly as trainNetwork does it (clipping target networkClipTarget(clipNorm)), for tests
 * and diagnostics. `dropoutSeed`, when given, applies the training-time dropout masks of that seed.
 */
export async function clippedNetworkBatch(
  spec: NetworkSpec,
  parameters: Float32Array,
  x: Float32Array,
  y: LabelArray,
  clipNorm: number,
  dropoutSeed?: number,
): Promise<NetworkClippedBatch> {
  await ensureBackend();
  const network = compileNetwork(spec);
  assertNetworkParameters(network, parameters);
  const { n } = checkNetworkExamples(spec, x, y);
  const outputs = targetWidth(network.task);
  const targets = new Float32Array(n * outputs);
  writeTargets(y, network.task, targets);
  const weights = networkWeightsFromFlat(network, parameters);
  try {
    const result = tf.tidy(() => {
      const masks = dropoutSeed === undefined ? undefined : dropoutMasks(network, n, dropoutSeed);
      const clipped = clippedGradientSum(
        network,
        weights,
        tf.tensor2d(x, [n, network.table.rowLength]),
        tf.tensor2d(targets, [n, outputs]),
        networkClipTarget(clipNorm),
        masks,
      );
      return { norms: clipped.norms, factors: clipped.factors, sums: clipped.sums, lossSum: clipped.lossSum };
    });
    const out = {
      norms: result.norms.dataSync() as Float32Array,
      clipFactors: result.factors.dataSync() as Float32Array,
      clippedSum: networkWeightsToFlat(network, result.sums),
    };
    tf.dispose([result.norms, result.factors, result.lossSum, ...result.sums]);
    return out;
  } finally {
    tf.dispose(weights);
  }
}
