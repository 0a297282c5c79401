import { z } from 'zod';
import type { StudyPlan } from './study-plan';

/*
 * The plan's `personalization` block (docs/personalization.md): what each silo does with the final global model at
 * the study's final evaluation. The personalized model (and the local-only baseline) stay at the silo; only their
 * test-split metrics leave it, through the plan's evaluation release (exact, or noisy and charged).
 */

export const PersonalizationPlan = z
  .object({
    /**
     * 'fine-tune': the final global model trained further on the silo's own training split. 'select': each silo
     * chooses its model among SELECTION_CANDIDATES (the global model, the fine-tuned one, the local-only one and
     * three interpolations of the global and local-only parameters) by cross-validation on its own training split
     * (never the test split); no DP (personalizationProblems).
     */
    method: z.enum(['fine-tune', 'select']),
    /** Local epochs of fine-tuning over the silo's training split (with 'select': of its fine-tuned candidate). */
    epochs: z.number().int().min(1).max(100),
    /** Learning rate of the fine-tuning; absent: the plan's training.learningRate. */
    learningRate: z.number().finite().positive().max(10).optional(),
    /**
     * true: each silo also trains a model on its own training split alone (from the plan's initial model, for the
     * study's total local epochs, rounds × localEpochs) and reports its metrics, the fairness view's baseline.
     */
    localBaseline: z.boolean().optional(),
    /** 'select' only: folds of the cross-validation on the silo's training split; absent: DEFAULT_VALIDATION_FOLDS. */
    validationFolds: z.number().int().min(2).max(20).optional(),
  })
  .strict();
export type PersonalizationPlan = z.infer<typeof PersonalizationPlan>;

/** Cross-validation folds of method 'select' when the plan gives none. */
export const DEFAULT_VALIDATION_FOLDS = 5;

/**
 * The models method 'select' chooses among, in order of preference on a tie: the final global model, the fine-tuned
 * one, the local-only one, then APFL-style interpolations α·global + (1 − α)·local-only (Deng et al. 2020, fixed α).
 */
export const SELECTION_CANDIDATES = [
  { kind: 'global' },
  { kind: 'fine-tuned' },
  { kind: 'local-only' },
  { kind: 'mix', globalWeight: 0.75 },
  { kind: 'mix', globalWeight: 0.5 },
  { kind: 'mix', globalWeight: 0.25 },
] as const;
export type SelectionCandidate = (typeof SELECTION_CANDIDATES)[number];

/** A candidate of method 'select' in words (the silo's log, the steward's description). */
export function describeCandidate(c: SelectionCandidate): string {
  switch (c.kind) {
    case 'global':
      return 'the global model';
    case 'fine-tuned':
      return 'the fine-tuned model';
    case 'local-only':
      return 'the local-only model';
    case 'mix':
      return `${c.globalWeight}·global + ${1 - c.globalWeight}·local-only`;
  }
}

/** Cross-validation folds of a 'select' plan (null for 'fine-tune'). */
export function validationFoldsOf(plan: StudyPlan): number | null {
  const p = plan.personalization;
  if (p?.method !== 'select') return null;
  return p.validationFolds ?? DEFAULT_VALIDATION_FOLDS;
}

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
  if (p.method === 'select' && plan.privacy.mode === 'dp-sgd') {
    out.push(
      "personalization.method: 'select' chooses each silo's model by its loss on the silo's own training records, a choice without noise that the released test metrics of the chosen model would depend on (outside the DP guarantee); use 'fine-tune' under dp-sgd",
    );
  }
  if (p.validationFolds !== undefined && p.method !== 'select') {
    out.push("personalization.validationFolds: only method 'select' cross-validates; remove it or use 'select'");
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
  if (p.method === 'select') {
    const folds = validationFoldsOf(plan) ?? DEFAULT_VALIDATION_FOLDS;
    return `each silo chooses its personalized model among ${SELECTION_CANDIDATES.map(describeCandidate).join(', ')} (fine-tuning: ${p.epochs} epoch(s) at learning rate ${lr}; local-only: ${localBaselineEpochs(plan)} epochs from the initial model), the one of lowest loss in ${folds}-fold cross-validation on its own training split (candidates retrained without the held-out fold; the test split is not used; ${dp}), evaluated beside the global model; the personalized model and the choice stay at the silo${p.localBaseline ? '; the local-only model is also reported as the baseline' : ''}`;
  }
  return `fine-tune the final global model on each silo's training split for ${p.epochs} epoch(s) at learning rate ${lr} (${dp}), evaluated beside the global model; the personalized model stays at the silo${baseline}`;
}
