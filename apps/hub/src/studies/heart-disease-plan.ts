import { HEART_DISEASE_SCHEMA, type PrivacyPlan, type ReleasePlan, type TabularStudyPlan } from '@tessera/protocol';

/**
 * The Fed-Heart-Disease study (FLamby's standard preprocessing, libs/ml/data/heart-disease/SOURCE.md): logistic
 * regression on 13 features across four hospitals. Used by the demo and the end-to-end tests.
 */
export function heartDiseasePlan(silos: string[], overrides: Partial<TabularStudyPlan> = {}): TabularStudyPlan {
  const privacy = overrides.privacy ?? { mode: 'none' };
  return {
    name: 'Fed-Heart-Disease',
    purpose: 'Predict angiographic coronary artery disease (num > 0) from 13 routine clinical features.',
    model: { kind: 'logistic-regression' },
    schema: structuredClone(HEART_DISEASE_SCHEMA),
    training: {
      rounds: 10,
      localEpochs: 5,
      batchSize: 16,
      learningRate: 0.05,
      algorithm: 'fedavg',
      serverOptimizer: { kind: 'fedadam', learningRate: 0.1, beta1: 0.9, beta2: 0.99, tau: 0.001 },
      initSeed: 42,
    },
    privacy: { mode: 'none' },
    participation: {
      minSilosPerRound: Math.min(2, silos.length),
      roundDeadlineSeconds: 60,
      maxRoundRetries: 1,
      onSiloFailure: 'continue',
    },
    release: defaultRelease(privacy),
    silos,
    ...overrides,
  };
}

/**
 * What the demo's plans release besides the update: under DP nothing without noise (record-level plans release a
 * noisy evaluation of the final model); without DP the exact metrics every round and the record counts, which the
 * steward sees listed as released without DP.
 */
export function defaultRelease(privacy: PrivacyPlan): ReleasePlan {
  switch (privacy.mode) {
    case 'dp-sgd':
      return { evaluation: { mode: 'noisy', rounds: 'final', scoreBins: 4 }, trainingExamples: 'none' };
    case 'dp-fedavg':
      return { evaluation: { mode: 'none' }, trainingExamples: 'none' };
    case 'none':
      return { evaluation: { mode: 'exact', rounds: 'every' }, trainingExamples: 'exact' };
  }
}
