import { describe, expect, it } from 'vitest';
import { EvaluationPayload, EvaluationReport, metricsOfEvaluation } from './rounds';

const hash = 'a'.repeat(64);

describe('task-metrics evaluations (network plans)', () => {
  it('keeps a report of the registry models valid as it was', () => {
    const report = {
      round: 1,
      attempt: 1,
      planHash: hash,
      modelHash: hash,
      evaluation: { kind: 'exact', loss: 0.5, accuracy: 0.75, auc: 0.8, n: 40, positives: 18 },
      privacy: null,
    };
    expect(EvaluationReport.parse(report)).toEqual(report);
  });

  it('shows a multiclass release with its confusion matrix, and a regression without accuracy', () => {
    const multiclass = EvaluationPayload.parse({
      kind: 'task-metrics',
      loss: 0.9,
      n: 6,
      metrics: {
        task: 'multiclass',
        accuracy: 0.5,
        balancedAccuracy: 0.5,
        auc: 0.7,
        f1: 0.4,
        confusionMatrix: [
          [2, 1],
          [2, 1],
        ],
      },
    });
    expect(metricsOfEvaluation(multiclass)).toEqual({
      loss: 0.9,
      n: 6,
      task: 'multiclass',
      accuracy: 0.5,
      auc: 0.7,
      positives: 0,
      balancedAccuracy: 0.5,
      f1: 0.4,
      confusionMatrix: [
        [2, 1],
        [2, 1],
      ],
    });
    const regression = EvaluationPayload.parse({
      kind: 'task-metrics',
      loss: 0.2,
      n: 10,
      metrics: { task: 'regression', mae: 12.5, rmse: 16, r2: -0.3 },
    });
    expect(metricsOfEvaluation(regression)).toMatchObject({ accuracy: null, auc: null, mae: 12.5, rmse: 16, r2: -0.3 });
  });

  it('refuses impossible figures', () => {
    const bad = (metrics: object) =>
      EvaluationPayload.safeParse({ kind: 'task-metrics', loss: 1, n: 3, metrics }).success;
    expect(bad({ task: 'regression', mae: -1, rmse: 1, r2: 0 })).toBe(false);
    expect(bad({ task: 'binary', accuracy: 1.2, balancedAccuracy: null, auc: null, f1: 0, positives: 1 })).toBe(false);
    expect(bad({ task: 'multiclass', accuracy: 1, balancedAccuracy: 1, auc: 1, f1: 1, confusionMatrix: [[-1]] })).toBe(
      false,
    );
  });
});
