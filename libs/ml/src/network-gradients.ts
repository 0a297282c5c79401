import * as tf from '@tensorflow/tfjs';
import {
  convFilterSquaredNorms,
  convNormMethod,
  patchRowsToKernel,
  perExampleFilterGradients,
  unfoldPatches,
  type ConvGeometry,
} from './conv-ops';
import {
  convGeometryOf,
  forwardNetwork,
  parametricLayers,
  type LayerRecord,
  type NetworkWeights,
} from './network-forward';
import type { NetworkRows } from './network-fixed-features';
import { perExampleTaskLoss } from './network-loss';
import { layerRow, type CompiledNetwork } from './network-model';

/**
 * Gradients of a batch for plain SGD and for DP-SGD.
 *
 * DP-SGD (Abadi et al. 2016) needs each example's gradient norm ||g_i|| to clip it to C, and then Σ_i c_i·g_i with
 * c_i = min(1, C/||g_i||). One backward pass per example would cost B passes. Instead: one forward pass that records
 * each parametric layer's input, one backward pass to zero "probes" added to every parametric layer's output, which
 * yields δ_l = ∂loss_i/∂z_l for every example at once (no layer mixes examples, so row i of δ_l depends on example i
 * only), and then per layer kind a closed form of ||g_{i,l}||² and of Σ_i c_i·g_{i,l} from (input, δ) alone:
 *
 * - dense, z = aW + b: g_W = a_iᵀδ_i, so ||g_W||² = ||a_i||²·||δ_i||² and ||g_b||² = ||δ_i||² (Goodfellow 2015);
 *   Σ c_i g_W = aᵀ(c ⊙ δ).
 * - conv2d: g_W = U_iᵀδ_i with U_i the unfolded patches; its norm by materialising it or by the ghost form over
 *   positions, whichever is cheaper (conv-ops convNormMethod; Bu et al. 2022); g_b = Σ_p δ_{i,p}.
 * - groupNorm/layerNorm, y = x̂·γ + β: g_γ = Σ_p x̂_{i,p} ⊙ δ_{i,p} and g_β = Σ_p δ_{i,p} per channel, materialised
 *   ([B, C], small).
 * - embedding, y = T[k_i]: g_T is δ_i in row k_i and zero elsewhere, so ||g_T||² = ||δ_i||²; Σ c_i g_T scatters
 *   c_i·δ_i into the rows k_i.
 *
 * The weight gradients themselves are never computed by autodiff under DP ("book-keeping", Bu et al. 2023): the
 * backward pass stops at the δ's, and the clipped sums come from the same per-layer terms.
 */

/**
 * Σ over the batch of per-example gradients (layout order) and of per-example losses. `rows`: what x holds (see
 * ForwardOptions.rows). Call inside tf.tidy.
 */
export function gradientSum(
  network: CompiledNetwork,
  weights: NetworkWeights,
  x: tf.Tensor2D,
  targets: tf.Tensor2D,
  dropoutMasks?: ReadonlyMap<string, tf.Tensor>,
  rows: NetworkRows = 'input',
): { sums: tf.Tensor[]; lossSum: tf.Scalar } {
  const loss = (...ws: tf.Tensor[]): tf.Scalar => {
    const output = forwardNetwork(network, ws, x, {
      target: 'parameters',
      rows,
      ...(dropoutMasks ? { dropoutMasks } : {}),
    });
    return tf.sum(perExampleTaskLoss(output, targets, network.task));
  };
  const { value, grads } = tf.valueAndGrads(loss)([...weights]);
  return { sums: grads, lossSum: value };
}

/** One batch's DP-SGD gradient terms. */
export interface ClippedGradientSum {
  /** ||g_i|| [B]. */
  readonly norms: tf.Tensor1D;
  /** c_i = min(1, C/(||g_i|| + 1e-6)) [B]. */
  readonly factors: tf.Tensor1D;
  /** Σ_i c_i·g_i per layout entry. */
  readonly sums: tf.Tensor[];
  readonly lossSum: tf.Scalar;
}

