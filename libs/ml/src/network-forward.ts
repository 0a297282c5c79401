import * as tf from '@tensorflow/tfjs';
import { NETWORK_INPUT, type ActivationFunction, type NetworkLayer } from '@tessera/protocol';
import { convGeometry, convolve, differentiableConvolution, maxPoolWithGradient, type ConvGeometry } from './conv-ops';
import { requireFixedFront, type NetworkRows } from './network-fixed-features';
import { layerRow, type CompiledNetwork } from './network-model';
import { scatteringTransform } from './scattering';

/**
 * The forward pass of a declarative network in tfjs ops (a functional graph, not tfjs-layers): layers in spec order,
 * each reading the outputs of its inputs. Every op acts on each example alone — no layer mixes the examples of a
 * batch — which is what lets DP-SGD read per-example gradients off one batched backward pass.
 */

/** The network's tensors in layout order (see CompiledNetwork). */
export type NetworkWeights = readonly tf.Tensor[];

/**
 * What the backward pass will differentiate. 'none': inference. 'parameters': the weights (plain SGD; convolution and
 * embedding use the custom gradients of conv-ops and lookup below). 'probes': only the probes — zero tensors added to
 * the output of every parametric layer — whose gradients are the per-example output gradients δ DP-SGD needs; no
 * weight gradient is computed in that pass.
 */
export type GradientTarget = 'none' | 'parameters' | 'probes';

/** Layers with parameters, whose per-example gradients DP-SGD bounds. */
export type ParametricKind = 'dense' | 'conv2d' | 'groupNorm' | 'layerNorm' | 'embedding';

/** What the per-example norms of one parametric layer need from the forward pass (kept: the caller disposes). */
export interface LayerRecord {
  readonly id: string;
  readonly kind: ParametricKind;
  /**
   * dense: its input [B, in]; conv2d: its input [B, H, W, C]; groupNorm/layerNorm: the normalised input x̂, same shape
   * as the output; embedding: the codes, int32 [B].
   */
  readonly saved: tf.Tensor;
  readonly hasBias: boolean;
}

export interface ForwardOptions {
  readonly target: GradientTarget;
  /** Training: dropout applies the masks (inverted dropout). Predicting: dropout is the identity. */
  readonly dropoutMasks?: ReadonlyMap<string, tf.Tensor>;
  /** target 'probes': a zero tensor [B, ...output shape] per parametric layer id. */
  readonly probes?: ReadonlyMap<string, tf.Tensor>;
  /**
   * When given, one LayerRecord per parametric layer is pushed here; its tensor is a kept clone (it survives any tidy,
   * and disposing it never disposes the caller's data), which the caller disposes.
   */
  readonly records?: LayerRecord[];
  /**
   * 'fixed-features': x holds the outputs of the network's fixed front (network-fixed-features.ts), computed once per
   * example, and the pass starts after it. Absent or 'input': x holds the network's input rows.
   */
  readonly rows?: NetworkRows;
}

const PARAMETRIC = new Set<NetworkLayer['kind']>(['dense', 'conv2d', 'groupNorm', 'layerNorm', 'embedding']);

/** Ids of the layers with parameters, in spec order. */
export function parametricLayers(network: CompiledNetwork): NetworkLayer[] {
  return network.spec.layers.filter((l) => PARAMETRIC.has(l.kind));
}

/** Dropout masks for one step: 1/(1 − rate) with probability 1 − rate, else 0, per element of every example. */
export function dropoutMasks(network: CompiledNetwork, batch: number, seed: number): Map<string, tf.Tensor> {
  const masks = new Map<string, tf.Tensor>();
  network.spec.layers.forEach((layer, i) => {
    if (layer.kind !== 'dropout' || layer.rate === 0) return;
    const shape = [batch, ...layerRow(network, layer.id).outputShape];
    const keep = 1 - layer.rate;
    masks.set(
      layer.id,
      tf.tidy(() =>
        tf.mul(tf.cast(tf.less(tf.randomUniform(shape, 0, 1, 'float32', seed * 131 + i), keep), 'float32'), 1 / keep),
      ),
    );
  });
  return masks;
}

/** x·Φ(x) with Φ the standard normal CDF through erf: the exact gelu (ONNX exports the same formula). */
export function activate(x: tf.Tensor, fn: ActivationFunction): tf.Tensor {
  switch (fn) {
    case 'relu':
      return tf.relu(x);
    case 'tanh':
      return tf.tanh(x);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'gelu':
      return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))));
  }
}

/**
 * Group or layer normalisation of each example with its own statistics: x̂ = (x − μ)/√(σ² + ε) over the values of a
 * group (group norm: the group's channels at every position; layer norm: the channels of one position). Biased
 * variance, as in the papers and in ONNX's and PyTorch's implementations.
 */
export function normalise(x: tf.Tensor, groups: number | null, epsilon: number): tf.Tensor {
  return tf.tidy(() => {
    const channels = x.shape[x.shape.length - 1]!;
    if (groups === null) {
      const { mean, variance } = tf.moments(x, -1, true);
      return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon)));
    }
    const batch = x.shape[0];
    const grouped = tf.reshape(x, [batch, -1, groups, channels / groups]);
    const { mean, variance } = tf.moments(grouped, [1, 3], true);
    return tf.reshape(tf.mul(tf.sub(grouped, mean), tf.rsqrt(tf.add(variance, epsilon))), x.shape);
  });
}

