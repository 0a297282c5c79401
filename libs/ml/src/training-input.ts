import { TrainingInputErrorCode, TrainingInputException } from './ml.exception';
import { outputUnits, parseModelSpec, type ModelSpec } from './model-spec';

/** Labels: 0/1 for binary models, class indices 0..k-1 for multi-class ones. */
export type LabelArray = Float32Array | Float64Array | Int32Array | Uint8Array;

/** Validates a row-major feature matrix and its labels against a spec; returns n. Never echoes values. */
export function assertExamples(spec: ModelSpec, x: Float32Array, y: LabelArray): number {
  return checkExamples(spec, x, y).n;
}

/**
 * Validates like assertExamples and returns ||x_i||² of every row, computed in the same pass over x (DP-SGD's ghost
 * norms need them): a row's sum of squares is finite exactly when all its values are (float32 squares cannot overflow
 * a double).
 */
export function checkExamples(
  spec: ModelSpec,
  x: Float32Array,
  y: LabelArray,
): { n: number; rowSquaredNorms: Float64Array } {
  const checked = parseModelSpec(spec);
  const d = checked.inputDim;
  if (!(x instanceof Float32Array) || x.length === 0 || x.length % d !== 0) {
    throw new TrainingInputException(
      TrainingInputErrorCode.Features,
      `x must be a non-empty row-major Float32Array of n×${d} values`,
    );
  }
  const n = x.length / d;
  const rowSquaredNorms = new Float64Array(n);
  for (let row = 0; row < n; row++) {
    let sum = 0;
    for (let j = row * d; j < (row + 1) * d; j++) sum += x[j]! * x[j]!;
    if (!Number.isFinite(sum)) {
      const column = Array.from(x.subarray(row * d, (row + 1) * d)).findIndex((v) => !Number.isFinite(v));
      throw new TrainingInputException(
        TrainingInputErrorCode.Features,
        `x has a non-finite value at row ${row}, column ${column}`,
      );
    }
    rowSquaredNorms[row] = sum;
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
  return { n, rowSquaredNorms };
}
