import { describe, expect, it } from 'vitest';
import { HEART_DISEASE_SCHEMA } from './heart-disease-schema';
import { mlpNetwork, smallCnnNetwork } from './network-spec-presets';
import type { NetworkSpec } from './network-spec-schema';
import {
  describePlan,
  encodedFeatureCount,
  planHash,
  planNetwork,
  releasedWithoutDp,
  studyPlanProblems,
  type ImageSchema,
  type LabelRule,
  type StudyPlan,
} from './study-plan';
import { planForTest } from './study-plan.test-util';

const studyId = '7f3c2b1a-9e8d-4c6b-a5f4-3e2d1c0b9a87';
const siloIds = [
  '0b0f7c1e-3a52-4d8e-9f61-2c4b8a7d5e10',
  '5d2e9a47-8c13-4b6f-a0d9-71e3c5b28f46',
  'c8a1f3d2-6e4b-4a97-b5c0-9d2e7f18a364',
];

const features = encodedFeatureCount(HEART_DISEASE_SCHEMA);

/** The heart-disease plan with a network model and label rule. */
function networkPlan(
  network: NetworkSpec,
  label: StudyPlan['schema']['label'],
  overrides: Partial<StudyPlan> = {},
): StudyPlan {
  const base = planForTest({
    siloIds: siloIds.slice(0, 2),
    privacy: { mode: 'none' },
    release: { evaluation: { mode: 'exact', rounds: 'final' }, trainingExamples: 'none' },
  });
  return {
    ...base,
    model: { kind: 'network', network },
    schema: { ...structuredClone(HEART_DISEASE_SCHEMA), label },
    ...overrides,
  };
}

const fiveClass: LabelRule = { column: 'num', operator: 'class', classes: ['0', '1', '2', '3', '4'] };

const digitsSchema: ImageSchema = {
  kind: 'images',
  fileColumn: 'file',
  label: { column: 'label', operator: 'class', classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] },
  image: { color: 'grayscale', resize: 'stretch', normalization: { mean: [0.13], std: [0.31] } },
  split: { testFraction: 0.2, salt: 'digits/split/v1' },
};
const digitsCnn = smallCnnNetwork({ height: 28, width: 28, channels: 1, task: { kind: 'multiclass', classes: 10 } });

describe('plans of the registry models keep their hashes', () => {
  // Pinned from HEAD before network plans existed (same fixture as study-plan.spec.ts, MLP model): a plan without the
  // new keys is today's canonical JSON byte for byte.
  it('an MLP plan, version 1', () => {
    const plan = { ...planForTest({ siloIds }), model: { kind: 'mlp', hiddenLayers: [16, 8], activation: 'relu' } };
    expect(planHash(studyId, 1, plan as StudyPlan)).toBe(
      'bede009df8bfde257222418c5bc218d95633a9027e35e4097b50e82a931c9c80',
    );
    expect(studyPlanProblems(plan)).toEqual([]);
  });

  it('reads a registry plan as its preset for the layer table, without changing the plan', () => {
    const plan = planForTest({ siloIds });
    const before = JSON.stringify(plan);
    expect(planNetwork(plan).layers).toEqual([{ id: 'dense_1', kind: 'dense', units: 1 }]);
    expect(planNetwork(plan).input).toEqual({ kind: 'tabular', features });
    expect(JSON.stringify(plan)).toBe(before);
  });
});