/**
 * a·W as a differentiable op whose gradients use explicit transposes — dA = δ·transpose(W), dW = transpose(a)·δ —
 * because tfjs's own MatMul gradient uses transposed matrix products, which tfjs-wasm runs several times slower. The
 * weight gradient is skipped (zeros) when DP-SGD computes it from the per-example terms instead.
 */
function differentiableMatMul(needs: {
  input: boolean;
  weight: boolean;
}): (a: tf.Tensor2D, w: tf.Tensor2D) => tf.Tensor2D {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const a = args[0] as tf.Tensor2D;
    const w = args[1] as tf.Tensor2D;
    (args[2] as tf.GradSaveFunc)([a, w]);
    return {
      value: tf.matMul(a, w),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [sa, sw] = saved as [tf.Tensor2D, tf.Tensor2D];
        const da = needs.input ? tf.matMul(dy, tf.transpose(sw)) : tf.zerosLike(sa);
        const dw = needs.weight ? tf.matMul(tf.transpose(sa), dy) : tf.zerosLike(sw);
        return [da, dw];
      },
    };
  });
  return (a, w) => op(a, w) as tf.Tensor2D;
}

/** Embedding lookup whose table gradient scatters dy into the looked-up rows (tf.gather's own needs a kernel wasm lacks). */
function differentiableLookup(codes: tf.Tensor1D, levels: number): (table: tf.Tensor) => tf.Tensor {
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const table = args[0] as tf.Tensor2D;
    (args[1] as tf.GradSaveFunc)([codes]);
    return {
      value: tf.gather(table, codes),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
        tf.scatterND(tf.reshape(saved[0]!, [-1, 1]), dy, [levels, dy.shape[1]!]),
      ],
    };
  });
  return (table) => op(table);
}

/** The `input` node of the graph and the categorical codes of a batch of data rows [B, rowLength]. */
function graphInputs(network: CompiledNetwork, x: tf.Tensor2D): { input: tf.Tensor; codes: Map<string, tf.Tensor1D> } {
  const spec = network.spec.input;
  const batch = x.shape[0];
  const codes = new Map<string, tf.Tensor1D>();
  if (spec.kind === 'image') return { input: tf.reshape(x, [batch, spec.height, spec.width, spec.channels]), codes };
  const categorical = spec.categorical ?? [];
  categorical.forEach((column, j) => {
    codes.set(column.name, tf.cast(tf.reshape(tf.slice(x, [0, spec.features + j], [batch, 1]), [batch]), 'int32'));
  });
  const input = categorical.length === 0 ? x : tf.slice(x, [0, 0], [batch, spec.features]);
  return { input, codes };
}

/**
 * Runs the network on a batch of data rows x [B, rowLength] and returns its output [B, outputs]: logits (binary,
 * multiclass) or predicted values (regression). Call inside tf.tidy (or tf.grads).
 */
