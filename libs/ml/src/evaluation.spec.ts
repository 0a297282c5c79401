import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';
import { evaluate, rocAuc } from './evaluation';
import { TrainingInputException } from './ml.exception';
import type { ModelSpec } from './model-spec';

/** Brute force over all positive/negative pairs, ties counting 1/2: the definition the rank formula must match. */
function pairwiseAuc(scores: number[], labels: boolean[]): number | null {
  let wins = 0;
  let pairs = 0;
  scores.forEach((s, i) => {
    if (!labels[i]) return;
    scores.forEach((t, j) => {
      if (labels[j]) return;
      pairs++;
      wins += s > t ? 1 : s === t ? 0.5 : 0;
    });
  });
  return pairs === 0 ? null : wins / pairs;
}

beforeAll(async () => {
  await selectBackend('cpu');
});

describe('rocAuc', () => {
  it('matches the scikit-learn documentation example', () => {
    // https://scikit-learn.org/stable/modules/model_evaluation.html#roc-metrics (roc_auc_score example):
    // y_true = [0, 0, 1, 1], y_scores = [0.1, 0.4, 0.35, 0.8] → 0.75
    expect(rocAuc([0.1, 0.4, 0.35, 0.8], [false, false, true, true])).toBe(0.75);
  });

  it('gives 1/2 to tied pairs and null when a class is missing', () => {
    expect(rocAuc([0.5, 0.5, 0.5], [true, false, false])).toBe(0.5);
    expect(rocAuc([0.1, 0.2], [true, true])).toBeNull();
  });

  it('equals the pairwise Mann–Whitney count, ties included (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 5 }), fc.boolean()), { minLength: 1, maxLength: 40 }),
        (rows) => {
          const scores = rows.map(([s]) => s / 5);
          const labels = rows.map(([, l]) => l);
          const expected = pairwiseAuc(scores, labels);
          const actual = rocAuc(scores, labels);
          if (expected === null) expect(actual).toBeNull();
          else expect(actual).toBeCloseTo(expected, 12);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('evaluate', () => {
  const spec: ModelSpec = { kind: 'logistic-regression', inputDim: 1 };
  it('computes loss, accuracy at 0.5, AUC and counts for a hand-checked model', async () => {
    // p = sigmoid(x): x = -2, -1, 1, 2 → predictions 0, 0, 1, 1 against labels 0, 1, 1, 0.
    const metrics = await evaluate(
      spec,
      Float32Array.of(1, 0),
      Float32Array.of(-2, -1, 1, 2),
      Uint8Array.of(0, 1, 1, 0),
    );
    const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
    const loss =
      -(Math.log(1 - sigmoid(-2)) + Math.log(sigmoid(-1)) + Math.log(sigmoid(1)) + Math.log(1 - sigmoid(2))) / 4;
    expect(metrics.loss).toBeCloseTo(loss, 5);
    expect(metrics).toMatchObject({ accuracy: 0.5, auc: 0.5, n: 4, positives: 2 });
  });

  it('uses argmax and mean one-vs-rest AUC for multi-class models', async () => {
    const multi: ModelSpec = {
      kind: 'mlp',
      inputDim: 2,
      hiddenLayers: [],
      activation: 'relu',
      task: 'multiclass',
      classes: 2,
    };
    // Kernel = identity, zero bias: the predicted class is the larger coordinate.
    const metrics = await evaluate(
      multi,
      Float32Array.of(1, 0, 0, 1, 0, 0),
      Float32Array.of(2, 0, 0, 2, 3, 1),
      Int32Array.of(0, 1, 1),
    );
    expect(metrics.accuracy).toBeCloseTo(2 / 3, 10);
    expect(metrics.positives).toBe(2);
    // Rows 1 and 3 get the same softmax (logit gap 2), so each one-vs-rest AUC is (1 + 1/2) / 2.
    expect(metrics.auc).toBeCloseTo(0.75, 6);
  });

  it('rejects mismatched shapes', async () => {
    await expect(evaluate(spec, Float32Array.of(1, 0), Float32Array.of(1, 2), Uint8Array.of(0))).rejects.toThrow(
      TrainingInputException,
    );
  });
});
