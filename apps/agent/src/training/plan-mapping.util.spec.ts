import { HEART_DISEASE_SCHEMA, parameterLayout, prepareTabularData } from '@tessera/ml';
import { describe, expect, it } from 'vitest';
import { buildPlan, readHeartDisease } from '../testing/study.test-util';
import {
  dpSgdConfigFor,
  localTrainingOptionsOf,
  modelSpecOf,
  tabularSchemaOf,
  UnsupportedPrivacyModeError,
} from './plan-mapping.util';

describe('plan → @tessera/ml', () => {
  it('maps logistic regression to the encoded input width (8 numeric + 3 + 2 dummies = 13, FLamby)', () => {
    const spec = modelSpecOf(buildPlan());
    expect(spec).toEqual({ kind: 'logistic-regression', inputDim: 13 });
    expect(parameterLayout(spec).size).toBe(14);
  });

  it('maps an MLP as a binary task with its hidden layers and activation', () => {
    const spec = modelSpecOf(buildPlan({ model: { kind: 'mlp', hiddenLayers: [16, 8], activation: 'tanh' } }));
    expect(spec).toEqual({ kind: 'mlp', inputDim: 13, hiddenLayers: [16, 8], activation: 'tanh', task: 'binary' });
    expect(parameterLayout(spec).size).toBe(13 * 16 + 16 + 16 * 8 + 8 + 8 + 1);
  });

  it("passes the plan's schema to the data preparation unchanged, giving the same columns as ml's own schema", () => {
    const plan = buildPlan();
    const schema = tabularSchemaOf(plan);
    expect(schema).toEqual(HEART_DISEASE_SCHEMA);
    expect(prepareTabularData(readHeartDisease(), schema).featureNames).toHaveLength(modelSpecOf(plan).inputDim);
  });

  it('takes epochs, batch size and learning rate from the plan; μ only with fedprox', () => {
    expect(
      localTrainingOptionsOf(buildPlan({ training: { localEpochs: 2, batchSize: 16, learningRate: 0.05 } })),
    ).toEqual({
      epochs: 2,
      batchSize: 16,
      learningRate: 0.05,
    });
    expect(localTrainingOptionsOf(buildPlan({ training: { algorithm: 'fedprox', proximalMu: 0.01 } }))).toMatchObject({
      proximalMu: 0.01,
    });
    expect(localTrainingOptionsOf(buildPlan({ training: { proximalMu: 0.01 } }))).not.toHaveProperty('proximalMu');
  });

  it('supports only privacy mode none for now; DP modes fail loudly rather than train without noise', () => {
    expect(dpSgdConfigFor({ mode: 'none' })).toBeUndefined();
    const dp = {
      mode: 'dp-fedavg',
      unit: 'silo',
      targetEpsilon: 4,
      delta: 1e-5,
      clipNorm: 1,
      noiseMultiplier: 1,
    } as const;
    expect(() => dpSgdConfigFor(dp)).toThrow(UnsupportedPrivacyModeError);
    expect(() => localTrainingOptionsOf(buildPlan({ privacy: dp }))).toThrow(
      'privacy mode dp-fedavg not supported by this agent version',
    );
  });
});
