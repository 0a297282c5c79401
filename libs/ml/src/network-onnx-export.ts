import { NETWORK_INPUT, type NetworkLayer, type NetworkSpec } from '@tessera/protocol';
import { onnx } from 'onnx-proto';
import { convGeometryOf, poolGeometryOf } from './network-forward';
import { assertNetworkParameters, compileNetwork, type CompiledNetwork } from './network-model';
import { morletKernel, SCATTERING_KERNEL } from './scattering';

/** Opset 13: Softmax over the last axis, Slice/Squeeze with tensor inputs, ReduceMean with an `axes` attribute. */
const OPSET = 13;
const IR_VERSION = 7;

/** A value of the graph: its name, and whether it is an image (kept NCHW in ONNX, NHWC in the network) or a vector. */
interface GraphValue {
  readonly name: string;
  readonly image: boolean;
}

/**
 * Builds the ONNX graph of a network node by node. Images run channels-first (ONNX's Conv and pooling layout): the
 * input is reshaped to [N, H, W, C] and transposed once to [N, C, H, W]; flatten transposes back so that its order is
 * the network's (height, width, channel) and the dense weights apply unchanged.
 */
class OnnxGraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly initializers: onnx.ITensorProto[] = [];
  private counter = 0;

  constructor(
    private readonly network: CompiledNetwork,
    private readonly parameters: Float32Array,
  ) {}

  node(opType: string, inputs: string[], attributes: onnx.IAttributeProto[] = [], output?: string): string {
    const name = output ?? `${opType.toLowerCase()}_${this.counter++}`;
    this.nodes.push({ opType, name, input: inputs, output: [name], attribute: attributes });
    return name;
  }

  floats(name: string, dims: readonly number[], values: Float32Array): string {
    const raw = new Uint8Array(values.length * 4);
    const view = new DataView(raw.buffer);
    values.forEach((v, i) => view.setFloat32(i * 4, v, true));
    this.initializers.push({ name, dims: [...dims], dataType: onnx.TensorProto.DataType.FLOAT, rawData: raw });
    return name;
  }

  int64s(name: string, values: readonly number[]): string {
    const raw = new Uint8Array(values.length * 8);
    const view = new DataView(raw.buffer);
    values.forEach((v, i) => view.setBigInt64(i * 8, BigInt(v), true));
    this.initializers.push({ name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: raw });
    return name;
  }

  scalar(name: string, value: number): string {
    return this.floats(name, [], Float32Array.of(value));
  }

  /** A weight of the flat vector as an initializer, optionally permuted (row-major, `perm` as in numpy.transpose). */
  weight(name: string, dims?: readonly number[], perm?: readonly number[]): string {
    const entry = this.network.layout.entries[this.network.entryIndex.get(name)!]!;
    const values = this.parameters.subarray(entry.offset, entry.offset + entry.length);
    if (perm === undefined) return this.floats(name, dims ?? entry.shape, values);
    const { shape, data } = permute(values, entry.shape, perm);
    return this.floats(name, shape, data);
  }
}

/** Row-major transpose of a dense array. */
function permute(values: Float32Array, shape: readonly number[], perm: readonly number[]) {
  const outShape = perm.map((p) => shape[p]!);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const data = new Float32Array(values.length);
  const index = new Array<number>(shape.length).fill(0);
  for (let k = 0; k < values.length; k++) {
    // index: the output coordinate; its source is Σ index[j]·strides[perm[j]].
    let source = 0;
    for (let j = 0; j < perm.length; j++) source += index[j]! * strides[perm[j]!]!;
    data[k] = values[source]!;
    for (let j = outShape.length - 1; j >= 0; j--) {
      index[j]!++;
      if (index[j]! < outShape[j]!) break;
      index[j] = 0;
    }
  }
  return { shape: outShape, data };
}

const ints = (name: string, values: readonly number[]): onnx.IAttributeProto => ({
  name,
  ints: [...values],
  type: onnx.AttributeProto.AttributeType.INTS,
});
const int = (name: string, value: number): onnx.IAttributeProto => ({
  name,
  i: value,
  type: onnx.AttributeProto.AttributeType.INT,
});

