import { z } from 'zod';
import type { StudyPlan } from './study-plan';

/*
 * The plan's `personalization` block (docs/personalization.md): what each silo does with the final global model at
 * the study's final evaluation. The personalized model (and the local-only baseline) stay at the silo; only their
 * test-split metrics leave it, through the plan's evaluation release (exact, or noisy and charged).
 */

export const PersonalizationPlan = z
  .object({
    /** 'fine-tune': the final global model trained further on the silo's own training split. */
    method: z.literal('fine-tune'),
    /** Local epochs of fine-tuning over the silo's training split. */
    epochs: z.number().int().min(1).max(100),
    /** Learning rate of the fine-tuning; absent: the plan's training.learningRate. */
    learningRate: z.number().finite().positive().max(10).optional(),
    /**
     * true: each silo also trains a model on its own training split alone (from the plan's initial model, for the
     * study's total local epochs, rounds × localEpochs) and reports its metrics, the fairness view's baseline.
     */
    localBaseline: z.boolean().optional(),
  })
  .strict();
export type PersonalizationPlan = z.infer<typeof PersonalizationPlan>;

/** Local models a plan's final evaluation evaluates besides the global one: personalized, then the baseline. */
export function personalizationModels(plan: StudyPlan): ('personalized' | 'local-baseline')[] {
  const p = plan.personalization;
  if (!p) return [];
  return p.localBaseline ? ['personalized', 'local-baseline'] : ['personalized'];
}

/** Local epochs of the local-only baseline: the study's total local epochs at one silo. */
export function localBaselineEpochs(plan: StudyPlan): number {
  return plan.training.rounds * plan.training.localEpochs;
}

/** Problems of a plan's `personalization` block against the rest of the plan, each naming its field path. */
export function personalizationProblems(plan: StudyPlan): string[] {
  const p = plan.personalization;
  if (!p) return [];
  const out: string[] = [];
  if (plan.release.evaluation.mode === 'none') {
    out.push(
      "personalization: its metrics reach the hub only through the plan's evaluation release; with release.evaluation 'none' nothing would be reported (choose 'exact' or, under dp-sgd, 'noisy')",
    );
  }
  if (plan.privacy.mode === 'dp-fedavg') {
    out.push(
      'personalization: under dp-fedavg (silo-level DP) local fine-tuning has no per-record mechanism to charge; use dp-sgd (the fine-tuning is then DP-SGD, charged) or no DP',
    );
  }
  return out;
}

/** The personalization block in words, for the steward. */
export function describePersonalization(plan: StudyPlan): string {
  const p = plan.personalization;
  if (!p) return 'none (each silo evaluates the global model only)';
  const lr = p.learningRate ?? plan.training.learningRate;
  const dp =
    plan.privacy.mode === 'dp-sgd'
      ? 'DP-SGD with the plan’s privacy parameters, charged to the study’s ε'
      : 'plain training, no DP';
  const baseline = p.localBaseline
    ? `; also a local-only baseline trained on the silo's own data for ${localBaselineEpochs(plan)} epochs (${plan.privacy.mode === 'dp-sgd' ? 'DP-SGD, charged' : 'no DP'})`
    : '';
  return `fine-tune the final global model on each silo's training split for ${p.epochs} epoch(s) at learning rate ${lr} (${dp}), evaluated beside the global model; the personalized model stays at the silo${baseline}`;
}
