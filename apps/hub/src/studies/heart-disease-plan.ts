import { HEART_DISEASE_SCHEMA, type StudyPlan } from '@tessera/protocol';

/**
 * The Fed-Heart-Disease study (FLamby's standard preprocessing, libs/ml/data/heart-disease/SOURCE.md): logistic
 * regression on 13 features across four hospitals. Used by the demo and the end-to-end tests.
 */
export function heartDiseasePlan(silos: string[], overrides: Partial<StudyPlan> = {}): StudyPlan {
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
    silos,
    ...overrides,
  };
}