function activation(b: OnnxGraphBuilder, input: string, fn: 'relu' | 'gelu' | 'tanh' | 'sigmoid'): string {
  switch (fn) {
    case 'relu':
      return b.node('Relu', [input]);
    case 'tanh':
      return b.node('Tanh', [input]);
    case 'sigmoid':
      return b.node('Sigmoid', [input]);
    case 'gelu': {
      // x·Φ(x) = 0.5·x·(1 + erf(x/√2)), the formula of the tfjs forward pass.
      const erf = b.node('Erf', [b.node('Mul', [input, b.scalar(`gelu_c_${b.nodes.length}`, Math.SQRT1_2)])]);
      const onePlus = b.node('Add', [erf, b.scalar(`gelu_one_${b.nodes.length}`, 1)]);
      return b.node('Mul', [b.node('Mul', [input, onePlus]), b.scalar(`gelu_half_${b.nodes.length}`, 0.5)]);
    }
  }
}

/** (x − mean)/√(var + ε) over the last axis of a [N, groups, size] or [N, C(, ...)] value, per `axes`. */
function standardise(b: OnnxGraphBuilder, x: string, axes: number[], epsilon: number, id: string): string {
  const mean = b.node('ReduceMean', [x], [ints('axes', axes), int('keepdims', 1)]);
  const centred = b.node('Sub', [x, mean]);
  const variance = b.node('ReduceMean', [b.node('Mul', [centred, centred])], [ints('axes', axes), int('keepdims', 1)]);
  const scale = b.node('Sqrt', [b.node('Add', [variance, b.scalar(`${id}/epsilon`, epsilon)])]);
  return b.node('Div', [centred, scale]);
}

function normalisation(
  b: OnnxGraphBuilder,
  layer: NetworkLayer & { kind: 'groupNorm' | 'layerNorm' },
  x: GraphValue,
  shape: readonly number[],
): string {
  const channels = shape[shape.length - 1]!;
  const epsilon = layer.epsilon ?? 1e-5;
  let normalised: string;
  if (layer.kind === 'layerNorm') {
    normalised = standardise(b, x.name, [1], epsilon, layer.id); // channels: axis 1 of [N, C] and of [N, C, H, W]
  } else {
    const grouped = b.node('Reshape', [x.name, b.int64s(`${layer.id}/grouped`, [0, layer.groups, -1])]);
    const standard = standardise(b, grouped, [2], epsilon, layer.id);
    const back = x.image ? [0, channels, shape[0]!, shape[1]!] : [0, channels];
    normalised = b.node('Reshape', [standard, b.int64s(`${layer.id}/shape`, back)]);
  }
  const affine = x.image ? [channels, 1, 1] : [channels];
  const scaled = b.node('Mul', [normalised, b.weight(`${layer.id}/gamma`, affine)]);
  return b.node('Add', [scaled, b.weight(`${layer.id}/beta`, affine)]);
}

/** ONNX pads [top, left, bottom, right] of a window op. */
function padsOf(g: ReturnType<typeof convGeometryOf>): number[] {
  return [g.rows.padBefore, g.cols.padBefore, g.rows.padAfter, g.cols.padAfter];
}

/**
 * The scattering transform (scattering.ts) with constant weights: each filter bank is a grouped Conv (one group per
 * channel, 2L outputs: real and imaginary parts), the modulus √(re² + im²) a Mul, a grouped 1×1 Conv of ones (the sum
 * of each pair) and Sqrt; the low-pass steps are 2×2 AveragePools, the final averages AveragePools, joined by Concat.
 */
