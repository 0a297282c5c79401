import * as tf from '@tensorflow/tfjs';
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
import { denseLayers, type ModelSpec } from './model-spec';
import { assertParameters, parameterLayout } from './parameter-layout';
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

import { checkExamples, type LabelArray } from './training-input';

export { poissonSample, type DpSgdConfig, type LatticeNoiseSource, type TrainingSchedule } from './sgd-schedule';

export interface LocalTrainingInput extends TrainingSchedule {
  readonly spec: ModelSpec;
  /** Global model received from the hub, in the flat layout. Not modified. */
  readonly parameters: Float32Array;
  /** Row-major n×d features. */
  readonly x: Float32Array;
  readonly y: LabelArray;
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
 * One silo's local training (the agent calls this each round). Without DP: mini-batch SGD on seeded shuffled
 * batches, gradient = mean of per-example gradients. With DP: DP-SGD (Abadi et al., CCS 2016, Algorithm 1) with
 * Poisson sampling at rate q and per-example clipping to C via ghost norms (Goodfellow 2015; conservativeClipNorm).
 * The sum of clipped gradients leaves TensorFlow.js, is rounded to the lattice γZ and gets exact discrete-Gaussian
 * noise in float64 integer arithmetic (@tessera/dp latticeNoise: stddev σ·(C + γ√d), so the rounding is paid for and
 * no floating-point noise is ever added to data — Mironov 2012); only then is it divided by dp.expectedBatchSize, a
 * public constant from the plan, rather than by the realised batch size or q·n (both data-dependent), and turned back
 * into float32 for the update (post-processing). FedProx's proximal gradient μ(w − w_global) and SCAFFOLD's correction
 * c − c_i are data-independent within the round and are added after the noise (post-processing, no privacy cost).
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
  const correction = checkedCorrection(input, size);
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
          await releaseNoisyGradient(
            gradients.kernels.flatMap((kernel, l) => [kernel, gradients.biases[l]!]),
            layout.entries.map((entry) => entry.offset),
            lattice,
            pendingNoise,
            normaliser,
            noisySum,
            dpGradient,
          );
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
          if (correction !== null) {
            const entry = layout.entries[entryIndex]!;
            gradient = tf.add(
              gradient,
              tf.tensor(correction.subarray(entry.offset, entry.offset + entry.length), param.shape),
            );
          }
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
