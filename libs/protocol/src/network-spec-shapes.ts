import {
  NETWORK_INPUT,
  NETWORK_LIMITS,
  NetworkSpecError,
  NetworkSpecErrorCode,
  parseNetworkSpec,
  type NetworkLayer,
  type NetworkSpec,
} from './network-spec-schema';

/** One trainable tensor of a layer, named `<layer id>/<role>` (Keras names: kernel, bias, gamma, beta, embeddings). */
export interface LayerWeightShape {
  readonly name: string;
  /** Row-major shape: dense kernel [in, units], conv kernel [kh, kw, in, filters], bias/gamma/beta [c], table [levels, dim]. */
  readonly shape: readonly number[];
}

/** One row of the table the steward reads: what a layer reads, what it gives, what it learns. */
export interface LayerShapeRow {
  readonly id: string;
  readonly kind: NetworkLayer['kind'];
  /** Resolved inputs (defaults filled in); empty for an embedding, which reads its column. */
  readonly inputs: readonly string[];
  /** Output shape of one example: [features] or [height, width, channels]. */
  readonly outputShape: readonly number[];
  readonly parameters: number;
  /** The layer's trainable tensors, in the order they take in the flat parameter vector. */
  readonly weights: readonly LayerWeightShape[];
}

export interface NetworkShapeTable {
  /** Shape of `input` for one example: [numeric features] or [height, width, channels]. */
  readonly inputShape: readonly number[];
  /** Values per example in the data row: input elements plus one code per categorical column. */
  readonly rowLength: number;
  readonly rows: readonly LayerShapeRow[];
  /** Total trainable parameters: the length of the flat parameter vector (layers in spec order, weights in row order). */
  readonly parameters: number;
  readonly outputShape: readonly number[];
}

/** A side given as one number or [height, width], as a pair. */
export function sidesOf(value: number | readonly [number, number] | undefined, fallback: number): [number, number] {
  if (value === undefined) return [fallback, fallback];
  return typeof value === 'number' ? [value, value] : [value[0], value[1]];
}

/** Output length and padding before, along one axis, of a window op (TensorFlow's 'same': the odd pad goes after). */
export interface AxisGeometry {
  readonly out: number;
  readonly padBefore: number;
  readonly padAfter: number;
}

/**
 * One axis of a convolution or pooling: 'valid' gives floor((n − k_eff) / s) + 1 with k_eff = (k − 1)·d + 1 (null when
 * the window does not fit); 'same' gives ceil(n / s) with total padding max((out − 1)·s + k_eff − n, 0), its floor half
 * before (TensorFlow's convention, which tfjs and the ONNX export follow).
 */
export function axisGeometry(
  n: number,
  k: number,
  s: number,
  d: number,
  padding: 'same' | 'valid',
): AxisGeometry | null {
  const effective = (k - 1) * d + 1;
  if (padding === 'valid') {
    if (effective > n) return null;
    return { out: Math.floor((n - effective) / s) + 1, padBefore: 0, padAfter: 0 };
  }
  const out = Math.ceil(n / s);
  const total = Math.max((out - 1) * s + effective - n, 0);
  return { out, padBefore: Math.floor(total / 2), padAfter: total - Math.floor(total / 2) };
}

/** The inputs a layer reads: its own `inputs`, else the previous layer, else the network input; none for an embedding. */
export function resolvedInputs(spec: NetworkSpec, index: number): string[] {
  const layer = spec.layers[index]!;
  if (layer.kind === 'embedding') return [];
  if (layer.inputs !== undefined) return [...layer.inputs];
  return [index === 0 ? NETWORK_INPUT : spec.layers[index - 1]!.id];
}

/** Input shape and data-row length of a spec's input. */
function inputShapeOf(spec: NetworkSpec): { shape: number[]; rowLength: number } {
  const input = spec.input;
  if (input.kind === 'image') {
    const shape = [input.height, input.width, input.channels];
    const elements = input.height * input.width * input.channels;
    if (elements > NETWORK_LIMITS.inputElements) {
      fail(
        NetworkSpecErrorCode.Limit,
        null,
        'input',
        `${elements} values per image exceed ${NETWORK_LIMITS.inputElements}`,
      );
    }
    return { shape, rowLength: elements };
  }
  const categorical = input.categorical ?? [];
  const names = categorical.map((c) => c.name);
  const duplicate = names.find((name, i) => names.indexOf(name) !== i);
  if (duplicate !== undefined) {
    fail(NetworkSpecErrorCode.Structure, null, 'input.categorical', `column "${duplicate}" appears twice`);
  }
  if (input.features + categorical.length === 0) {
    fail(
      NetworkSpecErrorCode.Structure,
      null,
      'input',
      'a tabular input needs numeric features or categorical columns',
    );
  }
  return { shape: [input.features], rowLength: input.features + categorical.length };
}