/** The per-example terms of one parametric layer: squared norms now, the clipped sum once the factors are known. */
interface LayerTerms {
  readonly squaredNorms: tf.Tensor1D;
  readonly clippedSums: (factors: tf.Tensor1D) => tf.Tensor[];
}

/**
 * Per-example gradient norms, clip factors and Σ_i c_i·g_i of one batch (Abadi et al. 2016, Algorithm 1, "clip
 * gradient") without one backward pass per example (see the file comment). `clipNorm` is the clipping target actually
 * applied (trainNetwork passes a slightly smaller one: networkClipTarget). `rows`: what x holds (ForwardOptions.rows);
 * with fixed features the per-example gradients are those of the same parameters, since the fixed front has none.
 * Call inside tf.tidy.
 */
export function clippedGradientSum(
  network: CompiledNetwork,
  weights: NetworkWeights,
  x: tf.Tensor2D,
  targets: tf.Tensor2D,
  clipNorm: number,
  dropoutMasks?: ReadonlyMap<string, tf.Tensor>,
  rows: NetworkRows = 'input',
): ClippedGradientSum {
  const batch = x.shape[0];
  const layers = parametricLayers(network);
  const probes = layers.map((layer) => tf.zeros([batch, ...layerRow(network, layer.id).outputShape]));
  const records: LayerRecord[] = [];
  const loss = (...ps: tf.Tensor[]): tf.Scalar => {
    records.length = 0;
    const output = forwardNetwork(network, weights, x, {
      target: 'probes',
      probes: new Map(layers.map((layer, i) => [layer.id, ps[i]!])),
      records,
      rows,
      ...(dropoutMasks ? { dropoutMasks } : {}),
    });
    return tf.sum(perExampleTaskLoss(output, targets, network.task));
  };
  try {
    const { value, grads: deltas } = tf.valueAndGrads(loss)(probes);
    const terms = records.map((record, i) => layerTerms(network, record, deltas[i]!));
    const total = terms.reduce<tf.Tensor1D>((sum, t) => tf.add(sum, t.squaredNorms), tf.zeros([batch]));
    // The ghost form sums terms of both signs: rounding can leave a tiny negative total, whose root is 0.
    const norms = tf.sqrt(tf.relu(total));
    const factors = tf.minimum<tf.Tensor1D>(1, tf.div(clipNorm, tf.add(norms, 1e-6)));
    const sums = terms.flatMap((t) => t.clippedSums(factors));
    return { norms, factors, sums, lossSum: value };
  } finally {
    tf.dispose(records.map((r) => r.saved));
  }
}

/** Σ_i c_i·t_i for per-example terms t [B, ...]: one [1, B]·[B, m] matmul, reshaped to `shape`. */
function weightedSum(factors: tf.Tensor1D, terms: tf.Tensor, shape: readonly number[]): tf.Tensor {
  const batch = terms.shape[0];
  return tf.reshape(tf.matMul(tf.reshape(factors, [1, batch]), tf.reshape(terms, [batch, -1])), [...shape]);
}

/** (c ⊙ δ) with c broadcast along δ's non-batch axes. */
function scaleRows(delta: tf.Tensor, factors: tf.Tensor1D): tf.Tensor {
  return tf.mul(delta, tf.reshape(factors, [-1, ...delta.shape.slice(1).map(() => 1)]));
}

function rowSquares(t: tf.Tensor): tf.Tensor1D {
  return tf.sum<tf.Tensor1D>(tf.square(tf.reshape(t, [t.shape[0], -1])), 1);
}

