import { HEART_DISEASE_SCHEMA, isImageSchema, type StudyPlan } from '@tessera/protocol';
import {
  aggregationToDraft,
  aggregationToPlan,
  DEFAULT_AGGREGATION,
  DEFAULT_SECURE_AGGREGATION,
  secureAggregationToDraft,
  secureAggregationToPlan,
} from './plan-draft-aggregation.js';
import { ADAPTIVE_OPTIMIZERS, listOf, numberOf, textOf, type PlanDraft } from './plan-draft-fields.js';
import { defaultReleaseDraft, releaseToDraft, releaseToPlan } from './plan-draft-release.js';
import { featureToPlan, schemaToDraft } from './plan-draft-schema.js';

// The study wizard edits a draft: the plan's shape with every number and list kept as the text the person typed,
// so a half-typed value is never lost. draftToPlan turns it into a candidate plan that studyPlanProblems judges;
// the wizard shows each problem at the field it names.
//
// The draft's shape is in plan-draft-fields.ts; its sections' conversions in plan-draft-aggregation.ts,
// plan-draft-release.ts and plan-draft-schema.ts. Everything the wizard uses is exported from here.

export type {
  AggregationDraft,
  AggregatorKind,
  EvaluationReleaseMode,
  FeatureDraft,
  LabelOperator,
  PlanDraft,
  PrivacyMode,
  ReleaseDraft,
  SecureAggregationDraft,
  ServerOptimizerKind,
} from './plan-draft-fields.js';
export { ADAPTIVE_OPTIMIZERS, listOf, numberOf } from './plan-draft-fields.js';
export {
  DEFAULT_AGGREGATION,
  DEFAULT_SECURE_AGGREGATION,
  proposedSecureAggregationThreshold,
} from './plan-draft-aggregation.js';
export { defaultReleaseDraft, withPrivacyMode } from './plan-draft-release.js';
export { blankFeature } from './plan-draft-schema.js';

function optionalNumber(text: string): number | undefined {
  return numberOf(text);
}

