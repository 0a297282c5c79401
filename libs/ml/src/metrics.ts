import { rocAuc } from './evaluation';

/**
 * Metrics of each task as pure functions of labels and predictions, with scikit-learn's definitions (the reference
 * a data scientist checks against; sklearn.metrics, version 1.x documentation). Labels are class indices 0..K−1;
 * binary models predict class 1 when P(y = 1) ≥ 0.5.
 */

/** Fraction of predictions equal to the label (sklearn accuracy_score). */
export function accuracy(truth: ArrayLike<number>, predicted: ArrayLike<number>): number {
  let correct = 0;
  for (let i = 0; i < truth.length; i++) if (truth[i] === predicted[i]) correct++;
  return correct / truth.length;
}

/**
 * K×K counts, row = true class, column = predicted class (sklearn confusion_matrix with labels 0..K−1). Labels
 * outside 0..K−1 are an error.
 */
export function confusionMatrix(truth: ArrayLike<number>, predicted: ArrayLike<number>, classes: number): number[][] {
  const matrix = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i]!;
    const p = predicted[i]!;
    if (!(Number.isInteger(t) && t >= 0 && t < classes && Number.isInteger(p) && p >= 0 && p < classes)) {
      throw new RangeError(`labels must be integers in [0, ${classes - 1}]`);
    }
    matrix[t]![p]!++;
  }
  return matrix;
}

/**
 * Mean over classes of recall, TP_c / (examples of class c), over the classes that occur in `truth` (sklearn
 * balanced_accuracy_score, which leaves out classes without true examples). Null when `truth` is empty.
 */
export function balancedAccuracy(
  truth: ArrayLike<number>,
  predicted: ArrayLike<number>,
  classes: number,
): number | null {
  const matrix = confusionMatrix(truth, predicted, classes);
  const recalls = matrix
    .map((row, c) => ({ hits: row[c]!, total: row.reduce((a, b) => a + b, 0) }))
    .filter((r) => r.total > 0)
    .map((r) => r.hits / r.total);
  return recalls.length === 0 ? null : recalls.reduce((a, b) => a + b, 0) / recalls.length;
}

/** F1 of one class, 2·TP / (2·TP + FP + FN), from a confusion matrix; 0 when the class never occurs nor is predicted. */
function classF1(matrix: readonly (readonly number[])[], c: number): number {
  const tp = matrix[c]![c]!;
  const fn = matrix[c]!.reduce((a, b) => a + b, 0) - tp;
  const fp = matrix.reduce((sum, row) => sum + row[c]!, 0) - tp;
  const denominator = 2 * tp + fp + fn;
  return denominator === 0 ? 0 : (2 * tp) / denominator;
}

/**
 * F1 score. 'binary': the F1 of class 1 (sklearn f1_score, average='binary'). 'macro': the unweighted mean of the
 * per-class F1 over the classes that occur in the labels or the predictions (sklearn f1_score, average='macro',
 * labels=None); a class with no true, no predicted example does not count. A class with TP = FP = FN = 0 would score
 * 0 (sklearn's zero_division default).
 */
export function f1Score(
  truth: ArrayLike<number>,
  predicted: ArrayLike<number>,
  classes: number,
  average: 'binary' | 'macro',
): number {
  const matrix = confusionMatrix(truth, predicted, classes);
  if (average === 'binary') return classF1(matrix, 1);
  const present = matrix
    .map((row, c) => row.reduce((a, b) => a + b, 0) + matrix.reduce((sum, r) => sum + r[c]!, 0))
    .map((count, c) => (count > 0 ? c : -1))
    .filter((c) => c >= 0);
  return present.reduce((sum, c) => sum + classF1(matrix, c), 0) / present.length;
}

/**
 * Macro one-vs-rest ROC AUC of a K-class model: the unweighted mean over classes of the AUC of "class c against the
 * rest" scored by P(class c) (sklearn roc_auc_score, multi_class='ovr', average='macro'). Classes without positive or
 * without negative examples have no AUC and are left out (sklearn refuses such a set); null when none is left.
 * `probabilities` is row-major n×K.
 */
export function macroOvrAuc(
  probabilities: ArrayLike<number>,
  truth: ArrayLike<number>,
  classes: number,
): number | null {
  const n = truth.length;
  const aucs: number[] = [];
  for (let c = 0; c < classes; c++) {
    const scores = Float64Array.from({ length: n }, (_, i) => probabilities[i * classes + c]!);
    const value = rocAuc(
      scores,
      Array.from({ length: n }, (_, i) => truth[i] === c),
    );
    if (value !== null) aucs.push(value);
  }
  return aucs.length === 0 ? null : aucs.reduce((a, b) => a + b, 0) / aucs.length;
}

