import { TrainingInputErrorCode, TrainingInputException } from './ml.exception';
import { outputUnits, parseModelSpec, type ModelSpec } from './model-spec';

/** Labels: 0/1 for binary models, class indices 0..k-1 for multi-class ones. */
export type LabelArray = Float32Array | Float64Array | Int32Array | Uint8Array;

/** Validates a row-major feature matrix and its labels against a spec; returns n. Never echoes values. */
export function assertExamples(spec: ModelSpec, x: Float32Array, y: LabelArray): number {
  const checked = parseModelSpec(spec);
  const d = checked.inputDim;
  if (!(x instanceof Float32Array) || x.length === 0 || x.length % d !== 0) {
    throw new TrainingInputException(
      TrainingInputErrorCode.Features,
      `x must be a non-empty row-major Float32Array of n×${d} values`,
    );
  }
  const n = x.length / d;
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) {
      throw new TrainingInputException(
        TrainingInputErrorCode.Features,
        `x has a non-finite value at row ${Math.floor(i / d)}, column ${i % d}`,
      );
    }
  }
  if (y === null || typeof y !== 'object' || y.length !== n) {
    throw new TrainingInputException(TrainingInputErrorCode.Labels, `y must hold ${n} labels, one per row of x`);
  }
  const classes = outputUnits(checked);
  const upper = classes === 1 ? 1 : classes - 1;
  for (let i = 0; i < n; i++) {
    const label = y[i]!;
    if (!Number.isInteger(label) || label < 0 || label > upper) {
      throw new TrainingInputException(
        TrainingInputErrorCode.Labels,
        `label at row ${i} must be an integer in [0, ${upper}]`,
      );
    }
  }
  return n;
}