/** The candidate plan a draft describes (not validated: studyPlanProblems says what is wrong with it). */
export function draftToPlan(d: PlanDraft): unknown {
  const opt = d.training.serverOptimizer;
  const serverOptimizer: Record<string, unknown> = { kind: opt.kind, learningRate: numberOf(opt.learningRate) };
  if (opt.kind === 'fedavgm' && opt.momentum.trim() !== '') serverOptimizer.momentum = optionalNumber(opt.momentum);
  if (ADAPTIVE_OPTIMIZERS.includes(opt.kind)) {
    if (opt.beta1.trim() !== '') serverOptimizer.beta1 = optionalNumber(opt.beta1);
    if (opt.beta2.trim() !== '') serverOptimizer.beta2 = optionalNumber(opt.beta2);
    if (opt.tau.trim() !== '') serverOptimizer.tau = optionalNumber(opt.tau);
  }
  const training: Record<string, unknown> = {
    rounds: numberOf(d.training.rounds),
    localEpochs: numberOf(d.training.localEpochs),
    batchSize: numberOf(d.training.batchSize),
    learningRate: numberOf(d.training.learningRate),
    algorithm: d.training.algorithm,
    serverOptimizer,
    initSeed: numberOf(d.training.initSeed),
  };
  if (d.training.algorithm === 'fedprox' && d.training.proximalMu.trim() !== '') {
    training.proximalMu = numberOf(d.training.proximalMu);
  }

  const column = d.schema.label.column.trim();
  const operator = d.schema.label.operator;
  const label =
    operator === 'in'
      ? { column, operator: 'in', values: listOf(d.schema.label.values) }
      : operator === 'class'
        ? { column, operator: 'class', classes: listOf(d.schema.label.values) }
        : operator === 'value'
          ? { column, operator: 'value', ...(d.schema.label.scaling ? { scaling: d.schema.label.scaling } : {}) }
          : { column, operator, threshold: numberOf(d.schema.label.threshold) };
  const imputing = d.schema.missing === 'impute';
  const schema: Record<string, unknown> = {
    features: d.schema.features.map((f) => featureToPlan(f, imputing)),
    label,
    missing: d.schema.missing,
    split: { testFraction: numberOf(d.schema.testFraction), salt: d.schema.splitSalt.trim() },
  };
  if (!d.schema.hasHeader) schema.columns = listOf(d.schema.columns);
  const missingValues = listOf(d.schema.missingValues);
  if (missingValues.length > 0) schema.missingValues = missingValues;

  const p = d.privacy;
  const noiseMultiplier = p.noise === 'derive' ? 'derive' : numberOf(p.noiseMultiplier);
  const privacy =
    p.mode === 'none'
      ? { mode: 'none' }
      : p.mode === 'dp-sgd'
        ? {
            mode: 'dp-sgd',
            unit: 'record',
            targetEpsilon: numberOf(p.targetEpsilon),
            delta: numberOf(p.delta),
            clipNorm: numberOf(p.clipNorm),
            noiseMultiplier,
            samplingRate: numberOf(p.samplingRate),
          }
        : {
            mode: 'dp-fedavg',
            unit: 'silo',
            targetEpsilon: numberOf(p.targetEpsilon),
            delta: numberOf(p.delta),
            clipNorm: numberOf(p.clipNorm),
            noiseMultiplier,
            ...(p.distributed ? { noise: 'distributed' } : {}),
          };

  return {
    name: d.name.trim(),
    purpose: d.purpose.trim(),
    model:
      d.model.kind === 'mlp'
        ? {
            kind: 'mlp',
            hiddenLayers: listOf(d.model.hiddenLayers).map((x) => Number(x)),
            activation: d.model.activation,
          }
        : d.model.kind === 'network'
          ? { kind: 'network', network: networkOfText(d.model.network ?? '') }
          : { kind: 'logistic-regression' },
    schema: d.imageSchema ? { ...d.imageSchema, label } : schema,
    training,
    privacy,
    participation: {
      minSilosPerRound: numberOf(d.participation.minSilosPerRound),
      roundDeadlineSeconds: numberOf(d.participation.roundDeadlineSeconds),
      maxRoundRetries: numberOf(d.participation.maxRoundRetries),
      onSiloFailure: d.participation.onSiloFailure,
    },
    release: releaseToPlan(d.release),
    ...aggregationToPlan(d.aggregation),
    ...secureAggregationToPlan(d.secureAggregation),
    silos: [...d.silos],
  };
}

/**
 * The pasted network spec parsed; text that is not JSON stays text, so the plan check reports it at model.network
 * ("spec: expected object") instead of the wizard inventing a value.
 */
