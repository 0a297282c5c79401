// What a silo reports about evaluating a model, and the figures the hub shows for it: the payloads each plan's
// release.evaluation allows (noisy histogram, exact metrics, a network plan's task metrics) and their reading.

import { z } from 'zod';

/**
 * The global model evaluated on a silo's own held-out split, as the hub stores and shows it: counts, never records.
 * `noisy` marks figures estimated from a DP release (see NoisyEvaluation): their n and positives are noisy
 * estimates and their loss is unknown.
 */
export const EvaluationMetrics = z
  .object({
    loss: z.number().finite().nullable(),
    /** Fraction correct; null for a regression task, which has no classes. */
    accuracy: z.number().min(0).max(1).nullable(),
    /** ROC AUC: binary, or the macro one-vs-rest mean for multiclass; null when undefined or for regression. */
    auc: z.number().min(0).max(1).nullable(),
    n: z.number().int().min(0),
    /** Test records with label 1 (binary tasks); 0 for multiclass and regression tasks. */
    positives: z.number().int().min(0),
    noisy: z.boolean().optional(),
    /**
     * The task a network plan learns, and its further metrics (TaskMetricsRelease). Absent for the registry models'
     * evaluations (binary, as every evaluation before network plans).
     */
    task: z.enum(['binary', 'multiclass', 'regression']).optional(),
    balancedAccuracy: z.number().min(0).max(1).nullable().optional(),
    f1: z.number().min(0).max(1).optional(),
    confusionMatrix: z.array(z.array(z.number().int().min(0))).optional(),
    mae: z.number().finite().min(0).optional(),
    rmse: z.number().finite().min(0).optional(),
    r2: z.number().finite().optional(),
  })
  .strict();
export type EvaluationMetrics = z.infer<typeof EvaluationMetrics>;

/**
 * A silo's own models at the final evaluation of a personalizing plan (plan.personalization), as the hub stores and
 * shows them beside the global model's figures: the personalized model's and, when planned, the local-only
 * baseline's. The models stay at the silo.
 */
export const PersonalizationMetrics = z
  .object({ personalized: EvaluationMetrics, localBaseline: EvaluationMetrics.nullable() })
  .strict();
export type PersonalizationMetrics = z.infer<typeof PersonalizationMetrics>;

/** A noisy histogram's bins: 2 to 20 integer counts (noise can make them negative), bounded so sums stay exact. */
const noisyBinCounts = z
  .array(
    z
      .number()
      .int()
      .min(-(2 ** 40))
      .max(2 ** 40),
  )
  .min(2)
  .max(20);

/**
 * A differentially private evaluation (plan release.evaluation 'noisy'): for each true label, the histogram of the
 * model's predicted probability over the silo's test records in B equal bins of [0, 1] (bin b holds scores in
 * [b/B, (b+1)/B), the last bin includes 1), each count plus independent discrete Gaussian noise of standard
 * deviation `noiseStddev` (counts, on the integers). One test record changes one count by one.
 */
export const NoisyEvaluation = z
  .object({
    kind: z.literal('noisy-histogram'),
    noiseStddev: z.number().positive(),
    negatives: noisyBinCounts,
    positives: noisyBinCounts,
  })
  .strict()
  .refine((e) => e.negatives.length === e.positives.length, 'negatives and positives need the same number of bins');
export type NoisyEvaluation = z.infer<typeof NoisyEvaluation>;

/** Exact metrics, released without DP (plan release.evaluation 'exact'). */
export const ExactEvaluation = z
  .object({
    kind: z.literal('exact'),
    loss: z.number().finite(),
    accuracy: z.number().min(0).max(1),
    auc: z.number().min(0).max(1).nullable(),
    n: z.number().int().min(0),
    positives: z.number().int().min(0),
  })
  .strict();
export type ExactEvaluation = z.infer<typeof ExactEvaluation>;

/** Largest multiclass confusion matrix a report carries (K × K); for more classes the matrix stays in the silo. */
export const MAX_REPORTED_CONFUSION_CLASSES = 64;

const unit = z.number().min(0).max(1);
const count = z.number().int().min(0);

/**
 * The metrics of a network plan's task on a silo's held-out split (scikit-learn's definitions, docs/models.md):
 * binary — accuracy at P ≥ 0.5, balanced accuracy, AUC, F1 of class 1; multiclass — accuracy, balanced accuracy,
 * macro one-vs-rest AUC, macro F1 and the confusion matrix (row = true class; up to MAX_REPORTED_CONFUSION_CLASSES
 * classes); regression — MAE, RMSE (in the label column's units) and R².
 */
