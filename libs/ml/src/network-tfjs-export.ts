import { NETWORK_INPUT, sidesOf, type NetworkLayer, type NetworkSpec } from '@tessera/protocol';
import { assertNetworkParameters, compileNetwork, type CompiledNetwork } from './network-model';
import { morletKernel, SCATTERING_KERNEL } from './scattering';
import type { TfjsWeightSpec } from './tfjs-export';

/** The model.json of a functional tfjs layers model (tfjs-layers "layers-model" format, Keras functional topology). */
export interface NetworkTfjsModelJson {
  readonly format: 'layers-model';
  readonly generatedBy: string;
  readonly convertedBy: null;
  readonly modelTopology: {
    readonly class_name: 'Model';
    readonly config: {
      readonly name: string;
      readonly layers: KerasLayer[];
      readonly input_layers: [string, number, number][];
      readonly output_layers: [string, number, number][];
    };
    readonly keras_version: string;
    readonly backend: string;
  };
  readonly weightsManifest: { readonly paths: string[]; readonly weights: TfjsWeightSpec[] }[];
}

export interface NetworkTfjsExport {
  readonly modelJson: NetworkTfjsModelJson;
  /** Contents of the single shard 'weights.bin': float32 little-endian, manifest order. */
  readonly weightsBin: Uint8Array;
}

interface KerasLayer {
  readonly class_name: string;
  readonly name: string;
  readonly config: Record<string, unknown>;
  readonly inbound_nodes: [string, number, number, Record<string, never>][][];
}

/** Collects Keras layers and their weights in order. */
class TfjsGraphBuilder {
  readonly layers: KerasLayer[] = [];
  readonly weights: { spec: TfjsWeightSpec; values: Float32Array }[] = [];

  constructor(
    private readonly network: CompiledNetwork,
    private readonly parameters: Float32Array,
  ) {}

  layer(className: string, name: string, config: Record<string, unknown>, inputs: string[]): string {
    this.layers.push({
      class_name: className,
      name,
      config: { name, trainable: true, dtype: 'float32', ...config },
      inbound_nodes: inputs.length === 0 ? [] : [inputs.map((input) => [input, 0, 0, {}])],
    });
    return name;
  }

  weight(name: string, shape: readonly number[], values: Float32Array): void {
    this.weights.push({ spec: { name, shape: [...shape], dtype: 'float32' }, values });
  }

  /** The values and shape of a weight of the flat parameter vector. */
  entry(name: string): { values: Float32Array; shape: readonly number[] } {
    const entry = this.network.layout.entries[this.network.entryIndex.get(name)!]!;
    return { values: this.parameters.subarray(entry.offset, entry.offset + entry.length), shape: entry.shape };
  }

  /** Exports a weight of the flat parameter vector, under its own name (and shape) or others. */
  parameter(name: string, exportedName = name, shape?: readonly number[]): void {
    const entry = this.entry(name);
    this.weight(exportedName, shape ?? entry.shape, entry.values);
  }
}

/** A kernel [kh, kw, c, f] with dh − 1 (dw − 1) zero rows (columns) between its taps. */
function dilatedKernelValues(values: Float32Array, shape: readonly number[], dh: number, dw: number) {
  const [kh, kw, c, f] = shape as [number, number, number, number];
  const eh = (kh - 1) * dh + 1;
  const ew = (kw - 1) * dw + 1;
  const out = new Float32Array(eh * ew * c * f);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const from = (i * kw + j) * c * f;
      out.set(values.subarray(from, from + c * f), (i * dh * ew + j * dw) * c * f);
    }
  }
  return { values: out, shape: [eh, ew, c, f] };
}

function convLayer(b: TfjsGraphBuilder, layer: NetworkLayer & { kind: 'conv2d' }, input: string): string {
  const [dh, dw] = sidesOf(layer.dilation, 1);
  const [sh, sw] = sidesOf(layer.stride, 1);
  // tfjs refuses a stride and a dilation both above 1: such a layer is exported with its dilated kernel.
  const expand = (dh > 1 || dw > 1) && (sh > 1 || sw > 1);
  const entry = `${layer.id}/kernel`;
  let kernelSize = sidesOf(layer.kernel, 1);
  if (expand) {
    const { values, shape } = b.entry(entry);
    const dilated = dilatedKernelValues(values, shape, dh, dw);
    b.weight(entry, dilated.shape, dilated.values);
    kernelSize = [dilated.shape[0]!, dilated.shape[1]!];
  } else {
    b.parameter(entry);
  }
  if (layer.bias !== false) b.parameter(`${layer.id}/bias`);
  return b.layer(
    'Conv2D',
    layer.id,
    {
      filters: layer.filters,
      kernel_size: kernelSize,
      strides: [sh, sw],
      padding: layer.padding ?? 'valid',
      dilation_rate: expand ? [1, 1] : [dh, dw],
      data_format: 'channels_last',
      activation: layer.activation ?? 'linear',
      use_bias: layer.bias !== false,
    },
    [input],
  );
}

