import { describe, expect, it } from 'vitest';
import { EvaluationPayload, metricsOfEvaluation, UpdateHeader } from './rounds';

describe('metrics of an evaluation payload', () => {
  it('passes exact metrics through', () => {
    expect(metricsOfEvaluation({ kind: 'exact', loss: 0.5, accuracy: 0.75, auc: 0.8, n: 40, positives: 18 })).toEqual({
      loss: 0.5,
      accuracy: 0.75,
      auc: 0.8,
      n: 40,
      positives: 18,
    });
  });

  it('reads accuracy and AUC off noiseless histograms like the exact figures', () => {
    // 4 bins: [0, .25) [.25, .5) [.5, .75) [.75, 1]. Negatives mostly low, positives mostly high.
    const negatives = [10, 6, 3, 1];
    const positives = [1, 2, 5, 12];
    const m = metricsOfEvaluation({ kind: 'noisy-histogram', noiseStddev: 1, negatives, positives });
    expect(m.n).toBe(40);
    expect(m.positives).toBe(20);
    expect(m.accuracy).toBeCloseTo((10 + 6 + 5 + 12) / 40, 12);
    // Mann–Whitney over bins, ties in a bin count 1/2: Σ_b pos_b·(neg below b + neg_b/2) / (20·20).
    const wins = 1 * (0 + 5) + 2 * (10 + 3) + 5 * (16 + 1.5) + 12 * (19 + 0.5);
    expect(m.auc).toBeCloseTo(wins / 400, 12);
    expect(m.loss).toBeNull();
    expect(m.noisy).toBe(true);
  });

  it('clamps negative noisy counts and counts an odd middle bin half', () => {
    const m = metricsOfEvaluation({
      kind: 'noisy-histogram',
      noiseStddev: 3,
      negatives: [5, -2, 0],
      positives: [-1, 4, 6],
    });
    expect(m.n).toBe(15);
    expect(m.positives).toBe(10);
    expect(m.accuracy).toBeCloseTo((5 + 6 + 4 / 2) / 15, 12);
  });

  it('has no AUC when a class is empty', () => {
    const m = metricsOfEvaluation({ kind: 'noisy-histogram', noiseStddev: 3, negatives: [-3, -1], positives: [2, 5] });
    expect(m.auc).toBeNull();
    expect(m.accuracy).toBeCloseTo(5 / 7, 12);
  });

  it('refuses histograms of different lengths', () => {
    expect(
      EvaluationPayload.safeParse({ kind: 'noisy-histogram', noiseStddev: 1, negatives: [1, 2], positives: [1, 2, 3] })
        .success,
    ).toBe(false);
  });
});

describe('update header', () => {
  const header = {
    studyId: '6f1d2b8e-0f6e-4f55-9a59-4c8f1f5d2a11',
    round: 1,
    attempt: 1,
    planHash: 'a'.repeat(64),
    baseModelHash: 'b'.repeat(64),
    numExamples: null,
    length: 14,
    payloadSha256: 'c'.repeat(64),
    l2Norm: 0.5,
    evaluation: null,
    privacy: null,
  };

  it('accepts a header that releases no count, no loss and no evaluation', () => {
    expect(UpdateHeader.safeParse(header).success).toBe(true);
  });

  it('refuses a training loss and an absurd record count', () => {
    expect(UpdateHeader.safeParse({ ...header, trainLoss: 0.3 }).success).toBe(false);
    expect(UpdateHeader.safeParse({ ...header, numExamples: 2 ** 31 - 1 }).success).toBe(false);
    expect(UpdateHeader.safeParse({ ...header, numExamples: 1_000_000_000 }).success).toBe(true);
  });
});
