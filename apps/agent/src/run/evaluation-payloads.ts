import { defaultRandomSource, type RandomSource } from '@tessera/dp';
import type { EvaluationPayload } from '@tessera/protocol';
import { ImageFileError } from '../data/image-decoder';
import type { PersonalModelStore } from '../personalization/personal-model.store';
import { describeSelection } from '../personalization/model-selection';
import { trainPersonalModels, type PersonalModels } from '../personalization/personal-models';
import type { LocalEvaluation, StudyData, StudyModel } from '../training/study-model';
import { noisyHistogramEvaluation } from './evaluation-release';
import { allFinite, StudyFailure, type PlanContext, type StepLog } from './task-context';

export interface EvaluationPayloadsDeps {
  /** Where personalized models are kept: they never leave the silo. */
  personalModels: PersonalModelStore;
  /** Randomness of the noisy evaluation: the CSPRNG (defaultRandomSource) unless a test injects a seeded one. */
  random?: RandomSource;
  log: StepLog;
}

/** What a personalized final evaluation releases: one payload per personal model the plan trains. */
export interface PersonalPayloads {
  personalized: EvaluationPayload | null;
  localBaseline: EvaluationPayload | null;
}

/** The evaluations a silo may release, as the approved plan says (plan.release.evaluation, plan.personalization). */
export class EvaluationPayloads {
  constructor(private readonly deps: EvaluationPayloadsDeps) {}

  /** What the plan releases of this evaluation: exact metrics, or noisy score histograms (never both, never more). */
  async payload(
    ctx: PlanContext,
    model: StudyModel,
    parameters: Float32Array,
    data: StudyData,
    local: LocalEvaluation,
  ): Promise<EvaluationPayload | null> {
    const release = ctx.plan.release.evaluation;
    if (release.mode === 'none') return null;
    if (release.mode === 'exact') return local.exact;
    const noise = ctx.mechanism?.evaluation;
    if (!noise) {
      // The protocol only allows noisy evaluation with DP-SGD, which always derives this noise.
      throw new StudyFailure(
        'PRIVACY_PLAN_UNSAFE',
        'the plan asks for noisy evaluation but derives no evaluation noise',
      );
    }
    const histograms = await model.scoreHistograms(parameters, data.test, release.scoreBins);
    return noisyHistogramEvaluation(histograms, noise.noiseStddev, this.deps.random ?? defaultRandomSource());
  }

  /**
   * plan.personalization at the final evaluation: fine-tunes the final global model on this silo's training split
   * (and trains the local-only baseline when planned; method 'select' chooses among candidates by cross-validation on
   * the training split, model-selection.ts), keeps both models in the state directory (never uploaded),
   * evaluates each on the test split and returns what the plan releases of each (the global model's kind of release).
   */
  async personalize(
    ctx: PlanContext,
    model: StudyModel,
    parameters: Float32Array,
    data: StudyData,
  ): Promise<PersonalPayloads> {
    const { task, plan, name } = ctx;
    let models: PersonalModels;
    try {
      models = await trainPersonalModels(plan, model, parameters, data.train);
    } catch (err) {
      if (err instanceof ImageFileError) {
        throw new StudyFailure('DATA_UNREADABLE', `an image became unusable during personalization: ${err.message}`);
      }
      throw new StudyFailure('TRAINING_FAILED', `personalization failed: ${(err as Error).message}`);
    }
    if (models.selection !== null) {
      // The choice stays at the silo with the model: only the chosen model's test metrics leave.
      this.deps.log({
        study: name,
        round: task.round,
        message: `personalization: ${describeSelection(models.selection)}`,
      });
    }
    const out: PersonalPayloads = { personalized: null, localBaseline: null };
    const kinds = [
      ['personalized', models.personalized],
      ['local-baseline', models.localBaseline],
    ] as const;
    for (const [kind, weights] of kinds) {
      if (weights === null) continue;
      if (!allFinite(weights)) {
        throw new StudyFailure('TRAINING_FAILED', `the ${kind} model diverged: it has non-finite parameters`);
      }
      const file = this.deps.personalModels.save(task.studyId, kind, task.modelHash, weights);
      const m = await model.evaluate(weights, data.test);
      this.deps.log({
        study: name,
        round: task.round,
        message: `${kind} model kept at the silo (${file}); on the local test split: ${m.summary}`,
      });
      const payload = await this.payload(ctx, model, weights, data, m);
      if (kind === 'personalized') out.personalized = payload;
      else out.localBaseline = payload;
    }
    return out;
  }
}
