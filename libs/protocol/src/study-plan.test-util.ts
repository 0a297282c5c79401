import { randomUUID } from 'node:crypto';
import { HEART_DISEASE_SCHEMA } from './heart-disease-schema';
import type {
  AggregationPlan,
  PrivacyPlan,
  ReleasePlan,
  ScreeningPlan,
  SecureAggregationPlan,
  TabularStudyPlan,
} from './study-plan';

/** A valid plan for tests: the heart-disease schema, logistic regression, DP-SGD unless told otherwise. */
export function planForTest(
  overrides: {
    privacy?: PrivacyPlan;
    release?: ReleasePlan;
    rounds?: number;
    silos?: number;
    minSilosPerRound?: number;
    /** Absent (the default): the plan has no `aggregation` key, as every plan written before the option. */
    aggregation?: AggregationPlan;
    screening?: ScreeningPlan;
    secureAggregation?: SecureAggregationPlan;
    /** Fixed silo ids (tests that pin a plan hash); random ids otherwise. */
    siloIds?: string[];
  } = {},
): TabularStudyPlan {
  const privacy: PrivacyPlan = overrides.privacy ?? {
    mode: 'dp-sgd',
    unit: 'record',
    targetEpsilon: 1,
    delta: 1e-5,
    clipNorm: 1,
    noiseMultiplier: 'derive',
    samplingRate: 0.1,
  };
  return {
    name: 'Test study',
    purpose: 'A plan built by the protocol tests.',
    model: { kind: 'logistic-regression' },
    schema: structuredClone(HEART_DISEASE_SCHEMA),
    training: {
      rounds: overrides.rounds ?? 3,
      localEpochs: 2,
      batchSize: 16,
      learningRate: 0.05,
      algorithm: 'fedavg',
      serverOptimizer: { kind: 'fedavg', learningRate: 1 },
      initSeed: 1,
    },
    privacy,
    participation: {
      minSilosPerRound: overrides.minSilosPerRound ?? 1,
      roundDeadlineSeconds: 60,
      maxRoundRetries: 1,
      onSiloFailure: 'continue',
    },
    release: overrides.release ?? {
      evaluation: { mode: 'noisy', rounds: 'final', scoreBins: 4 },
      trainingExamples: 'none',
    },
    silos: overrides.siloIds ?? Array.from({ length: overrides.silos ?? 2 }, () => randomUUID()),
    ...(overrides.aggregation ? { aggregation: overrides.aggregation } : {}),
    ...(overrides.screening ? { screening: overrides.screening } : {}),
    ...(overrides.secureAggregation ? { secureAggregation: overrides.secureAggregation } : {}),
  };
}