/**
 * Group norm from Keras layers: reshape to [positions, groups, channels/groups], LayerNormalization over axes 1 and 3
 * without its own scale and shift, reshape back, then the per-channel gamma and beta as a 1×1 depthwise convolution
 * (kernel gamma, bias beta). A vector is handled as a 1×1 image.
 */
function groupNormLayers(
  b: TfjsGraphBuilder,
  layer: NetworkLayer & { kind: 'groupNorm' },
  input: string,
  shape: readonly number[],
): string {
  const channels = shape[shape.length - 1]!;
  const positions = shape.length === 3 ? shape[0]! * shape[1]! : 1;
  const grouped = b.layer(
    'Reshape',
    `${layer.id}/grouped`,
    { target_shape: [positions, layer.groups, channels / layer.groups] },
    [input],
  );
  const standard = b.layer(
    'LayerNormalization',
    `${layer.id}/standard`,
    { axis: [1, 3], epsilon: layer.epsilon ?? 1e-5, center: false, scale: false },
    [grouped],
  );
  const image = b.layer(
    'Reshape',
    `${layer.id}/image`,
    { target_shape: shape.length === 3 ? [...shape] : [1, 1, channels] },
    [standard],
  );
  const affine = `${layer.id}/affine`;
  b.parameter(`${layer.id}/gamma`, `${affine}/depthwise_kernel`, [1, 1, channels, 1]);
  b.parameter(`${layer.id}/beta`, `${affine}/bias`);
  const scaled = b.layer(
    'DepthwiseConv2D',
    affine,
    { kernel_size: [1, 1], depth_multiplier: 1, use_bias: true, padding: 'valid' },
    [image],
  );
  return shape.length === 3 ? scaled : b.layer('Reshape', `${layer.id}/vector`, { target_shape: [channels] }, [scaled]);
}

/**
 * The scattering transform (scattering.ts) from Keras layers. tfjs-layers has no square root, so the modulus of each
 * filter's response z = re + i·im is composed: the bank gives (re, im, −re, −im) per angle, whose mean is 0 and whose
 * variance is |z|²/2; LayerNormalization over those four (ε = 1e-12) divides them by |z|/√2, Multiply by the four
 * again and a Dense of weights 1/(2√2) sums 2|z|²/(|z|/√2) to |z| (exact up to the ε, far below float32's 1e-7 for
 * any response above 1e-3). Low-pass steps and final averages are AveragePooling2D layers, joined by Concatenate.
 */
