import {
  inferNetworkShapes,
  logisticRegressionNetwork,
  mlpNetwork,
  type LayerShapeRow,
  type NetworkShapeTable,
  type NetworkSpec,
  type NetworkTask,
} from '@tessera/protocol';
import { TrainingInputErrorCode, TrainingInputException } from './ml.exception';
import type { ModelSpec } from './model-spec';
import type { ParameterEntry, ParameterLayout } from './parameter-layout';
import { seededUniform } from './seeded-random';

/**
 * A network spec checked and laid out once: the shape table (@tessera/protocol inferNetworkShapes) and the flat
 * parameter layout every party derives from it, so an update is a plain Float32Array.
 *
 * Parameter order (the wire layout): layers in spec order; within a layer its tensors in this order —
 * dense `kernel` [in, units] then `bias` [units]; conv2d `kernel` [kh, kw, in, filters] then `bias` [filters];
 * groupNorm and layerNorm `gamma` [c] then `beta` [c]; embedding `embeddings` [levels, dim]; each row-major.
 * Layers without parameters take no room. Names are `<layer id>/<role>`.
 */
export interface CompiledNetwork {
  readonly spec: NetworkSpec;
  readonly table: NetworkShapeTable;
  readonly layout: ParameterLayout;
  /** Index in layout.entries of every weight, by name. */
  readonly entryIndex: ReadonlyMap<string, number>;
  /** Output width: 1 (binary, regression) or K (multiclass). */
  readonly outputs: number;
  readonly task: NetworkTask;
}

const compiled = new WeakMap<NetworkSpec, CompiledNetwork>();

/**
 * Validates a spec (NetworkSpecError on any problem, naming layer and field) and computes its shape table and layout.
 * The result is cached per spec object, which callers must therefore not mutate.
 */
export function compileNetwork(spec: NetworkSpec): CompiledNetwork {
  const cached = compiled.get(spec);
  if (cached !== undefined) return cached;
  const table = inferNetworkShapes(spec);
  const entries: ParameterEntry[] = [];
  let offset = 0;
  for (const row of table.rows) {
    for (const weight of row.weights) {
      const length = weight.shape.reduce((a, b) => a * b, 1);
      entries.push({ name: weight.name, shape: [...weight.shape], offset, length });
      offset += length;
    }
  }
  const network: CompiledNetwork = {
    spec,
    table,
    layout: { entries, size: offset },
    entryIndex: new Map(entries.map((e, i) => [e.name, i])),
    outputs: spec.task.kind === 'multiclass' ? spec.task.classes : 1,
    task: spec.task,
  };
  compiled.set(spec, network);
  return network;
}

/** The row of the shape table for a layer id. */
export function layerRow(network: CompiledNetwork, id: string): LayerShapeRow {
  const row = network.table.rows.find((r) => r.id === id);
  if (row === undefined) throw new Error(`no layer "${id}" in the network`);
  return row;
}

/** The flat parameter layout of a network spec (see CompiledNetwork for the order). */
export function networkParameterLayout(spec: NetworkSpec): ParameterLayout {
  return compileNetwork(spec).layout;
}

/**
 * Deterministic initial parameters; the same spec and seed give the same bytes on every machine. One seeded stream
 * (seededUniform) is drawn through the layout in order, only for the tensors initialised at random:
 * - dense and conv2d kernels: Glorot uniform U(−l, l), l = √(6 / (fan_in + fan_out)) (Glorot & Bengio 2010, eq. 16),
 *   fan_in = kh·kw·in and fan_out = kh·kw·filters for a convolution (Keras's convention);
 * - embeddings: U(−0.05, 0.05) (Keras's default);
 * - biases and beta 0, gamma 1.
 * A network of dense layers therefore gets exactly the bytes of @tessera/ml initialParameters for the same seed.
 */
export function initialNetworkParameters(spec: NetworkSpec, seed: number): Float32Array {
  const { layout } = compileNetwork(spec);
  const flat = new Float32Array(layout.size);
  const random = seededUniform(seed);
  for (const entry of layout.entries) {
    const role = entry.name.slice(entry.name.lastIndexOf('/') + 1);
    const limit = initialisationLimit(role, entry.shape);
    if (role === 'gamma') flat.fill(1, entry.offset, entry.offset + entry.length);
    if (limit === null) continue;
    for (let i = 0; i < entry.length; i++) flat[entry.offset + i] = (2 * random() - 1) * limit;
  }
  return flat;
}

/** Half-width of the uniform initialisation of a tensor, or null for a constant one. */
function initialisationLimit(role: string, shape: readonly number[]): number | null {
  if (role === 'embeddings') return 0.05;
  if (role !== 'kernel') return null;
  const receptive = shape.slice(0, -2).reduce((a, b) => a * b, 1);
  const fanIn = receptive * shape[shape.length - 2]!;
  const fanOut = receptive * shape[shape.length - 1]!;
  return Math.sqrt(6 / (fanIn + fanOut));
}

/** Throws unless `flat` has the network's parameter count and only finite values. */
export function assertNetworkParameters(network: CompiledNetwork, flat: Float32Array): void {
  if (!(flat instanceof Float32Array) || flat.length !== network.layout.size) {
    throw new TrainingInputException(
      TrainingInputErrorCode.Parameters,
      `parameters must be a Float32Array of length ${network.layout.size} for this network`,
    );
  }
  for (let i = 0; i < flat.length; i++) {
    if (!Number.isFinite(flat[i])) {
      throw new TrainingInputException(TrainingInputErrorCode.Parameters, `parameters[${i}] is not finite`);
    }
  }
}

/**
 * The network spec of a registry model (logistic regression or MLP): the presets with the registry's layer names, so
 * the flat parameter vector of an existing study is, byte for byte, the vector of the mapped network (same layout,
 * same forward pass). This is the mapping a plan migration can use; it changes no stored plan by itself.
 */
export function networkSpecOfModelSpec(model: ModelSpec): NetworkSpec {
  if (model.kind === 'logistic-regression') return logisticRegressionNetwork(model.inputDim);
  return mlpNetwork({
    features: model.inputDim,
    hiddenLayers: model.hiddenLayers,
    activation: model.activation,
    task: model.task === 'multiclass' ? { kind: 'multiclass', classes: model.classes ?? 2 } : { kind: 'binary' },
  });
}