function layerTerms(network: CompiledNetwork, record: LayerRecord, delta: tf.Tensor): LayerTerms {
  const index = network.spec.layers.findIndex((l) => l.id === record.id);
  const weights = network.table.rows[index]!.weights;
  switch (record.kind) {
    case 'dense':
      return denseTerms(record.saved as tf.Tensor2D, delta as tf.Tensor2D, record.hasBias);
    case 'conv2d':
      return convTerms(
        record.saved as tf.Tensor4D,
        delta as tf.Tensor4D,
        convGeometryOf(network, index),
        record.hasBias,
      );
    case 'groupNorm':
    case 'layerNorm':
      return normTerms(record.saved, delta);
    case 'embedding':
      return embeddingTerms(record.saved as tf.Tensor1D, delta as tf.Tensor2D, weights[0]!.shape);
  }
}

function denseTerms(a: tf.Tensor2D, delta: tf.Tensor2D, hasBias: boolean): LayerTerms {
  const deltaSquares = rowSquares(delta);
  const inputSquares = hasBias ? tf.add(rowSquares(a), 1) : rowSquares(a);
  return {
    squaredNorms: tf.mul<tf.Tensor1D>(deltaSquares, inputSquares),
    clippedSums: (factors) => {
      const scaled = scaleRows(delta, factors) as tf.Tensor2D;
      const kernel = tf.matMul(tf.transpose(a), scaled);
      return hasBias ? [kernel, tf.sum(scaled, 0)] : [kernel];
    },
  };
}

function convTerms(a: tf.Tensor4D, delta: tf.Tensor4D, g: ConvGeometry, hasBias: boolean): LayerTerms {
  const batch = a.shape[0];
  const p = g.rows.out * g.cols.out;
  const patches = unfoldPatches(a, g);
  const deltas = tf.reshape<tf.Rank.R3>(delta, [batch, p, g.filters]);
  const biasGradients = hasBias ? tf.sum<tf.Tensor2D>(deltas, 1) : null;
  const method = convNormMethod(g);
  const perExample = method === 'materialise' ? perExampleFilterGradients(patches, deltas) : null;
  let squaredNorms = perExample !== null ? rowSquares(perExample) : convFilterSquaredNorms(patches, deltas, 'ghost');
  if (biasGradients !== null) squaredNorms = tf.add(squaredNorms, rowSquares(biasGradients));
  return {
    squaredNorms,
    clippedSums: (factors) => {
      let kernel: tf.Tensor;
      const k = patches.shape[2];
      if (perExample !== null) {
        kernel = patchRowsToKernel(weightedSum(factors, perExample, [k, g.filters]), g);
      } else {
        const flatPatches = tf.reshape(patches, [batch * p, k]);
        const scaled = tf.reshape(scaleRows(deltas, factors), [batch * p, g.filters]);
        kernel = patchRowsToKernel(tf.matMul(tf.transpose(flatPatches), scaled), g);
      }
      return biasGradients === null ? [kernel] : [kernel, weightedSum(factors, biasGradients, [g.filters])];
    },
  };
}

function normTerms(normalised: tf.Tensor, delta: tf.Tensor): LayerTerms {
  const batch = delta.shape[0];
  const channels = delta.shape[delta.shape.length - 1]!;
  const d = tf.reshape(delta, [batch, -1, channels]);
  const gamma = tf.sum(tf.mul(tf.reshape(normalised, [batch, -1, channels]), d), 1);
  const beta = tf.sum(d, 1);
  return {
    squaredNorms: tf.add<tf.Tensor1D>(rowSquares(gamma), rowSquares(beta)),
    clippedSums: (factors) => [weightedSum(factors, gamma, [channels]), weightedSum(factors, beta, [channels])],
  };
}

function embeddingTerms(codes: tf.Tensor1D, delta: tf.Tensor2D, tableShape: readonly number[]): LayerTerms {
  return {
    squaredNorms: rowSquares(delta),
    clippedSums: (factors) => [
      tf.scatterND(tf.reshape(codes, [-1, 1]), scaleRows(delta, factors), [tableShape[0]!, tableShape[1]!]),
    ],
  };
}