function scatteringNodes(
  b: OnnxGraphBuilder,
  layer: NetworkLayer & { kind: 'scattering' },
  x: GraphValue,
  channels: number,
): string {
  const L = layer.angles;
  const J = layer.scales;
  const K = SCATTERING_KERNEL;
  const half = (K - 1) / 2;
  // [K, K, 1, 2L] row-major → the ONNX weight [2L, 1, K, K], repeated for each of n groups.
  const single = permute(morletKernel(L, 2), [K, K, 1, 2 * L], [3, 2, 0, 1]).data;
  const modulus = (input: string, n: number, tag: string): string => {
    const weights = new Float32Array(n * single.length);
    for (let g = 0; g < n; g++) weights.set(single, g * single.length);
    const z = b.node(
      'Conv',
      [input, b.floats(`${layer.id}/${tag}/filters`, [n * 2 * L, 1, K, K], weights)],
      [ints('kernel_shape', [K, K]), ints('pads', [half, half, half, half]), int('group', n)],
    );
    const pairs = b.floats(`${layer.id}/${tag}/pairs`, [n * L, 2, 1, 1], new Float32Array(n * L * 2).fill(1));
    const squared = b.node('Conv', [b.node('Mul', [z, z]), pairs], [ints('kernel_shape', [1, 1]), int('group', n * L)]);
    return b.node('Sqrt', [squared]);
  };
  const pool = (input: string, window: number): string =>
    window === 1
      ? input
      : b.node('AveragePool', [input], [ints('kernel_shape', [window, window]), ints('strides', [window, window])]);
  const parts = [pool(x.name, 2 ** J)];
  const first: string[] = [];
  let xj = x.name;
  for (let j = 0; j < J; j++) {
    if (j > 0) xj = pool(xj, 2);
    const u = modulus(xj, channels, `order1_${j}`);
    first.push(u);
    parts.push(pool(u, 2 ** (J - j)));
  }
  for (let j1 = 0; j1 < J; j1++) {
    let u = first[j1]!;
    for (let j2 = j1 + 1; j2 < J; j2++) {
      u = pool(u, 2);
      parts.push(pool(modulus(u, channels * L, `order2_${j1}_${j2}`), 2 ** (J - j2)));
    }
  }
  return b.node('Concat', parts, [int('axis', 1)]);
}

function layerNode(
  b: OnnxGraphBuilder,
  network: CompiledNetwork,
  index: number,
  inputs: GraphValue[],
  columns: ReadonlyMap<string, string>,
): GraphValue {
  const layer = network.spec.layers[index]!;
  const x = inputs[0]!;
  const inputShape = (name: string) =>
    name === NETWORK_INPUT ? network.table.inputShape : network.table.rows.find((r) => r.id === name)!.outputShape;
  switch (layer.kind) {
    case 'dense': {
      let z = b.node('MatMul', [x.name, b.weight(`${layer.id}/kernel`)]);
      if (layer.bias !== false) z = b.node('Add', [z, b.weight(`${layer.id}/bias`)]);
      return { name: layer.activation ? activation(b, z, layer.activation) : z, image: false };
    }
    case 'conv2d': {
      const g = convGeometryOf(network, index);
      const convInputs = [x.name, b.weight(`${layer.id}/kernel`, undefined, [3, 2, 0, 1])];
      if (layer.bias !== false) convInputs.push(b.weight(`${layer.id}/bias`));
      const z = b.node('Conv', convInputs, [
        ints('kernel_shape', [...g.kernel]),
        ints('strides', [...g.stride]),
        ints('dilations', [...g.dilation]),
        ints('pads', padsOf(g)),
      ]);
      return { name: layer.activation ? activation(b, z, layer.activation) : z, image: true };
    }
    case 'maxPool2d':
    case 'avgPool2d': {
      const g = poolGeometryOf(network, index);
      const attributes = [ints('kernel_shape', [...g.kernel]), ints('strides', [...g.stride]), ints('pads', padsOf(g))];
      // AveragePool's count_include_pad defaults to 0: the padding is not averaged, as in TensorFlow's 'same'.
      return {
        name: b.node(layer.kind === 'maxPool2d' ? 'MaxPool' : 'AveragePool', [x.name], attributes),
        image: true,
      };
    }
    case 'globalAvgPool2d':
      return { name: b.node('Flatten', [b.node('GlobalAveragePool', [x.name])], [int('axis', 1)]), image: false };
    case 'flatten':
      return {
        name: b.node('Flatten', [b.node('Transpose', [x.name], [ints('perm', [0, 2, 3, 1])])], [int('axis', 1)]),
        image: false,
      };
    case 'dropout':
      return x;
    case 'groupNorm':
    case 'layerNorm':
      return { name: normalisation(b, layer, x, inputShape(network.table.rows[index]!.inputs[0]!)), image: x.image };
    case 'activation':
      return { name: activation(b, x.name, layer.fn), image: x.image };
    case 'add':
      return {
        name: b.node(
          inputs.length === 2 ? 'Add' : 'Sum',
          inputs.map((v) => v.name),
        ),
        image: x.image,
      };
    case 'concat':
      // Channels are axis 1 of NCHW images, features axis 1 of vectors.
      return {
        name: b.node(
          'Concat',
          inputs.map((v) => v.name),
          [int('axis', 1)],
        ),
        image: x.image,
      };
    case 'scattering':
      return { name: scatteringNodes(b, layer, x, network.table.inputShape[2]!), image: true };
    case 'embedding':
      return {
        name: b.node('Gather', [b.weight(`${layer.id}/embeddings`), columns.get(layer.column)!], [int('axis', 0)]),
        image: false,
      };
  }
}

