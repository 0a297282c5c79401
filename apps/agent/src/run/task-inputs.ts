import { ModelSpecException, TrainingInputException, type LocalTrainingResult } from '@tessera/ml';
import { privacyMechanismOf, PrivacyPlanError, type PrivacyMechanism } from '@tessera/dp';
import { NetworkSpecError, sha256Hex, type SiloStudy, type SiloTask, type StudyPlan } from '@tessera/protocol';
import { ImageFileError } from '../data/image-decoder';
import type { StudyTransport } from '../hub/study-transport';
import { localTrainingOptionsOf, studyModelOf, type LocalTrainingOptions } from '../training/plan-mapping.util';
import type { StudyDatasets } from '../training/study-datasets';
import type { LocalEvaluation, StudyData, StudyModel } from '../training/study-model';
import {
  allFinite,
  float32FromLittleEndian,
  StudyFailure,
  TaskFailure,
  type PlanContext,
  type StepLog,
} from './task-context';

export interface TaskInputsDeps {
  transport: StudyTransport;
  datasets: StudyDatasets;
  log: StepLog;
}

/**
 * What a task reads and computes before anything may leave the silo: the plan's privacy mechanism and model as this
 * agent derives them (never the hub's numbers), the silo's data checked against the plan, the hub's model checked
 * against its hash, the local evaluation and the local training. Each problem becomes a TaskFailure (this task) or a
 * StudyFailure (this silo's part in the plan), with a message that names fields and files, never a data value.
 */
export class TaskInputs {
  constructor(private readonly deps: TaskInputsDeps) {}

  /** The plan's privacy mechanism as this agent computes it (never the hub's numbers). */
  mechanismOf(plan: StudyPlan): PrivacyMechanism | null {
    try {
      return privacyMechanismOf(plan);
    } catch (err) {
      if (err instanceof PrivacyPlanError) throw new StudyFailure('PRIVACY_PLAN_UNSAFE', err.message);
      throw err;
    }
  }

  planModel(study: SiloStudy): { model: StudyModel; options: LocalTrainingOptions } {
    try {
      return { model: studyModelOf(study.plan), options: localTrainingOptionsOf(study.plan) };
    } catch (err) {
      if (err instanceof PrivacyPlanError || err instanceof ModelSpecException || err instanceof NetworkSpecError) {
        throw new StudyFailure('TRAINING_FAILED', err.message);
      }
      throw err;
    }
  }

  async dataFor(task: SiloTask, study: SiloStudy, model: StudyModel): Promise<StudyData> {
    const result = await this.deps.datasets.forPlan(task.studyId, task.planHash, study.plan);
    if (!result.ok) throw new StudyFailure(result.problem.code, result.problem.message);
    const expected = model.inputWidth;
    if (result.kind === 'tabular' && expected !== null && result.encodedFeatures !== expected) {
      throw new StudyFailure(
        'DATA_SCHEMA_MISMATCH',
        `the schema encodes to ${result.encodedFeatures} columns, the model expects ${expected}`,
      );
    }
    return result.data;
  }

  /** Refuses a DP plan whose δ is not below 1/n for this silo's n training records (the guarantee would be void). */
  requireMeaningfulDelta(mechanism: PrivacyMechanism | null, data: StudyData): void {
    if (mechanism && mechanism.delta >= 1 / data.train.n) {
      throw new StudyFailure(
        'PRIVACY_PLAN_UNSAFE',
        `δ = ${mechanism.delta} is not below 1/n for this silo's ${data.train.n} training records: the guarantee would be meaningless`,
      );
    }
  }

  async downloadModel(task: SiloTask, model: StudyModel, name: string): Promise<Float32Array> {
    const expectedBytes = model.parameterCount * 4;
    const bytes = await this.deps.transport.downloadModel(task.modelHash, expectedBytes);
    const actual = sha256Hex(bytes);
    if (actual !== task.modelHash) {
      throw new TaskFailure(
        'TRAINING_FAILED',
        `the model downloaded for ${task.modelHash.slice(0, 12)}… hashes to ${actual.slice(0, 12)}…; refused`,
      );
    }
    if (bytes.byteLength !== expectedBytes) {
      throw new TaskFailure(
        'TRAINING_FAILED',
        `the model has ${bytes.byteLength} bytes; this plan's model needs ${expectedBytes}`,
      );
    }
    const parameters = float32FromLittleEndian(bytes);
    if (!allFinite(parameters)) throw new TaskFailure('TRAINING_FAILED', 'the model has non-finite parameters');
    this.deps.log({
      study: name,
      round: task.round,
      message: `${task.kind} task (attempt ${task.attempt}): model ${task.modelHash.slice(0, 12)}… downloaded and verified (${parameters.length} parameters)`,
    });
    return parameters;
  }

  /** The exact metrics, for this silo's own log (they leave only when the plan releases them 'exact'). */
  async evaluateLocally(
    ctx: PlanContext,
    model: StudyModel,
    parameters: Float32Array,
    data: StudyData,
  ): Promise<LocalEvaluation> {
    let m: LocalEvaluation;
    try {
      m = await model.evaluate(parameters, data.test);
    } catch (err) {
      if (err instanceof ImageFileError) {
        throw new StudyFailure('DATA_UNREADABLE', `an image became unusable during evaluation: ${err.message}`);
      }
      if (err instanceof TrainingInputException) throw new StudyFailure('TRAINING_FAILED', err.message);
      throw err;
    }
    if (!Number.isFinite(m.loss))
      throw new TaskFailure('TRAINING_FAILED', 'the global model gives a non-finite test loss');
    this.deps.log({
      study: ctx.name,
      round: ctx.task.round,
      message: `evaluated the global model on the local test split (kept in the silo): ${m.summary}`,
    });
    return m;
  }

  /**
   * Local training of the round. Shuffling (and image augmentation) differs per round and attempt, reproducibly from
   * the plan's seed. @tessera/ml's messages name fields, rows and columns, never values.
   */
  async train(
    ctx: PlanContext,
    model: StudyModel,
    parameters: Float32Array,
    data: StudyData,
    options: LocalTrainingOptions,
  ): Promise<LocalTrainingResult> {
    const seed = (ctx.plan.training.initSeed + ctx.task.round * 1000 + ctx.task.attempt) % 2 ** 31;
    try {
      return await model.train(parameters, data.train, options, seed);
    } catch (err) {
      if (err instanceof ImageFileError) {
        throw new StudyFailure('DATA_UNREADABLE', `an image became unusable during training: ${err.message}`);
      }
      throw new StudyFailure('TRAINING_FAILED', `local training failed: ${(err as Error).message}`);
    }
  }
}
