import type { StudyPlan } from '@tessera/protocol';
import { initialParametersOf, localBaselineOptionsOf, personalizationOptionsOf } from '../training/plan-mapping.util';
import type { SplitData, StudyModel } from '../training/study-model';

/** A silo's own models at the end of a personalizing study: they stay at the silo, only their metrics leave. */
export interface PersonalModels {
  /** The final global model fine-tuned on this silo's training split (plan.personalization.epochs epochs). */
  personalized: Float32Array;
  /** A model trained from the plan's initial model on this silo's training split alone; null unless planned. */
  localBaseline: Float32Array | null;
  /** Local optimisation steps taken, both models together (for the silo's log). */
  steps: number;
}

/**
 * Trains the personal models of plan.personalization from the final global model `finalParameters` on this silo's
 * training split: the same trainer and, under dp-sgd, the same DP-SGD as the study's rounds (the steps are charged
 * as the plan's personalization steps). Seeds derive from the plan's, so a rerun shuffles alike.
 */
export async function trainPersonalModels(
  plan: StudyPlan,
  model: StudyModel,
  finalParameters: Float32Array,
  train: SplitData,
): Promise<PersonalModels> {
  const p = plan.personalization;
  if (!p) throw new Error('the plan has no personalization');
  const seed = (plan.training.initSeed + 7_919) % 2 ** 31;
  const tuned = await model.train(finalParameters, train, personalizationOptionsOf(plan), seed);
  let localBaseline: Float32Array | null = null;
  let steps = tuned.steps;
  if (p.localBaseline) {
    const alone = await model.train(initialParametersOf(plan), train, localBaselineOptionsOf(plan), seed + 1);
    localBaseline = alone.parameters;
    steps += alone.steps;
  }
  return { personalized: tuned.parameters, localBaseline, steps };
}