describe('network plans', () => {
  it('accept a five-class heart-disease MLP, and the hash covers every layer', () => {
    const network = mlpNetwork({
      features,
      hiddenLayers: [16],
      activation: 'relu',
      task: { kind: 'multiclass', classes: 5 },
    });
    const plan = networkPlan(network, fiveClass);
    expect(studyPlanProblems(plan)).toEqual([]);
    const wider = networkPlan(
      mlpNetwork({ features, hiddenLayers: [17], activation: 'relu', task: { kind: 'multiclass', classes: 5 } }),
      fiveClass,
    );
    expect(planHash(studyId, 1, wider)).not.toBe(planHash(studyId, 1, plan));
  });

  it('accept a regression of thalach and say what exact evaluation releases', () => {
    const network = mlpNetwork({
      features: features - 1,
      hiddenLayers: [8],
      activation: 'relu',
      task: { kind: 'regression', loss: 'huber' },
    });
    const schema = structuredClone(HEART_DISEASE_SCHEMA);
    schema.features = schema.features.filter((f) => f.name !== 'thalach');
    const plan = {
      ...networkPlan(network, { column: 'thalach', operator: 'value', scaling: { center: 150, scale: 25 } }),
      schema: { ...schema, label: { column: 'thalach', operator: 'value', scaling: { center: 150, scale: 25 } } },
    } as StudyPlan;
    expect(studyPlanProblems(plan)).toEqual([]);
    expect(releasedWithoutDp(plan).join()).toMatch(/MAE, RMSE, R²/);
    expect(describePlan(plan).join('\n')).toMatch(/regression \(Huber loss/);
  });

  it('accept an image study and show its layer table to the steward', () => {
    const plan = { ...networkPlan(digitsCnn, digitsSchema.label), schema: digitsSchema };
    expect(studyPlanProblems(plan)).toEqual([]);
    const text = describePlan(plan).join('\n');
    expect(text).toMatch(/network \(tessera\.network\/1\), 7 layers, 105,866 parameters; 10-class classification/);
    expect(text).toMatch(/conv_1\s+conv2d\s+input\s+\[28, 28, 16\]\s+160/);
    expect(text).toMatch(/images:\s+manifest column file; grayscale/);
  });

  it('refuse an impossible graph naming the layer and the field', () => {
    const broken: NetworkSpec = {
      ...digitsCnn,
      layers: digitsCnn.layers.map((l) => (l.id === 'pool_2' ? { ...l, size: 15 } : l)),
    };
    const problems = studyPlanProblems({ ...networkPlan(broken, digitsSchema.label), schema: digitsSchema });
    expect(problems).toEqual([
      'model.network: layer "pool_2", size: a 15×15 window (dilation 1×1) does not fit a 14×14 input without padding',
    ]);
  });

  it('refuse a structurally wrong layer by its id, and batch normalisation with the reason', () => {
    const badKernel = { ...digitsCnn, layers: [{ id: 'conv_1', kind: 'conv2d', filters: 16, kernel: 0 }] };
    expect(
      studyPlanProblems({
        ...networkPlan(digitsCnn, digitsSchema.label),
        schema: digitsSchema,
        model: { kind: 'network', network: badKernel },
      }),
    ).toEqual([expect.stringMatching(/^model\.network: layer "conv_1", kernel: /)]);
    const batchNorm = { ...digitsCnn, layers: [{ id: 'bn', kind: 'batchNorm' }, ...digitsCnn.layers] };
    expect(
      studyPlanProblems({
        ...networkPlan(digitsCnn, digitsSchema.label),
        schema: digitsSchema,
        model: { kind: 'network', network: batchNorm },
      }),
    ).toEqual([expect.stringMatching(/^model\.network: layer "bn", kind: batch normalisation mixes the examples/)]);
  });

  it('refuse a network that does not meet the data, the label or the release', () => {
    const mlp5 = mlpNetwork({
      features: features + 1,
      hiddenLayers: [4],
      activation: 'relu',
      task: { kind: 'multiclass', classes: 4 },
    });
    expect(studyPlanProblems(networkPlan(mlp5, fiveClass))).toEqual([
      'model.network.task.classes: the network has 4 classes, schema.label.classes declares 5',
      expect.stringMatching(/^model\.network\.input\.features: the schema encodes each record to 13 values/),
    ]);
    const binaryNet = mlpNetwork({ features, hiddenLayers: [4], activation: 'relu', task: { kind: 'binary' } });
    expect(studyPlanProblems(networkPlan(binaryNet, fiveClass))).toEqual([
      "model.network.task.kind: the network learns a binary task, but schema.label (operator 'class') defines a multiclass label",
    ]);
    const rgb = { ...digitsSchema, image: { ...digitsSchema.image, color: 'rgb' as const } };
    expect(studyPlanProblems({ ...networkPlan(digitsCnn, digitsSchema.label), schema: rgb })).toEqual([
      'model.network.input.channels: the schema converts images to rgb (3 channels); the network reads 1',
      'schema.image.normalization: needs one mean and one std per channel (3 for rgb); got 1 and 1',
    ]);
    const noisy = {
      ...networkPlan(digitsCnn, digitsSchema.label),
      schema: digitsSchema,
      privacy: planForTest().privacy,
      release: { evaluation: { mode: 'noisy', rounds: 'final', scoreBins: 4 }, trainingExamples: 'none' },
    } as StudyPlan;
    expect(studyPlanProblems(noisy)).toEqual([
      expect.stringMatching(/^release\.evaluation: noisy evaluation releases score histograms of a binary prediction/),
    ]);
  });

  it('refuse a registry model on images or on a non-binary label', () => {
    const plan = {
      ...planForTest({ siloIds }),
      schema: { ...structuredClone(HEART_DISEASE_SCHEMA), label: fiveClass },
    };
    expect(studyPlanProblems(plan)).toEqual([
      'schema.label.operator: logistic-regression predicts a binary label; a multiclass label needs a network model',
    ]);
    const images = { ...planForTest({ siloIds }), schema: digitsSchema };
    expect(studyPlanProblems(images)).toContain(
      'model.kind: logistic-regression reads tabular features; an image study needs a network model',
    );
  });
});