function scatteringLayers(
  b: TfjsGraphBuilder,
  layer: NetworkLayer & { kind: 'scattering' },
  input: string,
  shape: readonly number[],
): string {
  const L = layer.angles;
  const J = layer.scales;
  const K = SCATTERING_KERNEL;
  const single = morletKernel(L, 4); // [K, K, 1, 4L]
  let counter = 0;
  const modulus = (from: string, side: readonly [number, number], n: number): string => {
    const name = `${layer.id}/bank_${counter++}`;
    // DepthwiseConv2D kernel [K, K, n, 4L]: the same bank for every channel.
    const kernel = new Float32Array(K * K * n * 4 * L);
    for (let p = 0; p < K * K; p++) {
      for (let g = 0; g < n; g++) kernel.set(single.subarray(p * 4 * L, (p + 1) * 4 * L), (p * n + g) * 4 * L);
    }
    b.weight(`${name}/depthwise_kernel`, [K, K, n, 4 * L], kernel);
    const z = b.layer(
      'DepthwiseConv2D',
      name,
      { kernel_size: [K, K], depth_multiplier: 4 * L, use_bias: false, padding: 'same', trainable: false },
      [from],
    );
    const values = side[0] * side[1] * n * L;
    const quads = b.layer('Reshape', `${name}/quads`, { target_shape: [values, 4] }, [z]);
    const scaled = b.layer(
      'LayerNormalization',
      `${name}/scaled`,
      { axis: -1, epsilon: 1e-12, center: false, scale: false },
      [quads],
    );
    const products = b.layer('Multiply', `${name}/products`, {}, [scaled, quads]);
    b.weight(`${name}/sum/kernel`, [4, 1], new Float32Array(4).fill(1 / (2 * Math.SQRT2)));
    const summed = b.layer('Dense', `${name}/sum`, { units: 1, activation: 'linear', use_bias: false }, [products]);
    return b.layer('Reshape', `${name}/modulus`, { target_shape: [side[0], side[1], n * L] }, [summed]);
  };
  const pool = (from: string, window: number): string =>
    window === 1
      ? from
      : b.layer(
          'AveragePooling2D',
          `${layer.id}/pool_${counter++}`,
          { pool_size: [window, window], strides: [window, window], padding: 'valid' },
          [from],
        );
  const c = shape[2]!;
  const sideAt = (j: number): [number, number] => {
    let [h, w] = [shape[0]!, shape[1]!];
    for (let k = 0; k < j; k++) [h, w] = [Math.floor(h / 2), Math.floor(w / 2)];
    return [h, w];
  };
  const parts = [pool(input, 2 ** J)];
  const first: string[] = [];
  let xj = input;
  for (let j = 0; j < J; j++) {
    if (j > 0) xj = pool(xj, 2);
    const u = modulus(xj, sideAt(j), c);
    first.push(u);
    parts.push(pool(u, 2 ** (J - j)));
  }
  for (let j1 = 0; j1 < J; j1++) {
    let u = first[j1]!;
    for (let j2 = j1 + 1; j2 < J; j2++) {
      u = pool(u, 2);
      parts.push(pool(modulus(u, sideAt(j2), c * L), 2 ** (J - j2)));
    }
  }
  return b.layer('Concatenate', layer.id, { axis: -1 }, parts);
}

function kerasLayers(
  b: TfjsGraphBuilder,
  network: CompiledNetwork,
  index: number,
  inputs: string[],
  codes: ReadonlyMap<string, string>,
): string {
  const layer = network.spec.layers[index]!;
  const row = network.table.rows[index]!;
  const inputShape =
    row.inputs[0] === undefined || row.inputs[0] === NETWORK_INPUT
      ? network.table.inputShape
      : network.table.rows.find((r) => r.id === row.inputs[0])!.outputShape;
  switch (layer.kind) {
    case 'dense':
      b.parameter(`${layer.id}/kernel`);
      if (layer.bias !== false) b.parameter(`${layer.id}/bias`);
      return b.layer(
        'Dense',
        layer.id,
        { units: layer.units, activation: layer.activation ?? 'linear', use_bias: layer.bias !== false },
        inputs,
      );
    case 'conv2d':
      return convLayer(b, layer, inputs[0]!);
    case 'maxPool2d':
    case 'avgPool2d':
      return b.layer(
        layer.kind === 'maxPool2d' ? 'MaxPooling2D' : 'AveragePooling2D',
        layer.id,
        {
          pool_size: sidesOf(layer.size, 1),
          strides: sidesOf(layer.stride ?? layer.size, 1),
          padding: layer.padding ?? 'valid',
        },
        inputs,
      );
    case 'globalAvgPool2d':
      return b.layer('GlobalAveragePooling2D', layer.id, { data_format: 'channels_last' }, inputs);
    case 'flatten':
      return b.layer('Flatten', layer.id, {}, inputs);
    case 'dropout':
      return b.layer('Dropout', layer.id, { rate: layer.rate }, inputs);
    case 'layerNorm':
      b.parameter(`${layer.id}/gamma`);
      b.parameter(`${layer.id}/beta`);
      return b.layer(
        'LayerNormalization',
        layer.id,
        { axis: -1, epsilon: layer.epsilon ?? 1e-5, center: true, scale: true },
        inputs,
      );
    case 'groupNorm':
      return groupNormLayers(b, layer, inputs[0]!, inputShape);
    case 'activation':
      return b.layer('Activation', layer.id, { activation: layer.fn }, inputs);
    case 'add':
      return b.layer('Add', layer.id, {}, inputs);
    case 'concat':
      return b.layer('Concatenate', layer.id, { axis: -1 }, inputs);
    case 'scattering':
      return scatteringLayers(b, layer, inputs[0]!, inputShape);
    case 'embedding': {
      const levels = network.layout.entries[network.entryIndex.get(`${layer.id}/embeddings`)!]!.shape[0]!;
      b.parameter(`${layer.id}/embeddings`);
      const looked = b.layer('Embedding', layer.id, { input_dim: levels, output_dim: layer.dim }, [
        codes.get(layer.column)!,
      ]);
      return b.layer('Reshape', `${layer.id}/vector`, { target_shape: [layer.dim] }, [looked]);
    }
  }
}