/** The graph's `input` value and the int64 codes [N] of each categorical column, from the data rows. */
function graphInput(b: OnnxGraphBuilder, spec: NetworkSpec): { input: GraphValue; columns: Map<string, string> } {
  const columns = new Map<string, string>();
  const source = spec.input;
  if (source.kind === 'image') {
    const nhwc = b.node('Reshape', [
      'features',
      b.int64s('input/shape', [-1, source.height, source.width, source.channels]),
    ]);
    return { input: { name: b.node('Transpose', [nhwc], [ints('perm', [0, 3, 1, 2])]), image: true }, columns };
  }
  const categorical = source.categorical ?? [];
  const axis = b.int64s('input/axis', [1]);
  categorical.forEach((column, j) => {
    const at = source.features + j;
    const slice = b.node('Slice', [
      'features',
      b.int64s(`input/${j}/start`, [at]),
      b.int64s(`input/${j}/end`, [at + 1]),
      axis,
    ]);
    const codes = b.node('Cast', [b.node('Squeeze', [slice, axis])], [int('to', onnx.TensorProto.DataType.INT64)]);
    columns.set(column.name, codes);
  });
  if (categorical.length === 0) return { input: { name: 'features', image: false }, columns };
  const numeric = b.node('Slice', [
    'features',
    b.int64s('input/start', [0]),
    b.int64s('input/end', [source.features]),
    axis,
  ]);
  return { input: { name: numeric, image: false }, columns };
}

/**
 * Serialises a trained network as an ONNX ModelProto (IR v7, default-domain opset 13) that any ONNX runtime can run:
 * input 'features' float32 [N, row length] — the data row the network reads (tabular: numeric features then the
 * categorical codes; image: height × width × channels, channels last); output 'output' float32 [N, k] — P(y = 1)
 * (binary, k = 1), class probabilities (multiclass, k = K) or the predicted value (regression). Dropout is the
 * identity, as when predicting. Layer by layer: Conv (kernels transposed to [F, C, kh, kw], explicit TensorFlow
 * pads), MaxPool/AveragePool (padding excluded from averages), GlobalAveragePool, Flatten in (height, width, channel)
 * order, group/layer norm from ReduceMean, Sub, Div and Sqrt, gelu from Erf, Gather for embeddings.
 */
export function exportNetworkOnnx(spec: NetworkSpec, parameters: Float32Array): Uint8Array {
  const network = compileNetwork(spec);
  assertNetworkParameters(network, parameters);
  const b = new OnnxGraphBuilder(network, parameters);
  const { input, columns } = graphInput(b, spec);
  const values = new Map<string, GraphValue>([[NETWORK_INPUT, input]]);
  spec.layers.forEach((layer, index) => {
    const inputs = network.table.rows[index]!.inputs.map((name) => values.get(name)!);
    values.set(layer.id, layerNode(b, network, index, inputs, columns));
  });
  const last = values.get(spec.layers[spec.layers.length - 1]!.id)!;
  const head = { binary: 'Sigmoid', multiclass: 'Softmax', regression: 'Identity' }[spec.task.kind];
  b.node(head, [last.name], [], 'output');
  const valueInfo = (name: string, dims: (number | string)[]): onnx.IValueInfoProto => ({
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
  const model = onnx.ModelProto.create({
    irVersion: IR_VERSION,
    opsetImport: [{ domain: '', version: OPSET }],
    producerName: '@tessera/ml',
    producerVersion: '0.1.0',
    graph: {
      name: 'tessera-network',
      node: b.nodes,
      initializer: b.initializers,
      input: [valueInfo('features', ['N', network.table.rowLength])],
      output: [valueInfo('output', ['N', network.outputs])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}