function fail(code: NetworkSpecErrorCode, layer: string | null, field: string, message: string): never {
  throw new NetworkSpecError(code, layer, field, message);
}

const count = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);
const show = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/**
 * Validates a spec (untrusted value or parsed) as a graph and infers every layer's output shape and parameters, in
 * spec order. Pure: the hub calls it when a plan is created, the agent before it builds the network, the console to
 * show the table. Refuses, with the layer id and the field, unknown or later inputs, unused layers, shapes a layer
 * cannot take, an output that does not fit the task, and anything over NETWORK_LIMITS.
 */
export function inferNetworkShapes(value: unknown): NetworkShapeTable {
  const spec = parseNetworkSpec(value);
  const input = inputShapeOf(spec);
  const shapes = new Map<string, readonly number[]>([[NETWORK_INPUT, input.shape]]);
  const ids = spec.layers.map((l) => l.id);
  const used = new Set<string>();
  const rows: LayerShapeRow[] = [];
  let parameters = 0;
  spec.layers.forEach((layer, index) => {
    if (ids.indexOf(layer.id) !== index)
      fail(NetworkSpecErrorCode.LayerId, layer.id, 'id', 'another layer has this id');
    const inputs = resolvedInputs(spec, index);
    const inputShapes = inputs.map((name) => {
      const shape = shapes.get(name);
      if (shape === undefined) {
        const later = ids.indexOf(name) >= index;
        fail(
          NetworkSpecErrorCode.Wiring,
          layer.id,
          'inputs',
          later
            ? `"${name}" is this layer or a later one: a layer reads only the input and earlier layers`
            : `no layer is called "${name}"`,
        );
      }
      if (name === NETWORK_INPUT && count(shape) === 0) {
        fail(NetworkSpecErrorCode.Wiring, layer.id, 'inputs', 'the input has no numeric features (embed the columns)');
      }
      used.add(name);
      return shape;
    });
    const { outputShape, weights } = layerShape(spec, layer, inputShapes);
    if (count(outputShape) > NETWORK_LIMITS.activationElements) {
      fail(
        NetworkSpecErrorCode.Limit,
        layer.id,
        'outputShape',
        `${show(outputShape)} holds ${count(outputShape)} values per example; the limit is ${NETWORK_LIMITS.activationElements}`,
      );
    }
    const own = weights.reduce((sum, w) => sum + count(w.shape), 0);
    parameters += own;
    if (parameters > NETWORK_LIMITS.parameters) {
      fail(
        NetworkSpecErrorCode.Limit,
        layer.id,
        'parameters',
        `the network reaches ${parameters} parameters here; the limit is ${NETWORK_LIMITS.parameters}`,
      );
    }
    shapes.set(layer.id, outputShape);
    rows.push({ id: layer.id, kind: layer.kind, inputs, outputShape, parameters: own, weights });
  });
  const last = spec.layers[spec.layers.length - 1]!;
  spec.layers.slice(0, -1).forEach((layer) => {
    if (!used.has(layer.id)) {
      fail(NetworkSpecErrorCode.Wiring, layer.id, 'id', 'its output is never read (only the last layer is the output)');
    }
  });
  const outputShape = shapes.get(last.id)!;
  checkOutput(spec, last, outputShape);
  return { inputShape: input.shape, rowLength: input.rowLength, rows, parameters, outputShape };
}

/** The last layer gives logits or the predicted value: its shape fits the task and it carries no nonlinearity. */
function checkOutput(spec: NetworkSpec, last: NetworkLayer, shape: readonly number[]): void {
  const width = spec.task.kind === 'multiclass' ? spec.task.classes : 1;
  if (shape.length !== 1 || shape[0] !== width) {
    fail(
      NetworkSpecErrorCode.Output,
      last.id,
      last.kind === 'dense' ? 'units' : 'outputShape',
      `the ${spec.task.kind} task needs an output of shape [${width}], this layer gives ${show(shape)}`,
    );
  }
  if (last.kind === 'activation' || ((last.kind === 'dense' || last.kind === 'conv2d') && last.activation)) {
    fail(
      NetworkSpecErrorCode.Output,
      last.id,
      last.kind === 'activation' ? 'kind' : 'activation',
      'the output layer gives logits: the task applies sigmoid, softmax or nothing itself',
    );
  }
}

