import * as tf from '@tensorflow/tfjs';
import { denseLayers, type DenseLayerShape, type ModelSpec } from './model-spec';
import { parameterLayout } from './parameter-layout';

/**
 * Hand-written forward and backward passes of the dense networks in the registry, in tfjs ops. Writing the
 * backward pass out (rather than using tf.grad) exposes the per-example error signals δ, which is what makes
 * per-example gradient norms cheap (Goodfellow 2015, "Efficient Per-Example Gradient Computations").
 *
 * Notation: layer l = 1..L maps a_{l-1} [B, in] to z_l = a_{l-1}·W_l + b_l and a_l = act(z_l); a_0 = x.
 * δ_l = ∂loss_i/∂z_l row by row (per-example losses, not their mean).
 */

/** Kernels [in, units] and biases [units] of each layer, input to output. */
// A type alias, not an interface, so that it is assignable to tfjs's TensorContainer (tf.tidy results).
export type DenseWeights = {
  readonly kernels: tf.Tensor2D[];
  readonly biases: tf.Tensor1D[];
};

/** What the backward pass needs from the forward pass. */
export interface ForwardTrace {
  /** a_0..a_{L-1}: the input of every layer. */
  readonly layerInputs: tf.Tensor2D[];
  /** z_L: output logits [B, k]. */
  readonly logits: tf.Tensor2D;
  /** sigmoid(z_L) (binary, k = 1) or softmax(z_L). */
  readonly probabilities: tf.Tensor2D;
}

/** Tensors for a flat parameter vector in layout order; the caller disposes them. */
export function weightsFromFlat(spec: ModelSpec, flat: Float32Array): DenseWeights {
  const entries = parameterLayout(spec).entries;
  const kernels: tf.Tensor2D[] = [];
  const biases: tf.Tensor1D[] = [];
  for (let i = 0; i < entries.length; i += 2) {
    const kernel = entries[i]!;
    const bias = entries[i + 1]!;
    kernels.push(
      tf.tensor2d(flat.subarray(kernel.offset, kernel.offset + kernel.length), kernel.shape as [number, number]),
    );
    biases.push(tf.tensor1d(flat.subarray(bias.offset, bias.offset + bias.length)));
  }
  return { kernels, biases };
}

/** Flat parameter vector from per-layer tensors (layout order: kernel then bias of each layer). */
export function weightsToFlat(spec: ModelSpec, weights: DenseWeights): Float32Array {
  const entries = parameterLayout(spec).entries;
  const flat = new Float32Array(parameterLayout(spec).size);
  weights.kernels.forEach((kernel, l) => {
    flat.set(kernel.dataSync(), entries[2 * l]!.offset);
    flat.set(weights.biases[l]!.dataSync(), entries[2 * l + 1]!.offset);
  });
  return flat;
}

/** Forward pass (call inside tf.tidy). */
export function forwardPass(layers: readonly DenseLayerShape[], weights: DenseWeights, x: tf.Tensor2D): ForwardTrace {
  const layerInputs: tf.Tensor2D[] = [];
  let a = x;
  for (let l = 0; l < layers.length - 1; l++) {
    layerInputs.push(a);
    const z = tf.add<tf.Tensor2D>(tf.matMul(a, weights.kernels[l]!), weights.biases[l]!);
    a = layers[l]!.activation === 'tanh' ? tf.tanh(z) : tf.relu(z);
  }
  layerInputs.push(a);
  const last = layers.length - 1;
  const logits = tf.add<tf.Tensor2D>(tf.matMul(a, weights.kernels[last]!), weights.biases[last]!);
  const probabilities = layers[last]!.activation === 'sigmoid' ? tf.sigmoid(logits) : tf.softmax(logits);
  return { layerInputs, logits, probabilities };
}

/**
 * Per-example loss [B] from logits: binary cross-entropy in its stable form max(z,0) − z·y + log(1 + e^−|z|),
 * or softmax cross-entropy logsumexp(z) − z_y. `targets` is [B, 1] of 0/1 or one-hot [B, k].
 */
export function perExampleLoss(logits: tf.Tensor2D, targets: tf.Tensor2D, binary: boolean): tf.Tensor1D {
  if (binary) {
    const stable = tf.add(tf.sub(tf.relu(logits), tf.mul(logits, targets)), tf.log1p(tf.exp(tf.neg(tf.abs(logits)))));
    return tf.reshape<tf.Rank.R1>(stable, [-1]);
  }
  return tf.sub<tf.Tensor1D>(tf.logSumExp(logits, 1), tf.sum(tf.mul(logits, targets), 1));
}

/**
 * δ_1..δ_L for the per-example losses. At the output both sigmoid+BCE and softmax+CE give δ_L = p − y;
 * then δ_{l-1} = (δ_l·W_lᵀ) ⊙ act'(a_{l-1}) with relu' = [a > 0] and tanh' = 1 − a².
 * Transposes are explicit: tfjs-wasm runs transposed matMuls far slower than transpose + matMul.
 */
export function backwardDeltas(
  layers: readonly DenseLayerShape[],
  weights: DenseWeights,
  trace: ForwardTrace,
  targets: tf.Tensor2D,
): tf.Tensor2D[] {
  const deltas: tf.Tensor2D[] = new Array<tf.Tensor2D>(layers.length);
  let delta = tf.sub<tf.Tensor2D>(trace.probabilities, targets);
  deltas[layers.length - 1] = delta;
  for (let l = layers.length - 1; l > 0; l--) {
    const a = trace.layerInputs[l]!;
    const derivative = layers[l - 1]!.activation === 'tanh' ? tf.sub(1, tf.square(a)) : tf.step(a);
    delta = tf.mul<tf.Tensor2D>(tf.matMul(delta, tf.transpose(weights.kernels[l]!)), derivative);
    deltas[l - 1] = delta;
  }
  return deltas;
}