export function forwardNetwork(
  network: CompiledNetwork,
  weights: NetworkWeights,
  x: tf.Tensor2D,
  options: ForwardOptions,
): tf.Tensor2D {
  const front = options.rows === 'fixed-features' ? requireFixedFront(network) : null;
  const values = new Map<string, tf.Tensor>();
  let codes = new Map<string, tf.Tensor1D>();
  if (front === null) {
    const graph = graphInputs(network, x);
    values.set(NETWORK_INPUT, graph.input);
    codes = graph.codes;
  } else {
    values.set(front.layerId, tf.reshape(x, [x.shape[0], ...front.outputShape]));
  }
  const weight = (name: string): tf.Tensor => weights[network.entryIndex.get(name)!]!;
  network.spec.layers.forEach((layer, index) => {
    if (front !== null && index < front.layerCount) return;
    const row = network.table.rows[index]!;
    const inputs = row.inputs.map((name) => values.get(name)!);
    const record = (saved: tf.Tensor, hasBias: boolean) =>
      options.records?.push({
        id: layer.id,
        kind: layer.kind as ParametricKind,
        saved: tf.keep(tf.clone(saved)),
        hasBias,
      });
    const probe = (z: tf.Tensor) => {
      const p = options.probes?.get(layer.id);
      return p === undefined ? z : tf.add(z, p);
    };
    let out: tf.Tensor;
    switch (layer.kind) {
      case 'dense': {
        const a = inputs[0] as tf.Tensor2D;
        record(a, layer.bias !== false);
        const kernel = weight(`${layer.id}/kernel`) as tf.Tensor2D;
        let z: tf.Tensor =
          options.target === 'none'
            ? tf.matMul(a, kernel)
            : differentiableMatMul({
                input: row.inputs[0] !== NETWORK_INPUT,
                weight: options.target === 'parameters',
              })(a, kernel);
        if (layer.bias !== false) z = tf.add(z, weight(`${layer.id}/bias`));
        z = probe(z);
        out = layer.activation === undefined ? z : activate(z, layer.activation);
        break;
      }
      case 'conv2d': {
        const a = inputs[0] as tf.Tensor4D;
        record(a, layer.bias !== false);
        const g = convGeometryOf(network, index);
        const kernel = weight(`${layer.id}/kernel`) as tf.Tensor4D;
        let z: tf.Tensor =
          options.target === 'none'
            ? convolve(a, kernel, g)
            : differentiableConvolution(g, {
                input: row.inputs[0] !== NETWORK_INPUT,
                filter: options.target === 'parameters',
              })(a, kernel);
        if (layer.bias !== false) z = tf.add(z, weight(`${layer.id}/bias`));
        z = probe(z);
        out = layer.activation === undefined ? z : activate(z, layer.activation);
        break;
      }
      case 'maxPool2d':
      case 'avgPool2d': {
        const size = pair(layer.size);
        const stride = layer.stride === undefined ? size : pair(layer.stride);
        const a = inputs[0] as tf.Tensor4D;
        if (layer.kind === 'avgPool2d') out = tf.avgPool(a, size, stride, layer.padding ?? 'valid');
        else if (options.target === 'none') out = tf.maxPool(a, size, stride, layer.padding ?? 'valid');
        else out = maxPoolWithGradient(a, poolGeometryOf(network, index));
        break;
      }
      case 'globalAvgPool2d':
        out = tf.mean(inputs[0]!, [1, 2]);
        break;
      case 'flatten':
        out = tf.reshape(inputs[0]!, [inputs[0]!.shape[0], -1]);
        break;
      case 'dropout': {
        const mask = options.dropoutMasks?.get(layer.id);
        out = mask === undefined ? inputs[0]! : tf.mul(inputs[0]!, mask);
        break;
      }
      case 'groupNorm':
      case 'layerNorm': {
        const xhat = normalise(inputs[0]!, layer.kind === 'groupNorm' ? layer.groups : null, layer.epsilon ?? 1e-5);
        record(xhat, true);
        out = probe(tf.add(tf.mul(xhat, weight(`${layer.id}/gamma`)), weight(`${layer.id}/beta`)));
        break;
      }
      case 'activation':
        out = activate(inputs[0]!, layer.fn);
        break;
      case 'add':
        out = inputs.length === 2 ? tf.add(inputs[0]!, inputs[1]!) : tf.addN(inputs);
        break;
      case 'concat':
        out = tf.concat(inputs, -1);
        break;
      case 'scattering':
        // Fixed filters, no parameters, fed by the input alone: no probe and nothing to differentiate.
        out = scatteringTransform(inputs[0] as tf.Tensor4D, layer.scales, layer.angles);
        break;
      case 'embedding': {
        const columnCodes = codes.get(layer.column)!;
        record(columnCodes, false);
        const table = weight(`${layer.id}/embeddings`);
        const looked =
          options.target === 'parameters'
            ? differentiableLookup(columnCodes, table.shape[0])(table)
            : tf.gather(table, columnCodes);
        out = probe(looked);
        break;
      }
    }
    values.set(layer.id, out);
  });
  return values.get(network.spec.layers[network.spec.layers.length - 1]!.id) as tf.Tensor2D;
}

function pair(value: number | readonly [number, number]): [number, number] {
  return typeof value === 'number' ? [value, value] : [value[0], value[1]];
}

const geometries = new WeakMap<CompiledNetwork, Map<number, ConvGeometry>>();

/** The window geometry of the conv2d or pooling layer at `index` (cached per network). */
function windowGeometryOf(network: CompiledNetwork, index: number): ConvGeometry {
  let cache = geometries.get(network);
  if (cache === undefined) {
    cache = new Map();
    geometries.set(network, cache);
  }
  let g = cache.get(index);
  if (g === undefined) {
    const layer = network.spec.layers[index]!;
    const inputName = network.table.rows[index]!.inputs[0]!;
    const inputShape =
      inputName === NETWORK_INPUT ? network.table.inputShape : layerRow(network, inputName).outputShape;
    if (layer.kind === 'conv2d') {
      g = convGeometry(layer, inputShape);
    } else if (layer.kind === 'maxPool2d' || layer.kind === 'avgPool2d') {
      const channels = inputShape[2]!;
      const window = {
        kernel: layer.size,
        stride: layer.stride ?? layer.size,
        padding: layer.padding,
        filters: channels,
      };
      g = convGeometry(window, inputShape);
    } else {
      throw new Error(`layer "${layer.id}" has no window`);
    }
    cache.set(index, g);
  }
  return g;
}

/** The geometry of the conv2d layer at `index`. */
export function convGeometryOf(network: CompiledNetwork, index: number): ConvGeometry {
  if (network.spec.layers[index]!.kind !== 'conv2d') throw new Error('not a convolution');
  return windowGeometryOf(network, index);
}

/** The window geometry of the pooling layer at `index` (filters = channels). */
export function poolGeometryOf(network: CompiledNetwork, index: number): ConvGeometry {
  return windowGeometryOf(network, index);
}
