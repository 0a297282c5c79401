import type { PrivacyMechanism } from '@tessera/dp';
import type { EvaluationPayload, EvaluationReport, StudyPlan, UpdateHeader } from '@tessera/protocol';

/** Relative slack on the evaluation noise: hub and agent derive it with the same code from the plan. */
const NOISE_SLACK = 1e-9;

/**
 * Why an evaluation payload is not what the plan releases, or null. `where` names the field in the message.
 * 'noisy' needs a score histogram with the plan's number of bins and at least the plan's noise; 'exact' needs the
 * exact metrics; 'none' releases nothing.
 */
export function evaluationPayloadProblem(
  plan: StudyPlan,
  m: PrivacyMechanism | null,
  payload: EvaluationPayload,
  where: string,
): string | null {
  const release = plan.release.evaluation;
  switch (release.mode) {
    case 'none':
      return `${where}: this plan releases no evaluation (release.evaluation.mode 'none'); send null`;
    case 'exact': {
      // Registry models release ExactEvaluation; network plans their task's metrics (TaskEvaluation) for that task.
      if (plan.model.kind !== 'network') {
        return payload.kind === 'exact'
          ? null
          : `${where}: this plan releases exact metrics (release.evaluation.mode 'exact'), not a ${payload.kind}`;
      }
      const task = plan.model.network.task.kind;
      if (payload.kind !== 'task-metrics') {
        return `${where}: this network plan releases its task's exact metrics (kind 'task-metrics'), not a ${payload.kind}`;
      }
      return payload.metrics.task === task
        ? null
        : `${where}.metrics.task: the plan's network learns a ${task} task, not ${payload.metrics.task}`;
    }
    case 'noisy': {
      if (payload.kind !== 'noisy-histogram') {
        return `${where}: this plan releases only a noisy score histogram (release.evaluation.mode 'noisy'); exact metrics are refused`;
      }
      if (payload.negatives.length !== release.scoreBins) {
        return `${where}: the histogram has ${payload.negatives.length} bins; the plan's release.evaluation.scoreBins is ${release.scoreBins}`;
      }
      const planned = m?.evaluation?.noiseStddev;
      if (planned === undefined) {
        return `${where}: this plan has no evaluation noise to check against (privacy mode ${plan.privacy.mode})`;
      }
      if (payload.noiseStddev < planned * (1 - NOISE_SLACK)) {
        return `${where}.noiseStddev: ${payload.noiseStddev} is below the plan's evaluation noise ${planned} (less noise than the stewards approved)`;
      }
      return null;
    }
  }
}

/**
 * Why an update header releases more than the plan allows, or null: the training-record count only when the plan
 * releases it ('exact', and then required: it weights FedAvg), an evaluation only when the plan evaluates every
 * round (and then of the plan's kind).
 */
export function updateReleaseProblem(plan: StudyPlan, m: PrivacyMechanism | null, h: UpdateHeader): string | null {
  if (plan.release.trainingExamples === 'none' && h.numExamples !== null) {
    return "numExamples: this plan does not release the training-record count (release.trainingExamples 'none'); send null";
  }
  if (plan.release.trainingExamples === 'exact' && h.numExamples === null) {
    return "numExamples: this plan releases the training-record count (release.trainingExamples 'exact') as the FedAvg weight; it is missing";
  }
  if (h.evaluation === null) return null;
  const release = plan.release.evaluation;
  if (release.mode === 'none' || release.rounds !== 'every') {
    return `evaluation: this plan releases no evaluation with the updates (release.evaluation ${release.mode === 'none' ? "mode 'none'" : "rounds 'final'"}); send null`;
  }
  return evaluationPayloadProblem(plan, m, h.evaluation, 'evaluation');
}

/** Why an evaluation report's payload is not what the plan releases, or null (null only for mode 'none'). */
export function evaluationReportProblem(
  plan: StudyPlan,
  m: PrivacyMechanism | null,
  payload: EvaluationPayload | null,
): string | null {
  if (payload === null) {
    return plan.release.evaluation.mode === 'none'
      ? null
      : `evaluation: this plan releases the evaluation (release.evaluation.mode '${plan.release.evaluation.mode}'); it is missing`;
  }
  return evaluationPayloadProblem(plan, m, payload, 'evaluation');
}

/**
 * Why an evaluation report's personal models' payloads (plan.personalization) are not what the plan releases, or
 * null: with personalization and a release, the personalized model's payload (and the local baseline's when planned),
 * each of the global model's kind; without, neither.
 */
export function personalizationReportProblem(
  plan: StudyPlan,
  m: PrivacyMechanism | null,
  report: Pick<EvaluationReport, 'personalized' | 'localBaseline'>,
): string | null {
  const p = plan.personalization;
  const released = p !== undefined && plan.release.evaluation.mode !== 'none';
  const expected = {
    personalized: released,
    localBaseline: released && p.localBaseline === true,
  };
  for (const field of ['personalized', 'localBaseline'] as const) {
    const payload = report[field];
    if (payload === undefined) {
      if (expected[field]) return `${field}: this plan releases the ${field} model's evaluation; it is missing`;
      continue;
    }
    if (!expected[field]) {
      return `${field}: this plan releases no ${field} model evaluation (plan.personalization${field === 'localBaseline' ? '.localBaseline' : ''}); leave it out`;
    }
    const problem = evaluationPayloadProblem(plan, m, payload, field);
    if (problem) return problem;
  }
  return null;
}