export const TaskMetricsRelease = z.discriminatedUnion('task', [
  z
    .object({
      task: z.literal('binary'),
      accuracy: unit,
      balancedAccuracy: unit.nullable(),
      auc: unit.nullable(),
      f1: unit,
      positives: count,
    })
    .strict(),
  z
    .object({
      task: z.literal('multiclass'),
      accuracy: unit,
      balancedAccuracy: unit.nullable(),
      auc: unit.nullable(),
      f1: unit,
      confusionMatrix: z
        .array(z.array(count).max(MAX_REPORTED_CONFUSION_CLASSES))
        .max(MAX_REPORTED_CONFUSION_CLASSES)
        .optional(),
    })
    .strict(),
  z
    .object({
      task: z.literal('regression'),
      mae: z.number().finite().min(0),
      rmse: z.number().finite().min(0),
      r2: z.number().finite(),
    })
    .strict(),
]);
export type TaskMetricsRelease = z.infer<typeof TaskMetricsRelease>;

/**
 * Exact metrics of a network plan's task (plan release.evaluation 'exact'), released without DP as the steward
 * consented: the mean task loss, the test size, and the task's metrics.
 */
export const TaskEvaluation = z
  .object({
    kind: z.literal('task-metrics'),
    loss: z.number().finite(),
    n: count,
    metrics: TaskMetricsRelease,
  })
  .strict();
export type TaskEvaluation = z.infer<typeof TaskEvaluation>;

/**
 * What a silo sends about its evaluation: exactly what its plan's release.evaluation allows ('exact' is ExactEvaluation
 * for the registry models, TaskEvaluation for network plans).
 */
export const EvaluationPayload = z.union([NoisyEvaluation, ExactEvaluation, TaskEvaluation]);
export type EvaluationPayload = z.infer<typeof EvaluationPayload>;

function metricsOfTask(payload: TaskEvaluation): EvaluationMetrics {
  const m = payload.metrics;
  const base = { loss: payload.loss, n: payload.n, task: m.task };
  switch (m.task) {
    case 'binary':
      return {
        ...base,
        accuracy: m.accuracy,
        auc: m.auc,
        positives: m.positives,
        balancedAccuracy: m.balancedAccuracy,
        f1: m.f1,
      };
    case 'multiclass':
      return {
        ...base,
        accuracy: m.accuracy,
        auc: m.auc,
        positives: 0,
        balancedAccuracy: m.balancedAccuracy,
        f1: m.f1,
        ...(m.confusionMatrix ? { confusionMatrix: m.confusionMatrix } : {}),
      };
    case 'regression':
      return { ...base, accuracy: null, auc: null, positives: 0, mae: m.mae, rmse: m.rmse, r2: m.r2 };
  }
}

/**
 * The figures the hub shows for an evaluation payload. From a noisy histogram (post-processing, no extra privacy
 * cost): counts clamped at 0, n and positives their sums, accuracy at threshold 0.5 (bins wholly above or below;
 * with an odd B the middle bin counts half), AUC from the binned scores (pairs in the same bin count 1/2).
 */
export function metricsOfEvaluation(payload: EvaluationPayload): EvaluationMetrics {
  if (payload.kind === 'task-metrics') return metricsOfTask(payload);
  if (payload.kind === 'exact') {
    const { kind: _kind, ...metrics } = payload;
    return metrics;
  }
  const neg = payload.negatives.map((c) => Math.max(0, c));
  const pos = payload.positives.map((c) => Math.max(0, c));
  const bins = neg.length;
  const nNeg = neg.reduce((a, b) => a + b, 0);
  const nPos = pos.reduce((a, b) => a + b, 0);
  const n = nNeg + nPos;
  let correct = 0;
  for (let b = 0; b < bins; b++) {
    const upper = (b + 1) / bins;
    const lower = b / bins;
    if (lower >= 0.5) correct += pos[b]!;
    else if (upper <= 0.5) correct += neg[b]!;
    else correct += (pos[b]! + neg[b]!) / 2;
  }
  let auc: number | null = null;
  if (nNeg > 0 && nPos > 0) {
    let below = 0;
    let wins = 0;
    for (let b = 0; b < bins; b++) {
      wins += pos[b]! * (below + neg[b]! / 2);
      below += neg[b]!;
    }
    auc = wins / (nNeg * nPos);
  }
  return { loss: null, accuracy: n > 0 ? correct / n : 0, auc, n, positives: nPos, noisy: true };
}
