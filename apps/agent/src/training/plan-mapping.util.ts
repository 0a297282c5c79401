import { parseModelSpec, type DpSgdConfig, type ModelSpec, type TabularSchema } from '@tessera/ml';
import { encodedFeatureCount, type PrivacyPlan, type StudyPlan } from '@tessera/protocol';

/**
 * The model a plan describes, as @tessera/ml's registry spec: the input width is what the feature schema encodes to
 * (1 per numeric column, levels − 1 per categorical one), and every study predicts a binary label. Validated by
 * parseModelSpec, so a plan the registry cannot build fails here, before any data is read.
 */
export function modelSpecOf(plan: StudyPlan): ModelSpec {
  const inputDim = encodedFeatureCount(plan.schema);
  const model = plan.model;
  return parseModelSpec(
    model.kind === 'mlp'
      ? { kind: 'mlp', inputDim, hiddenLayers: model.hiddenLayers, activation: model.activation, task: 'binary' }
      : { kind: 'logistic-regression', inputDim },
  );
}

/** The plan's feature schema as @tessera/ml's tabular schema (the protocol's shape is a subset of it). */
export function tabularSchemaOf(plan: StudyPlan): TabularSchema {
  return plan.schema;
}

/** A privacy mode this agent version cannot apply: the task fails rather than training with less privacy. */
export class UnsupportedPrivacyModeError extends Error {
  constructor(readonly mode: PrivacyPlan['mode']) {
    super(`privacy mode ${mode} not supported by this agent version`);
    this.name = 'UnsupportedPrivacyModeError';
  }
}

/**
 * The seam where the plan's privacy section becomes trainLocal's `dp` option. Only 'none' is supported for now
 * (no DP-SGD: `undefined`). 'dp-sgd' (Abadi et al., CCS 2016) and 'dp-fedavg' (McMahan et al., ICLR 2018) throw,
 * so an agent never sends an update with less privacy than its steward approved.
 */
export function dpSgdConfigFor(privacy: PrivacyPlan): DpSgdConfig | undefined {
  switch (privacy.mode) {
    case 'none':
      return undefined;
    case 'dp-sgd':
    case 'dp-fedavg':
      throw new UnsupportedPrivacyModeError(privacy.mode);
    default: {
      const unknown: never = privacy;
      throw new UnsupportedPrivacyModeError((unknown as PrivacyPlan).mode);
    }
  }
}

/** trainLocal's hyperparameters from the plan's training section (FedProx μ only with the fedprox algorithm). */
export interface LocalTrainingOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  proximalMu?: number;
  dp?: DpSgdConfig;
}

export function localTrainingOptionsOf(plan: StudyPlan): LocalTrainingOptions {
  const t = plan.training;
  const dp = dpSgdConfigFor(plan.privacy);
  return {
    epochs: t.localEpochs,
    batchSize: t.batchSize,
    learningRate: t.learningRate,
    ...(t.algorithm === 'fedprox' && t.proximalMu !== undefined ? { proximalMu: t.proximalMu } : {}),
    ...(dp === undefined ? {} : { dp }),
  };
}