interface LayerOutcome {
  readonly outputShape: readonly number[];
  readonly weights: readonly LayerWeightShape[];
}

function needRank(layer: NetworkLayer, shape: readonly number[], ranks: readonly number[], hint: string): void {
  if (!ranks.includes(shape.length)) {
    fail(NetworkSpecErrorCode.Shape, layer.id, 'inputs', `${layer.kind} cannot take ${show(shape)}: ${hint}`);
  }
}

function layerShape(spec: NetworkSpec, layer: NetworkLayer, inputs: readonly (readonly number[])[]): LayerOutcome {
  const single = (): readonly number[] => {
    if (inputs.length !== 1) {
      fail(NetworkSpecErrorCode.Wiring, layer.id, 'inputs', `${layer.kind} reads exactly one input`);
    }
    return inputs[0]!;
  };
  const w = (role: string, shape: number[]): LayerWeightShape => ({ name: `${layer.id}/${role}`, shape });
  switch (layer.kind) {
    case 'dense': {
      const shape = single();
      needRank(layer, shape, [1], 'it needs a vector per example (add flatten or globalAvgPool2d first)');
      const weights = [w('kernel', [shape[0]!, layer.units])];
      if (layer.bias !== false) weights.push(w('bias', [layer.units]));
      return { outputShape: [layer.units], weights };
    }
    case 'conv2d': {
      const shape = single();
      needRank(layer, shape, [3], 'it needs an image [height, width, channels]');
      const [kh, kw] = sidesOf(layer.kernel, 1);
      const [out, channels] = windowOutput(layer, shape, layer.kernel, layer.stride ?? 1, layer.dilation, 'kernel');
      const weights = [w('kernel', [kh, kw, channels, layer.filters])];
      if (layer.bias !== false) weights.push(w('bias', [layer.filters]));
      return { outputShape: [...out, layer.filters], weights };
    }
    case 'maxPool2d':
    case 'avgPool2d': {
      const shape = single();
      needRank(layer, shape, [3], 'it needs an image [height, width, channels]');
      const [out, channels] = windowOutput(layer, shape, layer.size, layer.stride ?? layer.size, undefined, 'size');
      return { outputShape: [...out, channels], weights: [] };
    }
    case 'globalAvgPool2d': {
      const shape = single();
      needRank(layer, shape, [3], 'it needs an image [height, width, channels]');
      return { outputShape: [shape[2]!], weights: [] };
    }
    case 'flatten': {
      const shape = single();
      needRank(layer, shape, [3], 'it flattens an image [height, width, channels]; a vector is flat already');
      return { outputShape: [count(shape)], weights: [] };
    }
    case 'dropout':
    case 'activation':
      return { outputShape: single(), weights: [] };
    case 'groupNorm':
    case 'layerNorm': {
      const shape = single();
      needRank(layer, shape, [1, 3], 'it needs a vector or an image');
      const channels = shape[shape.length - 1]!;
      const groups = layer.kind === 'groupNorm' ? layer.groups : channels;
      if (channels % groups !== 0) {
        fail(NetworkSpecErrorCode.Shape, layer.id, 'groups', `${groups} groups do not divide ${channels} channels`);
      }
      // Values normalised together: a group's channels at every position (group norm), one position's channels (layer norm).
      const perGroup = layer.kind === 'groupNorm' ? (count(shape) / channels) * (channels / groups) : channels;
      if (perGroup < 2) {
        fail(
          NetworkSpecErrorCode.Shape,
          layer.id,
          layer.kind === 'groupNorm' ? 'groups' : 'inputs',
          'each normalised group holds a single value, so the output would always be zero',
        );
      }
      return { outputShape: shape, weights: [w('gamma', [channels]), w('beta', [channels])] };
    }
    case 'add': {
      const first = inputs[0]!;
      inputs.forEach((shape, i) => {
        if (show(shape) !== show(first)) {
          fail(
            NetworkSpecErrorCode.Shape,
            layer.id,
            'inputs',
            `add needs one shape: "${layer.inputs[0]}" gives ${show(first)}, "${layer.inputs[i]}" gives ${show(shape)}`,
          );
        }
      });
      return { outputShape: first, weights: [] };
    }
    case 'concat': {
      const first = inputs[0]!;
      const head = (shape: readonly number[]) => show(shape.slice(0, -1));
      inputs.forEach((shape, i) => {
        if (shape.length !== first.length || head(shape) !== head(first)) {
          fail(
            NetworkSpecErrorCode.Shape,
            layer.id,
            'inputs',
            `concat joins along the last axis: "${layer.inputs[i]}" gives ${show(shape)}, "${layer.inputs[0]}" ${show(first)}`,
          );
        }
      });
      const last = inputs.reduce((sum, shape) => sum + shape[shape.length - 1]!, 0);
      return { outputShape: [...first.slice(0, -1), last], weights: [] };
    }
    case 'scattering': {
      const shape = single();
      // Nothing trainable may come before it: no gradient flows through the transform (it is not differentiated).
      if (resolvedInputs(spec, spec.layers.indexOf(layer))[0] !== NETWORK_INPUT) {
        fail(
          NetworkSpecErrorCode.Wiring,
          layer.id,
          'inputs',
          'a scattering layer is a fixed transform of the image: it reads "input" only',
        );
      }
      needRank(layer, shape, [3], 'it needs an image [height, width, channels]');
      return { outputShape: scatteringOutputShape(layer, shape), weights: [] };
    }
    case 'embedding': {
      const column =
        spec.input.kind === 'tabular' ? (spec.input.categorical ?? []).find((c) => c.name === layer.column) : undefined;
      if (column === undefined) {
        fail(NetworkSpecErrorCode.Wiring, layer.id, 'column', `the input has no categorical column "${layer.column}"`);
      }
      return { outputShape: [layer.dim], weights: [w('embeddings', [column.levels, layer.dim])] };
    }
  }
}

