import { HEART_DISEASE_SCHEMA, parameterLayout, prepareTabularData } from '@tessera/ml';
import { describe, expect, it } from 'vitest';
import { buildPlan, readHeartDisease } from '../testing/study.test-util';
import { epsilonForNoise, privacyMechanismOf } from '@tessera/dp';
import {
  cryptoUniform,
  dpSgdConfigFor,
  localTrainingOptionsOf,
  modelSpecOf,
  tabularSchemaOf,
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
    expect(schema).toBe(plan.schema);
    expect(schema).toEqual(HEART_DISEASE_SCHEMA);
    const data = prepareTabularData(readHeartDisease(), schema);
    expect(data.featureNames).toHaveLength(modelSpecOf(plan).inputDim);
    // The declared scaling, not the file's statistics: age 63 (the first Cleveland record) encodes as (63 − 55)/10.
    const records = [data.train, data.test].flatMap((s) => Array.from({ length: s.n }, (_, i) => s.x[i * 13]!));
    expect(records).toContain(Math.fround(0.8));
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

  it('turns a DP-SGD plan into per-example clipping, Gaussian noise and Poisson sampling with its own σ', async () => {
    expect(dpSgdConfigFor(buildPlan())).toBeUndefined();
    const plan = buildPlan({
      privacy: {
        mode: 'dp-sgd',
        unit: 'record',
        targetEpsilon: 1,
        delta: 1e-5,
        clipNorm: 1,
        noiseMultiplier: 'derive',
        samplingRate: 0.1,
      },
    });
    const dp = dpSgdConfigFor(plan)!;
    const m = privacyMechanismOf(plan)!;
    // The noisy sum is divided by the plan's batch size (32 in buildPlan), a public constant, never by q·n.
    expect(dp).toMatchObject({
      clipNorm: 1,
      samplingRate: 0.1,
      noiseMultiplier: m.noiseMultiplier,
      expectedBatchSize: plan.training.batchSize,
    });
    expect(plan.training.batchSize).toBe(32);
    // The agent's σ meets the target for the whole study: steps = rounds × epochs × round(1/q).
    expect(
      epsilonForNoise({
        noiseMultiplier: dp.noiseMultiplier,
        samplingRate: 0.1,
        steps: m.stepsPerRound * m.rounds,
        delta: 1e-5,
      }).epsilon,
    ).toBeLessThanOrEqual(1);
    // Integers of the discrete Gaussian N_Z(0, 2²), drawn on the agent's noise thread (20,000 values is above the
    // size drawn in place).
    const noise = await dp.noise(20_000, 2);
    expect(noise).toBeInstanceOf(Float64Array);
    expect(noise).toHaveLength(20_000);
    expect(Array.from(noise).every(Number.isInteger)).toBe(true);
    const variance = Array.from(noise).reduce((a, v) => a + v * v, 0) / noise.length;
    expect(variance).toBeGreaterThan(4 * 0.95);
    expect(variance).toBeLessThan(4 * 1.05);
    // Under DP the batch is Poisson-sampled: the plan's batch size reaches trainLocal as dp.expectedBatchSize only.
    expect(localTrainingOptionsOf(plan)).not.toHaveProperty('batchSize');
    expect(localTrainingOptionsOf(plan).dp).toMatchObject({ expectedBatchSize: 32 });
    // DP-FedAvg trains without per-example noise: the hub adds it to the clipped updates' sum.
    expect(
      dpSgdConfigFor(
        buildPlan({
          privacy: {
            mode: 'dp-fedavg',
            unit: 'silo',
            targetEpsilon: 4,
            delta: 1e-5,
            clipNorm: 1,
            noiseMultiplier: 'derive',
          },
        }),
      ),
    ).toBeUndefined();
  });

  it('draws CSPRNG uniforms in [0, 1)', () => {
    const u = cryptoUniform();
    const draws = Array.from({ length: 5000 }, u);
    expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...draws)).toBeLessThan(1);
    expect(draws.reduce((a, b) => a + b, 0) / draws.length).toBeCloseTo(0.5, 1);
  });
});
