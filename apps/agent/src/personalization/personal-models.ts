import { validationFoldsOf, type StudyPlan } from '@tessera/protocol';
import { initialParametersOf, localBaselineOptionsOf, personalizationOptionsOf } from '../training/plan-mapping.util';
import type { SplitData, StudyModel } from '../training/study-model';
import { candidateParameters, selectByCrossValidation, type Selection } from './model-selection';

/** A silo's own models at the end of a personalizing study: they stay at the silo, only their metrics leave. */
export interface PersonalModels {
  /**
   * 'fine-tune': the final global model fine-tuned on this silo's training split (plan.personalization.epochs
   * epochs). 'select': the candidate chosen by cross-validation on the training split, trained on all of it.
   */
  personalized: Float32Array;
  /** A model trained from the plan's initial model on this silo's training split alone; null unless planned. */
  localBaseline: Float32Array | null;
  /** Local optimisation steps taken, all models together (for the silo's log). */
  steps: number;
  /** Method 'select': what was chosen and why (kept at the silo, logged); null for 'fine-tune'. */
  selection: Selection | null;
}

/**
 * Trains the personal models of plan.personalization from the final global model `finalParameters` on this silo's
 * training split: the same trainer and, under dp-sgd, the same DP-SGD as the study's rounds (the steps are charged
 * as the plan's personalization steps). Seeds derive from the plan's, so a rerun shuffles alike. Method 'select'
 * (no DP: the plan refuses it under DP, and so does this function) also cross-validates on the training split.
 */
export async function trainPersonalModels(
  plan: StudyPlan,
  model: StudyModel,
  finalParameters: Float32Array,
  train: SplitData,
): Promise<PersonalModels> {
  const p = plan.personalization;
  if (!p) throw new Error('the plan has no personalization');
  if (p.method === 'select' && plan.privacy.mode !== 'none') {
    // The choice reads training records without noise: outside any DP guarantee (personalizationProblems).
    throw new Error("method 'select' is refused under differential privacy");
  }
  const seed = (plan.training.initSeed + 7_919) % 2 ** 31;
  const fineTune = (data: SplitData) => model.train(finalParameters, data, personalizationOptionsOf(plan), seed);
  const localOnly = (data: SplitData) =>
    model.train(initialParametersOf(plan), data, localBaselineOptionsOf(plan), seed + 1);
  const tuned = await fineTune(train);
  let steps = tuned.steps;
  if (p.method === 'fine-tune') {
    let localBaseline: Float32Array | null = null;
    if (p.localBaseline) {
      const alone = await localOnly(train);
      localBaseline = alone.parameters;
      steps += alone.steps;
    }
    return { personalized: tuned.parameters, localBaseline, steps, selection: null };
  }
  const alone = await localOnly(train);
  steps += alone.steps;
  const selection = await selectByCrossValidation(
    model,
    { global: finalParameters, fineTune, localOnly },
    train,
    validationFoldsOf(plan)!,
    seed + 2,
  );
  const personalized = candidateParameters(selection.chosen, {
    global: finalParameters,
    fineTuned: tuned.parameters,
    localOnly: alone.parameters,
  });
  return {
    // A copy: the personalized model is saved and evaluated on its own, whatever the caller does with the global one.
    personalized: Float32Array.from(personalized),
    localBaseline: p.localBaseline ? alone.parameters : null,
    steps: steps + selection.steps,
    selection,
  };
}