export function networkOfText(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/**
 * A fresh key for the record split: 128 random bits from the browser's CSPRNG (crypto.getRandomValues), as 32 hex
 * digits. It is public (the privacy guarantee holds for every salt); a new one per study keeps studies' splits
 * independent of each other.
 */
export function randomSplitSalt(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
/** A draft of an existing plan (a new version of a study's plan starts from the current one). */
export function planToDraft(plan: StudyPlan): PlanDraft {
  const t = plan.training;
  const p = plan.privacy;
  return {
    name: plan.name,
    purpose: plan.purpose,
    model:
      plan.model.kind === 'mlp'
        ? { kind: 'mlp', hiddenLayers: plan.model.hiddenLayers.join(', '), activation: plan.model.activation }
        : plan.model.kind === 'network'
          ? {
              kind: 'network',
              hiddenLayers: '16',
              activation: 'relu',
              network: JSON.stringify(plan.model.network, null, 2),
            }
          : { kind: 'logistic-regression', hiddenLayers: '16', activation: 'relu' },
    ...(isImageSchema(plan.schema) ? { imageSchema: structuredClone(plan.schema) } : {}),
    schema: schemaToDraft(plan.schema),
    training: {
      rounds: String(t.rounds),
      localEpochs: String(t.localEpochs),
      batchSize: String(t.batchSize),
      learningRate: String(t.learningRate),
      algorithm: t.algorithm,
      proximalMu: textOf(t.proximalMu),
      serverOptimizer: {
        kind: t.serverOptimizer.kind,
        learningRate: String(t.serverOptimizer.learningRate),
        momentum: textOf(t.serverOptimizer.momentum),
        beta1: textOf(t.serverOptimizer.beta1),
        beta2: textOf(t.serverOptimizer.beta2),
        tau: textOf(t.serverOptimizer.tau),
      },
      initSeed: String(t.initSeed),
    },
    privacy:
      p.mode === 'none'
        ? { ...DEFAULT_PRIVACY, mode: 'none' }
        : {
            mode: p.mode,
            targetEpsilon: String(p.targetEpsilon),
            delta: String(p.delta),
            clipNorm: String(p.clipNorm),
            noise: p.noiseMultiplier === 'derive' ? 'derive' : 'fixed',
            noiseMultiplier: p.noiseMultiplier === 'derive' ? '' : String(p.noiseMultiplier),
            samplingRate: p.mode === 'dp-sgd' ? String(p.samplingRate) : DEFAULT_PRIVACY.samplingRate,
            distributed: p.mode === 'dp-fedavg' && p.noise === 'distributed',
          },
    participation: {
      minSilosPerRound: String(plan.participation.minSilosPerRound),
      roundDeadlineSeconds: String(plan.participation.roundDeadlineSeconds),
      maxRoundRetries: String(plan.participation.maxRoundRetries),
      onSiloFailure: plan.participation.onSiloFailure,
    },
    release: releaseToDraft(plan.release, p.mode),
    aggregation: aggregationToDraft(plan),
    secureAggregation: secureAggregationToDraft(plan),
    silos: [...plan.silos],
  };
}

const DEFAULT_PRIVACY: PlanDraft['privacy'] = {
  mode: 'dp-sgd',
  targetEpsilon: '3',
  delta: '1e-5',
  clipNorm: '1',
  noise: 'derive',
  noiseMultiplier: '1.1',
  samplingRate: '0.05',
  distributed: false,
};

/**
 * A new study starts from this: the Fed-Heart-Disease schema with its declared scaling constants, logistic
 * regression, no DP (with its default releases), no invited silo yet, and a fresh random split salt.
 */
export function defaultDraft(salt: string = randomSplitSalt()): PlanDraft {
  return {
    name: '',
    purpose: '',
    model: { kind: 'logistic-regression', hiddenLayers: '16', activation: 'relu' },
    // The Fed-Heart-Disease schema, defined once in @tessera/protocol (the same the demo uses), split by this
    // study's own salt.
    schema: { ...schemaToDraft(HEART_DISEASE_SCHEMA), splitSalt: salt },
    training: {
      rounds: '10',
      localEpochs: '5',
      batchSize: '16',
      learningRate: '0.05',
      algorithm: 'fedavg',
      proximalMu: '0.01',
      serverOptimizer: {
        kind: 'fedadam',
        learningRate: '0.1',
        momentum: '0.9',
        beta1: '0.9',
        beta2: '0.99',
        tau: '0.001',
      },
      initSeed: '42',
    },
    privacy: { ...DEFAULT_PRIVACY, mode: 'none' },
    participation: {
      minSilosPerRound: '2',
      roundDeadlineSeconds: '60',
      maxRoundRetries: '1',
      onSiloFailure: 'continue',
    },
    release: defaultReleaseDraft('none'),
    aggregation: { ...DEFAULT_AGGREGATION },
    secureAggregation: { ...DEFAULT_SECURE_AGGREGATION },
    silos: [],
  };
}
