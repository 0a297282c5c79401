import { TrainingInputErrorCode, TrainingInputException } from './ml.exception';
import { denseLayers, type ModelSpec } from './model-spec';
import { seededUniform } from './seeded-random';

/** One tensor of the model inside the flat parameter vector shared by hub and agent. */
export interface ParameterEntry {
  /** Keras/tfjs-style weight name, e.g. 'dense_1/kernel'. */
  readonly name: string;
  /** Row-major shape: kernels are [inputs, units], biases [units]. */
  readonly shape: readonly number[];
  /** Index of the first element in the flat Float32Array. */
  readonly offset: number;
  /** Number of elements. */
  readonly length: number;
}

/** Ordered list of the model's tensors and the total number of float32 parameters. */
export interface ParameterLayout {
  readonly entries: readonly ParameterEntry[];
  readonly size: number;
}

/**
 * The flat layout of a spec: for each dense layer i = 1..L, `dense_i/kernel` [in, out] then `dense_i/bias` [out],
 * each row-major. Hub and agent both derive it from the spec, so an update is a plain Float32Array.
 */
export function parameterLayout(spec: ModelSpec): ParameterLayout {
  const entries: ParameterEntry[] = [];
  let offset = 0;
  denseLayers(spec).forEach((layer, i) => {
    const kernelLength = layer.inputs * layer.units;
    entries.push({ name: `dense_${i + 1}/kernel`, shape: [layer.inputs, layer.units], offset, length: kernelLength });
    offset += kernelLength;
    entries.push({ name: `dense_${i + 1}/bias`, shape: [layer.units], offset, length: layer.units });
    offset += layer.units;
  });
  return { entries, size: offset };
}

/**
 * Deterministic initial parameters: kernels Glorot-uniform, U(-l, l) with l = sqrt(6 / (fan_in + fan_out))
 * (Glorot & Bengio, AISTATS 2010, eq. 16), biases zero. Same spec and seed give the same bytes on every machine.
 */
export function initialParameters(spec: ModelSpec, seed: number): Float32Array {
  const layout = parameterLayout(spec);
  const flat = new Float32Array(layout.size);
  const random = seededUniform(seed);
  for (const entry of layout.entries) {
    if (entry.shape.length !== 2) continue; // biases stay zero
    const [fanIn, fanOut] = entry.shape as [number, number];
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    for (let i = 0; i < entry.length; i++) flat[entry.offset + i] = (2 * random() - 1) * limit;
  }
  return flat;
}

/** Throws unless `flat` has the layout's length and only finite values. */
export function assertParameters(spec: ModelSpec, flat: Float32Array): void {
  const { size } = parameterLayout(spec);
  if (!(flat instanceof Float32Array) || flat.length !== size) {
    throw new TrainingInputException(
      TrainingInputErrorCode.Parameters,
      `parameters must be a Float32Array of length ${size} for this model`,
    );
  }
  for (let i = 0; i < flat.length; i++) {
    if (!Number.isFinite(flat[i])) {
      throw new TrainingInputException(TrainingInputErrorCode.Parameters, `parameters[${i}] is not finite`);
    }
  }
}
