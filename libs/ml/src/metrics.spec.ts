import { describe, expect, it } from 'vitest';
import {
  accuracy,
  balancedAccuracy,
  binaryMetrics,
  confusionMatrix,
  f1Score,
  macroOvrAuc,
  meanAbsoluteError,
  multiclassMetrics,
  predictedClasses,
  r2Score,
  regressionMetrics,
  rootMeanSquaredError,
} from './metrics';

// Reference values: the examples of scikit-learn's documentation (sklearn.metrics docstrings), and hand computations
// written out beside the assertions.
describe('classification metrics against scikit-learn’s documented examples', () => {
  it('accuracy_score([0, 1, 2, 3], [0, 2, 1, 3]) = 0.5', () => {
    expect(accuracy([0, 1, 2, 3], [0, 2, 1, 3])).toBe(0.5);
  });

  it('confusion_matrix([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2]) = [[2, 0, 0], [0, 0, 1], [1, 0, 2]]', () => {
    expect(confusionMatrix([2, 0, 2, 2, 0, 1], [0, 0, 2, 2, 0, 2], 3)).toEqual([
      [2, 0, 0],
      [0, 0, 1],
      [1, 0, 2],
    ]);
  });

  it('balanced_accuracy_score([0, 1, 0, 0, 1, 0], [0, 1, 0, 0, 0, 1]) = 0.625', () => {
    expect(balancedAccuracy([0, 1, 0, 0, 1, 0], [0, 1, 0, 0, 0, 1], 2)).toBeCloseTo(0.625, 12);
  });

  it('f1_score([0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1], average="macro") = 0.2666…', () => {
    // Per class: F1 = 0.8 (class 0), 0 (class 1), 0 (class 2).
    expect(f1Score([0, 1, 2, 0, 1, 2], [0, 2, 1, 0, 0, 1], 3, 'macro')).toBeCloseTo(0.8 / 3, 12);
  });

  it('binary F1 is that of class 1: TP 2, FP 1, FN 1 gives 2·2/(4 + 2) = 2/3', () => {
    expect(f1Score([1, 1, 1, 0, 0, 0], [1, 1, 0, 1, 0, 0], 2, 'binary')).toBeCloseTo(2 / 3, 12);
    expect(f1Score([0, 0], [0, 0], 2, 'binary')).toBe(0);
  });

  it('roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.75', () => {
    expect(binaryMetrics([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]).auc).toBeCloseTo(0.75, 12);
  });

  it('macro one-vs-rest AUC is the mean of the per-class AUCs (hand computed)', () => {
    // Three examples of classes 0, 1, 2. Class 0 scores (0.7, 0.2, 0.3): the positive outranks both → 1. Class 1
    // scores (0.2, 0.5, 0.6): the positive (0.5) is below one negative (0.6) → 1/2. Class 2 (0.1, 0.3, 0.1): the
    // positive (0.1) ties one negative and is below the other → (0.5 + 0)/2 = 0.25. Mean: 1.75/3.
    const probabilities = [0.7, 0.2, 0.1, 0.2, 0.5, 0.3, 0.3, 0.6, 0.1];
    expect(macroOvrAuc(probabilities, [0, 1, 2], 3)).toBeCloseTo(1.75 / 3, 12);
    // A class without any example has no AUC and does not count.
    expect(macroOvrAuc([0.9, 0.1, 0.0, 0.2, 0.8, 0.0], [0, 1], 3)).toBe(1);
  });

  it('gathers every metric of a multiclass model, predicting by argmax', () => {
    const probabilities = [0.6, 0.3, 0.1, 0.1, 0.2, 0.7, 0.3, 0.4, 0.3, 0.2, 0.5, 0.3];
    const metrics = multiclassMetrics(probabilities, [0, 2, 1, 0], 3);
    expect(Array.from(predictedClasses(probabilities, 4, 3))).toEqual([0, 2, 1, 1]);
    expect(metrics.accuracy).toBe(0.75);
    // Recalls: class 0 1/2, class 1 1/1, class 2 1/1.
    expect(metrics.balancedAccuracy).toBeCloseTo(2.5 / 3, 12);
    expect(metrics.confusionMatrix).toEqual([
      [1, 1, 0],
      [0, 1, 0],
      [0, 0, 1],
    ]);
    // F1: class 0 2/3, class 1 2/3, class 2 1.
    expect(metrics.f1).toBeCloseTo((2 / 3 + 2 / 3 + 1) / 3, 12);
  });

  it('refuses labels outside the classes', () => {
    expect(() => confusionMatrix([0, 3], [0, 1], 3)).toThrow(RangeError);
    expect(() => confusionMatrix([0, 0.5], [0, 1], 3)).toThrow(RangeError);
  });
});

describe('regression metrics against scikit-learn’s documented examples', () => {
  const truth = [3, -0.5, 2, 7];
  const predicted = [2.5, 0.0, 2, 8];

  it('mean_absolute_error = 0.5, root_mean_squared_error = √0.375, r2_score = 0.948…', () => {
    expect(meanAbsoluteError(truth, predicted)).toBeCloseTo(0.5, 12);
    expect(rootMeanSquaredError(truth, predicted)).toBeCloseTo(Math.sqrt(0.375), 12);
    // 1 − 1.5 / 29.1875
    expect(r2Score(truth, predicted)).toBeCloseTo(0.9486081370449679, 12);
    expect(regressionMetrics(predicted, truth)).toEqual({
      task: 'regression',
      n: 4,
      mae: 0.5,
      rmse: Math.sqrt(0.375),
      r2: 1 - 1.5 / 29.1875,
    });
  });

  it('r2_score: perfect 1, mean prediction 0, reversed −3, constant labels 1 or 0', () => {
    expect(r2Score([1, 2, 3], [1, 2, 3])).toBe(1);
    expect(r2Score([1, 2, 3], [2, 2, 2])).toBe(0);
    expect(r2Score([1, 2, 3], [3, 2, 1])).toBe(-3);
    expect(r2Score([-2, -2, -2], [-2, -2, -2])).toBe(1);
    expect(r2Score([-2, -2, -2], [-2, -2, -2 + 1e-8])).toBe(0);
  });
});
