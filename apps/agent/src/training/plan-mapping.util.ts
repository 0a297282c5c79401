import {
  initialNetworkParameters,
  initialParameters,
  parseModelSpec,
  type DpSgdConfig,
  type ModelSpec,
  type TabularSchema,
} from '@tessera/ml';
import { getRandomValues } from 'node:crypto';
import { GaussianNoiseWorker, privacyMechanismOf, type PrivacyMechanism } from '@tessera/dp';
import {
  encodedFeatureCount,
  inferNetworkShapes,
  localBaselineEpochs,
  tabularSchemaOf as planTabularSchema,
  type StudyPlan,
} from '@tessera/protocol';
import { NetworkStudyModel, RegistryStudyModel, type StudyModel } from './study-model';

/**
 * The model a registry plan ('logistic-regression', 'mlp') describes, as @tessera/ml's registry spec: the input width
 * is what the feature schema encodes to (1 per numeric column, levels − 1 per categorical one), and the label is
 * binary. Validated by parseModelSpec, so a plan the registry cannot build fails here, before any data is read.
 */
export function modelSpecOf(plan: StudyPlan): ModelSpec {
  const inputDim = encodedFeatureCount(planTabularSchema(plan));
  const model = plan.model;
  if (model.kind === 'network') throw new Error('a network plan has no registry model spec');
  return parseModelSpec(
    model.kind === 'mlp'
      ? { kind: 'mlp', inputDim, hiddenLayers: model.hiddenLayers, activation: model.activation, task: 'binary' }
      : { kind: 'logistic-regression', inputDim },
  );
}

/**
 * The plan's model as the executor runs it. Registry plans keep their bytes and their hashes and train with the
 * registry trainer they were approved with (bit for bit as before network plans; they are the logistic-regression and
 * MLP presets of the network spec, docs/models.md). A network plan's spec is checked again here with the hub's own
 * checker (inferNetworkShapes): the agent never builds a graph it has not validated itself.
 */
export function studyModelOf(plan: StudyPlan): StudyModel {
  if (plan.model.kind !== 'network') return new RegistryStudyModel(modelSpecOf(plan));
  inferNetworkShapes(plan.model.network);
  return new NetworkStudyModel(plan.model.network, plan.schema.label);
}

/**
 * The plan's feature schema as @tessera/ml's tabular schema: the same type, passed unchanged, so every encoding
 * constant (scaling, imputation values, levels, split salt) is the one the steward approved and none is computed
 * from this silo's file.
 */
export function tabularSchemaOf(plan: StudyPlan): TabularSchema {
  return planTabularSchema(plan);
}

/** Uniform [0, 1) draws from the operating system's CSPRNG: who joins each DP-SGD batch must be unpredictable. */
export function cryptoUniform(): () => number {
  const buffer = new Uint32Array(1024);
  let next = buffer.length;
  return () => {
    if (next === buffer.length) {
      getRandomValues(buffer);
      next = 0;
    }
    // 53 random bits would cost two words; 32 bits of resolution is ample for a sampling probability q >= 1e-6.
    return buffer[next++]! / 2 ** 32;
  };
}

let noiseWorker: GaussianNoiseWorker | undefined;

/**
 * The process's noise thread (started on first use; idle, it does not keep the process alive): DP-SGD noise is drawn
 * there while the training thread computes the step's gradients.
 */
function sharedNoiseWorker(): GaussianNoiseWorker {
  noiseWorker ??= new GaussianNoiseWorker();
  return noiseWorker;
}

/**
 * The plan's privacy section as trainLocal's `dp` option. 'dp-sgd' (Abadi et al., CCS 2016): per-example clipping
 * to C, the sum rounded onto a lattice and exact discrete-Gaussian integers added (@tessera/dp's sampler driven by
 * the CSPRNG, drawn on a worker thread while the gradients are computed), Poisson sampling at rate q with a CSPRNG,
 * and the noisy sum divided by the plan's `training.batchSize`: a public constant, never this silo's q·n, so the
 * released update is not scaled by a count of its records. σ is this agent's own computation from the plan
 * (privacyMechanismOf), never the hub's number. 'dp-fedavg' trains without per-example noise (the silo's whole
 * update is clipped to C and the hub adds the noise to the sum) and 'none' without DP: both return undefined.
 */
export function dpSgdConfigFor(
  plan: StudyPlan,
  mechanism: PrivacyMechanism | null = privacyMechanismOf(plan),
): DpSgdConfig | undefined {
  if (plan.privacy.mode !== 'dp-sgd' || !mechanism) return undefined;
  return {
    clipNorm: mechanism.clipNorm,
    noiseMultiplier: mechanism.noiseMultiplier,
    samplingRate: mechanism.samplingRate,
    expectedBatchSize: plan.training.batchSize,
    noise: (length, latticeSigma) => sharedNoiseWorker().drawIntegers(length, latticeSigma),
    sampling: cryptoUniform(),
  };
}

/** trainLocal's hyperparameters from the plan's training section (FedProx μ only with the fedprox algorithm). */
export interface LocalTrainingOptions {
  epochs: number;
  batchSize?: number;
  learningRate: number;
  proximalMu?: number;
  /** SCAFFOLD's c − c_i for this round (the executor adds it from the control-variate store; ADR 0019). */
  controlCorrection?: Float32Array;
  dp?: DpSgdConfig;
}

export function localTrainingOptionsOf(plan: StudyPlan): LocalTrainingOptions {
  const t = plan.training;
  const dp = dpSgdConfigFor(plan);
  return {
    epochs: t.localEpochs,
    // Under DP-SGD the batch is Poisson-sampled and the plan's batch size is the normaliser (dp.expectedBatchSize):
    // trainLocal refuses a fixed batch size there.
    ...(dp === undefined ? { batchSize: t.batchSize } : {}),
    learningRate: t.learningRate,
    ...(t.algorithm === 'fedprox' && t.proximalMu !== undefined ? { proximalMu: t.proximalMu } : {}),
    ...(dp === undefined ? {} : { dp }),
  };
}

/**
 * The fine-tuning of plan.personalization: the plan's local training (its batch, and DP-SGD with the plan's σ, C and
 * q under dp-sgd, charged as personalization steps) for `epochs` epochs at the personalization's learning rate (the
 * plan's when absent). No FedProx term: fine-tuning is meant to move away from the global model.
 */
export function personalizationOptionsOf(plan: StudyPlan): LocalTrainingOptions {
  const p = plan.personalization;
  if (!p) throw new Error('the plan has no personalization');
  const { proximalMu: _mu, ...base } = localTrainingOptionsOf(plan);
  return { ...base, epochs: p.epochs, learningRate: p.learningRate ?? plan.training.learningRate };
}

/**
 * The local-only baseline of plan.personalization.localBaseline: the plan's local training, from the plan's initial
 * model, for the study's total local epochs (rounds × localEpochs) on this silo's training split alone.
 */
export function localBaselineOptionsOf(plan: StudyPlan): LocalTrainingOptions {
  const { proximalMu: _mu, ...base } = localTrainingOptionsOf(plan);
  return { ...base, epochs: localBaselineEpochs(plan) };
}

/** The plan's initial global model (seeded: the same weights the hub starts the study from). */
export function initialParametersOf(plan: StudyPlan): Float32Array {
  if (plan.model.kind === 'network') return initialNetworkParameters(plan.model.network, plan.training.initSeed);
  return initialParameters(modelSpecOf(plan), plan.training.initSeed);
}