/**
 * Output shape of a scattering layer on [h, w, c], after checking that the image survives J halvings and that its
 * largest intermediate (the first-order moduli at full resolution, or a second-order bank at half resolution) fits
 * the per-example activation limit.
 */
function scatteringOutputShape(layer: NetworkLayer & { kind: 'scattering' }, shape: readonly number[]): number[] {
  const [h, w, c] = shape as [number, number, number];
  const factor = 2 ** layer.scales;
  if (Math.floor(h / factor) < 1 || Math.floor(w / factor) < 1) {
    fail(
      NetworkSpecErrorCode.Shape,
      layer.id,
      'scales',
      `${layer.scales} scales average ${factor}×${factor} windows, larger than the ${h}×${w} image`,
    );
  }
  const L = layer.angles;
  const J = layer.scales;
  const intermediate = Math.max(h * w * c * 2 * L, J > 1 ? Math.floor(h / 2) * Math.floor(w / 2) * c * 2 * L * L : 0);
  if (intermediate > NETWORK_LIMITS.activationElements) {
    fail(
      NetworkSpecErrorCode.Limit,
      layer.id,
      'angles',
      `the transform holds ${intermediate} values per example on the way; the limit is ${NETWORK_LIMITS.activationElements}`,
    );
  }
  return [Math.floor(h / factor), Math.floor(w / factor), c * (1 + J * L + (L * L * J * (J - 1)) / 2)];
}

/** Output height and width of a window op and the channels, or a SHAPE error on `field` when the window does not fit. */
function windowOutput(
  layer: NetworkLayer & { padding?: 'same' | 'valid' | undefined },
  shape: readonly number[],
  window: number | readonly [number, number],
  stride: number | readonly [number, number],
  dilation: number | readonly [number, number] | undefined,
  field: string,
): [[number, number], number] {
  const [kh, kw] = sidesOf(window, 1);
  const [sh, sw] = sidesOf(stride, 1);
  const [dh, dw] = sidesOf(dilation, 1);
  const padding = layer.padding ?? 'valid';
  const rows = axisGeometry(shape[0]!, kh, sh, dh, padding);
  const cols = axisGeometry(shape[1]!, kw, sw, dw, padding);
  if (rows === null || cols === null) {
    fail(
      NetworkSpecErrorCode.Shape,
      layer.id,
      field,
      `a ${kh}×${kw} window (dilation ${dh}×${dw}) does not fit a ${shape[0]}×${shape[1]} input without padding`,
    );
  }
  return [[rows.out, cols.out], shape[2]!];
}

/** The shape table as fixed-width text, for the plan the steward reads and for logs. */
export function formatNetworkShapeTable(table: NetworkShapeTable): string {
  const lines = [
    ['layer', 'kind', 'inputs', 'output', 'parameters'],
    ['input', 'input', '', show(table.inputShape), '0'],
    ...table.rows.map((r) => [
      r.id,
      r.kind,
      r.inputs.join(', '),
      show(r.outputShape),
      r.parameters.toLocaleString('en-US'),
    ]),
    ['total', '', '', show(table.outputShape), table.parameters.toLocaleString('en-US')],
  ];
  const widths = lines[0]!.map((_, c) => Math.max(...lines.map((l) => l[c]!.length)));
  return lines
    .map((l) =>
      l
        .map((cell, c) => (c === 4 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