/**
 * Per-example gradient norms [B] without materialising per-example gradients ("ghost norm"): the gradient of
 * W_l for example i is the outer product a_{l-1,i}ᵀ δ_{l,i}, whose squared Frobenius norm is
 * ||a_{l-1,i}||²·||δ_{l,i}||², and the bias gradient is δ_{l,i}. So ||g_i||² = Σ_l ||δ_{l,i}||²(||a_{l-1,i}||² + 1).
 * `inputSquaredNorms` may carry precomputed ||x_i||² for the batch (the data do not change between steps).
 */
export function perExampleGradientNorms(
  trace: ForwardTrace,
  deltas: readonly tf.Tensor2D[],
  inputSquaredNorms?: tf.Tensor1D,
): tf.Tensor1D {
  let total: tf.Tensor1D | null = null;
  for (const [l, delta] of deltas.entries()) {
    const aSq =
      l === 0 && inputSquaredNorms !== undefined
        ? inputSquaredNorms
        : tf.sum<tf.Tensor1D>(tf.square(trace.layerInputs[l]!), 1);
    const term = tf.mul<tf.Tensor1D>(tf.sum(tf.square(delta), 1), tf.add(aSq, 1));
    total = total === null ? term : tf.add<tf.Tensor1D>(total, term);
  }
  return tf.sqrt(total!);
}

/**
 * Clip factors min(1, C / (||g_i|| + 1e-6)) [B]; the 1e-6 guards the division and matches Opacus
 * (opacus/optimizers/optimizer.py, clip_and_accumulate), so a clipped gradient's norm is at most C.
 */
export function clipFactors(norms: tf.Tensor1D, clipNorm: number): tf.Tensor1D {
  return tf.minimum<tf.Tensor1D>(1, tf.div(clipNorm, tf.add(norms, 1e-6)));
}

/**
 * Σ_i w_i·g_i for every layer with one matmul per layer: kernel sum = a_{l-1}ᵀ (δ_l ⊙ w), bias sum = Σ_i w_i δ_{l,i}.
 * Without weights it is the plain sum of per-example gradients.
 */
export function weightedGradientSums(
  trace: ForwardTrace,
  deltas: readonly tf.Tensor2D[],
  exampleWeights?: tf.Tensor1D,
): DenseWeights {
  const column = exampleWeights === undefined ? undefined : tf.reshape(exampleWeights, [-1, 1]);
  const kernels: tf.Tensor2D[] = [];
  const biases: tf.Tensor1D[] = [];
  deltas.forEach((delta, l) => {
    const weighted = column === undefined ? delta : tf.mul<tf.Tensor2D>(delta, column);
    kernels.push(tf.matMul(tf.transpose(trace.layerInputs[l]!), weighted));
    biases.push(tf.sum<tf.Tensor1D>(weighted, 0));
  });
  return { kernels, biases };
}

/** Per-example norms, clip factors and the clipped sum, as DP-SGD computes them for one batch (for tests/diagnostics). */
export interface ClippedBatchGradients {
  readonly norms: Float32Array;
  readonly clipFactors: Float32Array;
  /** Σ_i clip_i · g_i in the flat parameter layout. */
  readonly clippedSum: Float32Array;
}

/** Targets tensor: [n, 1] of 0/1 for binary models, one-hot [n, k] otherwise. */
export function targetsTensor(labels: ArrayLike<number>, classes: number): tf.Tensor2D {
  if (classes === 1) return tf.tensor2d(Float32Array.from(labels), [labels.length, 1]);
  return tf.oneHot(tf.tensor1d(Int32Array.from(labels), 'int32'), classes).toFloat() as tf.Tensor2D;
}

/**
 * Per-example gradient norms, clip factors and clipped gradient sum of one batch (Abadi et al. 2016, Algorithm 1,
 * "clip gradient" step) computed with the ghost-norm trick. Exposed so tests can compare it with a naive loop.
 */
export function clippedBatchGradients(
  spec: ModelSpec,
  parameters: Float32Array,
  x: Float32Array,
  labels: ArrayLike<number>,
  clipNorm: number,
): ClippedBatchGradients {
  const layers = denseLayers(spec);
  const classes = layers[layers.length - 1]!.units;
  const n = labels.length;
  const weights = weightsFromFlat(spec, parameters);
  try {
    const result = tf.tidy(() => {
      const xb = tf.tensor2d(x, [n, spec.inputDim]);
      const targets = targetsTensor(labels, classes);
      const trace = forwardPass(layers, weights, xb);
      const deltas = backwardDeltas(layers, weights, trace, targets);
      const norms = perExampleGradientNorms(trace, deltas);
      const factors = clipFactors(norms, clipNorm);
      const sums = weightedGradientSums(trace, deltas, factors);
      return { norms, factors, sums };
    });
    const clippedSum = weightsToFlat(spec, result.sums);
    const out = {
      norms: result.norms.dataSync() as Float32Array,
      clipFactors: result.factors.dataSync() as Float32Array,
      clippedSum,
    };
    tf.dispose([result.norms, result.factors, ...result.sums.kernels, ...result.sums.biases]);
    return out;
  } finally {
    tf.dispose([...weights.kernels, ...weights.biases]);
  }
}