/**
 * The graph's `input` from the data row 'features', and a [N, 1] code tensor per categorical column. The numeric part
 * and each code are selected by a bias-free Dense layer with a 0/1 kernel (exact: x·1 plus zeros), because tfjs-layers
 * has no slicing layer.
 */
function kerasInput(
  b: TfjsGraphBuilder,
  spec: NetworkSpec,
  rowLength: number,
): { input: string; codes: Map<string, string> } {
  const codes = new Map<string, string>();
  const source = spec.input;
  b.layer('InputLayer', 'features', { batch_input_shape: [null, rowLength], sparse: false }, []);
  if (source.kind === 'image') {
    return {
      input: b.layer('Reshape', 'input/image', { target_shape: [source.height, source.width, source.channels] }, [
        'features',
      ]),
      codes,
    };
  }
  const categorical = source.categorical ?? [];
  if (categorical.length === 0) return { input: 'features', codes };
  const select = (name: string, columns: number[]): string => {
    const kernel = new Float32Array(rowLength * columns.length);
    columns.forEach((column, k) => (kernel[column * columns.length + k] = 1));
    b.weight(`${name}/kernel`, [rowLength, columns.length], kernel);
    return b.layer('Dense', name, { units: columns.length, activation: 'linear', use_bias: false }, ['features']);
  };
  categorical.forEach((column, j) => codes.set(column.name, select(`input/code_${j}`, [source.features + j])));
  const numeric =
    source.features === 0
      ? 'features'
      : select(
          'input/numeric',
          Array.from({ length: source.features }, (_, i) => i),
        );
  return { input: numeric, codes };
}

/**
 * Exports a trained network as a TensorFlow.js layers model (model.json + one weights.bin shard; tfjs-layers
 * `LayersModel.save` format, Keras functional topology), so `tf.loadLayersModel` rebuilds it with no Tessera code.
 * Input 'features' [N, row length] (the data row); output P(y = 1), class probabilities or the value, like
 * predictNetwork. Layers tfjs-layers lacks are composed from those it has (group norm: Reshape, LayerNormalization,
 * 1×1 DepthwiseConv2D; column selection: 0/1 Dense kernels); a convolution with both a stride and a dilation above 1
 * gets its dilated kernel. Deterministic bytes.
 */
export function exportNetworkTfjs(spec: NetworkSpec, parameters: Float32Array): NetworkTfjsExport {
  const network = compileNetwork(spec);
  assertNetworkParameters(network, parameters);
  const b = new TfjsGraphBuilder(network, parameters);
  const { input, codes } = kerasInput(b, spec, network.table.rowLength);
  const values = new Map<string, string>([[NETWORK_INPUT, input]]);
  spec.layers.forEach((layer, index) => {
    const inputs = network.table.rows[index]!.inputs.map((name) => values.get(name)!);
    values.set(layer.id, kerasLayers(b, network, index, inputs, codes));
  });
  let output = values.get(spec.layers[spec.layers.length - 1]!.id)!;
  if (spec.task.kind !== 'regression') {
    output = b.layer('Activation', 'output', { activation: spec.task.kind === 'binary' ? 'sigmoid' : 'softmax' }, [
      output,
    ]);
  }
  const size = b.weights.reduce((n, w) => n + w.values.length, 0);
  const weightsBin = new Uint8Array(size * 4);
  const view = new DataView(weightsBin.buffer);
  let offset = 0;
  for (const w of b.weights) {
    w.values.forEach((v) => {
      view.setFloat32(offset, v, true);
      offset += 4;
    });
  }
  return {
    modelJson: {
      format: 'layers-model',
      generatedBy: '@tessera/ml',
      convertedBy: null,
      modelTopology: {
        class_name: 'Model',
        config: {
          name: 'tessera-network',
          layers: b.layers,
          input_layers: [['features', 0, 0]],
          output_layers: [[output, 0, 0]],
        },
        keras_version: 'tfjs-layers 4.22.0',
        backend: 'tensor_flow.js',
      },
      weightsManifest: [{ paths: ['weights.bin'], weights: b.weights.map((w) => w.spec) }],
    },
    weightsBin,
  };
}
