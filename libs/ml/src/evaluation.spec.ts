import { metricsOfEvaluation } from '@tessera/protocol';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';
import { evaluate, rocAuc, scoreHistograms } from './evaluation';
import { ModelSpecException, TrainingInputErrorCode, TrainingInputException } from './ml.exception';
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

describe('scoreHistograms', () => {
  const spec: ModelSpec = { kind: 'logistic-regression', inputDim: 1 };
  const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

  it('counts P(y = 1) per true label in B equal bins, bin b = [b/B, (b+1)/B), the last one including 1', async () => {
    // p = sigmoid(x) with weight 1, bias 0: x = −2 → 0.119 (bin 0), 0 → exactly 0.5 (bin 2), 0.5 → 0.622 (bin 2),
    // 2 → 0.881 (bin 3), 40 → 1 in float32 (bin 3, the closed upper end).
    const x = [-2, 0, 0.5, 2, 40];
    expect(x.map((v) => Math.min(3, Math.floor(Math.fround(sigmoid(v)) * 4)))).toEqual([0, 2, 2, 3, 3]);
    const histograms = await scoreHistograms(
      spec,
      Float32Array.of(1, 0),
      Float32Array.from(x),
      Uint8Array.of(0, 1, 0, 1, 1),
      4,
    );
    expect(histograms).toEqual({ negatives: [1, 0, 1, 0], positives: [0, 0, 1, 2] });
  });

  it("gives evaluate()'s accuracy exactly through the protocol's metrics (even B), and the AUC up to tied bins", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          weights: fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 3, maxLength: 3 }),
          rows: fc.array(
            fc.tuple(
              fc.array(fc.double({ min: -4, max: 4, noNaN: true }), { minLength: 2, maxLength: 2 }),
              fc.boolean(),
            ),
            { minLength: 1, maxLength: 60 },
          ),
          halfBins: fc.integer({ min: 1, max: 10 }),
        }),
        async ({ weights, rows, halfBins }) => {
          const two: ModelSpec = { kind: 'logistic-regression', inputDim: 2 };
          const parameters = Float32Array.from(weights);
          const x = Float32Array.from(rows.flatMap(([features]) => features));
          const y = Uint8Array.from(rows, ([, label]) => (label ? 1 : 0));
          const bins = 2 * halfBins;
          const exact = await evaluate(two, parameters, x, y);
          const histograms = await scoreHistograms(two, parameters, x, y, bins);
          // The noise level does not enter the post-processing; the protocol requires a positive one.
          const binned = metricsOfEvaluation({ kind: 'noisy-histogram', noiseStddev: 1, ...histograms });
          expect(binned.n).toBe(exact.n);
          expect(binned.positives).toBe(exact.positives);
          expect(binned.accuracy).toBe(exact.accuracy);
          if (exact.auc === null) {
            expect(binned.auc).toBeNull();
            return;
          }
          // Binning only turns pairs that share a bin into ties (worth 1/2): the AUC moves by at most half their share.
          const negatives = exact.n - exact.positives;
          const shared = histograms.negatives.reduce((sum, c, b) => sum + c * histograms.positives[b]!, 0);
          expect(Math.abs(binned.auc! - exact.auc)).toBeLessThanOrEqual(
            shared / (2 * exact.positives * negatives) + 1e-12,
          );
        },
      ),
      { numRuns: 40 },
    );
  });

  it('refuses a bin count outside [2, 1024] and a multi-class model', async () => {
    const run = (bins: number) =>
      scoreHistograms(spec, Float32Array.of(1, 0), Float32Array.of(1), Uint8Array.of(1), bins);
    for (const bins of [1, 2.5, 1025, Number.NaN]) {
      await expect(run(bins)).rejects.toMatchObject({ code: TrainingInputErrorCode.Bins });
    }
    await expect(run(2)).resolves.toEqual({ negatives: [0, 0], positives: [0, 1] });
    const multi: ModelSpec = {
      kind: 'mlp',
      inputDim: 1,
      hiddenLayers: [],
      activation: 'relu',
      task: 'multiclass',
      classes: 3,
    };
    await expect(
      scoreHistograms(multi, new Float32Array(6), Float32Array.of(1), Uint8Array.of(1), 4),
    ).rejects.toBeInstanceOf(ModelSpecException);
  });
});
