import type { EvaluationMetrics } from '@tessera/protocol';
import type { RoundParticipantEntity } from '../study-state/round-participant.entity';
import type { RoundEntity, RoundSummary } from '../study-state/round.entity';
import type { StudyEntity } from '../study-state/study.entity';

/** The figures a round's close records (RoundCloser): counts, examples, and the means of the silos' evaluations. */

function mean(values: number[]): number | null {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}

function weightedMean(pairs: [number, number][]): number | null {
  const w = pairs.reduce((a, [, n]) => a + n, 0);
  return w > 0 ? pairs.reduce((a, [v, n]) => a + v * n, 0) / w : null;
}

/**
 * Means over silos of their evaluations. Noisy evaluations (DP releases) carry no loss and noisy test sizes: their
 * loss means are null and their weights are the noisy n (post-processing of the release, no further cost).
 */
export function summarizeEvaluations(evals: EvaluationMetrics[]): RoundSummary['evaluation'] {
  const withLoss = evals.flatMap((e) => (e.loss === null ? [] : [{ loss: e.loss, n: e.n }]));
  const withAccuracy = evals.flatMap((e) => (e.accuracy === null ? [] : [{ value: e.accuracy, n: e.n }]));
  return {
    accuracy: {
      unweighted: mean(withAccuracy.map((e) => e.value)),
      weighted: weightedMean(withAccuracy.map((e) => [e.value, e.n])),
    },
    loss: {
      unweighted: mean(withLoss.map((e) => e.loss)),
      weighted: weightedMean(withLoss.map((e) => [e.loss, e.n])),
    },
    auc: { unweighted: mean(evals.flatMap((e) => (e.auc === null ? [] : [e.auc]))) },
    noisy: evals.some((e) => e.noisy === true),
    ...summarizeTaskMetrics(evals),
  };
}

/** The task metrics of network plans (absent from registry evaluations, and then from the summary). */
const TASK_METRICS = ['balancedAccuracy', 'f1', 'mae', 'rmse', 'r2'] as const;

function summarizeTaskMetrics(evals: EvaluationMetrics[]): Partial<RoundSummary['evaluation']> {
  const out: Partial<RoundSummary['evaluation']> = {};
  for (const metric of TASK_METRICS) {
    const pairs = evals.flatMap((e): [number, number][] => {
      const value = e[metric];
      return typeof value === 'number' ? [[value, e.n]] : [];
    });
    if (pairs.length > 0) {
      out[metric] = { unweighted: mean(pairs.map(([v]) => v)), weighted: weightedMean(pairs) };
    }
  }
  return out;
}

/** The round's figures as recorded at its close. */
export function summaryOf(
  study: StudyEntity,
  round: RoundEntity,
  participants: RoundParticipantEntity[],
): RoundSummary {
  const reported = participants.filter((p) => p.status === 'uploaded' || p.status === 'evaluated');
  return {
    reported: reported.length,
    participants: participants.length,
    // Only plans that release the record counts have them (release.trainingExamples 'exact').
    totalExamples:
      study.plan.release.trainingExamples === 'exact' && round.kind === 'train'
        ? reported.reduce((a, p) => a + (p.numExamples ?? 0), 0)
        : null,
    evaluation: summarizeEvaluations(reported.flatMap((p) => (p.evaluation ? [p.evaluation] : []))),
  };
}