/** Mean |ŷ − y| (sklearn mean_absolute_error). */
export function meanAbsoluteError(truth: ArrayLike<number>, predicted: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < truth.length; i++) sum += Math.abs(predicted[i]! - truth[i]!);
  return sum / truth.length;
}

/** √(mean (ŷ − y)²) (sklearn root_mean_squared_error). */
export function rootMeanSquaredError(truth: ArrayLike<number>, predicted: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < truth.length; i++) sum += (predicted[i]! - truth[i]!) ** 2;
  return Math.sqrt(sum / truth.length);
}

/**
 * Coefficient of determination R² = 1 − Σ(y − ŷ)² / Σ(y − ȳ)² (sklearn r2_score). When the labels are constant the
 * ratio is undefined; like sklearn (force_finite=True) it is then 1 for a perfect prediction and 0 otherwise.
 */
export function r2Score(truth: ArrayLike<number>, predicted: ArrayLike<number>): number {
  const n = truth.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += truth[i]!;
  mean /= n;
  let residual = 0;
  let total = 0;
  for (let i = 0; i < n; i++) {
    residual += (truth[i]! - predicted[i]!) ** 2;
    total += (truth[i]! - mean) ** 2;
  }
  if (total === 0) return residual === 0 ? 1 : 0;
  return 1 - residual / total;
}

/** Classification metrics a silo reports for a binary or multiclass model. */
export interface ClassificationMetrics {
  readonly task: 'binary' | 'multiclass';
  readonly n: number;
  readonly accuracy: number;
  readonly balancedAccuracy: number | null;
  /** Binary: ROC AUC; multiclass: macro one-vs-rest AUC. Null when undefined (a single class present). */
  readonly auc: number | null;
  /** Binary: F1 of class 1; multiclass: macro F1. */
  readonly f1: number;
  /** Row = true class, column = predicted class. */
  readonly confusionMatrix: number[][];
}

export interface RegressionMetrics {
  readonly task: 'regression';
  readonly n: number;
  readonly mae: number;
  readonly rmse: number;
  readonly r2: number;
}

export type TaskMetrics = ClassificationMetrics | RegressionMetrics;

/** Class of each row of a row-major n×K probability matrix (argmax; the first on ties), or [p ≥ 0.5] for K = 1. */
export function predictedClasses(probabilities: ArrayLike<number>, n: number, width: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (width === 1) {
      out[i] = probabilities[i]! >= 0.5 ? 1 : 0;
      continue;
    }
    let best = 0;
    for (let c = 1; c < width; c++) if (probabilities[i * width + c]! > probabilities[i * width + best]!) best = c;
    out[i] = best;
  }
  return out;
}

/** Every metric of a binary model from P(y = 1) per example. */
export function binaryMetrics(probabilities: ArrayLike<number>, truth: ArrayLike<number>): ClassificationMetrics {
  const n = truth.length;
  const predicted = predictedClasses(probabilities, n, 1);
  return {
    task: 'binary',
    n,
    accuracy: accuracy(truth, predicted),
    balancedAccuracy: balancedAccuracy(truth, predicted, 2),
    auc: rocAuc(
      probabilities,
      Array.from({ length: n }, (_, i) => truth[i] === 1),
    ),
    f1: f1Score(truth, predicted, 2, 'binary'),
    confusionMatrix: confusionMatrix(truth, predicted, 2),
  };
}

/** Every metric of a K-class model from its row-major n×K class probabilities. */
export function multiclassMetrics(
  probabilities: ArrayLike<number>,
  truth: ArrayLike<number>,
  classes: number,
): ClassificationMetrics {
  const n = truth.length;
  const predicted = predictedClasses(probabilities, n, classes);
  return {
    task: 'multiclass',
    n,
    accuracy: accuracy(truth, predicted),
    balancedAccuracy: balancedAccuracy(truth, predicted, classes),
    auc: macroOvrAuc(probabilities, truth, classes),
    f1: f1Score(truth, predicted, classes, 'macro'),
    confusionMatrix: confusionMatrix(truth, predicted, classes),
  };
}

/** Every metric of a regression model. */
export function regressionMetrics(predicted: ArrayLike<number>, truth: ArrayLike<number>): RegressionMetrics {
  return {
    task: 'regression',
    n: truth.length,
    mae: meanAbsoluteError(truth, predicted),
    rmse: rootMeanSquaredError(truth, predicted),
    r2: r2Score(truth, predicted),
  };
}
