import { initialParameters, parseModelSpec, seededUniform, selectBackend, trainLocal } from '@tessera/ml';
import { SELECTION_CANDIDATES, type SelectionCandidate, type StudyPlan } from '@tessera/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildPlan } from '../testing/study.test-util';
import { modelSpecOf, personalizationOptionsOf } from '../training/plan-mapping.util';
import { RegistryStudyModel, type LocalEvaluation, type SplitData, type StudyModel } from '../training/study-model';
import {
  candidateParameters,
  describeSelection,
  foldsOf,
  interpolate,
  selectByCrossValidation,
  subsetSplit,
  type CandidateTrainers,
} from './model-selection';
import { trainPersonalModels } from './personal-models';

beforeAll(async () => {
  await selectBackend('cpu');
});

/** n records of d features, label = [x0 > 0] (or its opposite when `flipped`): a task a linear model learns. */
function linearData(n: number, d: number, seed: number, flipped = false): SplitData {
  const random = seededUniform(seed);
  const x = new Float32Array(n * d);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) x[i * d + j] = 2 * random() - 1;
    y[i] = x[i * d]! > 0 !== flipped ? 1 : 0;
  }
  return { n, x, y };
}

describe('foldsOf', () => {
  it('deals every record into exactly one of k folds of sizes within one, reproducibly from the seed', () => {
    const folds = foldsOf(23, 5, 7);
    expect(folds.map((f) => f.length).sort()).toEqual([4, 4, 5, 5, 5]);
    const all = folds.flatMap((f) => Array.from(f)).sort((a, b) => a - b);
    expect(all).toEqual(Array.from({ length: 23 }, (_, i) => i));
    expect(foldsOf(23, 5, 7)).toEqual(folds);
    expect(foldsOf(23, 5, 8)).not.toEqual(folds);
  });
});

describe('subsetSplit', () => {
  it('copies the chosen rows and labels of an in-memory split', () => {
    const split: SplitData = { n: 3, x: Float32Array.from([1, 2, 3, 4, 5, 6]), y: Float32Array.from([0, 1, 0]) };
    const sub = subsetSplit(split, Int32Array.from([2, 0]));
    expect(sub.n).toBe(2);
    expect(Array.from(sub.x as Float32Array)).toEqual([5, 6, 1, 2]);
    expect(Array.from(sub.y)).toEqual([0, 0]);
  });

  it('reads a streamed split through its own reader at the mapped rows', async () => {
    const reads: number[][] = [];
    const split: SplitData = {
      n: 4,
      y: Int32Array.from([3, 2, 1, 0]),
      x: {
        readPlain: (indices, out) => {
          reads.push(Array.from(indices));
          Array.from(indices).forEach((row, k) => (out[k] = row * 10));
          return Promise.resolve();
        },
        withAugmentation: () => ({
          n: 4,
          readRows: (indices, out) => {
            reads.push(Array.from(indices));
            Array.from(indices).forEach((row, k) => (out[k] = row * 100));
            return Promise.resolve();
          },
        }),
        augments: () => false,
      },
    };
    const sub = subsetSplit(split, Int32Array.from([1, 3]));
    expect(Array.from(sub.y)).toEqual([2, 0]);
    if (sub.x instanceof Float32Array) throw new Error('expected a streamed split');
    const out = new Float32Array(2);
    await sub.x.readPlain([1, 0], out);
    expect(Array.from(out)).toEqual([30, 10]);
    const source = sub.x.withAugmentation(1);
    expect(source.n).toBe(2);
    await source.readRows([0], out, 0);
    expect(out[0]).toBe(100);
    expect(reads).toEqual([[3, 1], [1]]);
  });
});

describe('interpolate and candidateParameters', () => {
  it('mixes the global and local-only parameters with the candidate’s weight', () => {
    const global = Float32Array.from([1, 0, -2]);
    const local = Float32Array.from([3, 4, 2]);
    expect(Array.from(interpolate(global, local, 0.25))).toEqual([2.5, 3, 1]);
    const fineTuned = Float32Array.from([9, 9, 9]);
    const models = { global, fineTuned, localOnly: local };
    const of = (c: SelectionCandidate) => Array.from(candidateParameters(c, models));
    expect(of({ kind: 'global' })).toEqual([1, 0, -2]);
    expect(of({ kind: 'fine-tuned' })).toEqual([9, 9, 9]);
    expect(of({ kind: 'local-only' })).toEqual([3, 4, 2]);
    expect(of({ kind: 'mix', globalWeight: 0.5 })).toEqual([2, 2, 0]);
    expect(() => interpolate(global, Float32Array.from([1]), 0.5)).toThrow(RangeError);
  });
});

/**
 * A model whose "loss" on a split is the squared distance of the first parameter to `target`, and trainers that
 * return fixed parameters: the selection's arithmetic without training. Records every split evaluated.
 */
function fakeModel(target: number, evaluated: SplitData[]): StudyModel {
  return {
    parameterCount: 1,
    inputWidth: 1,
    train: () => Promise.reject(new Error('not used')),
    evaluate: (parameters: Float32Array, split: SplitData): Promise<LocalEvaluation> => {
      evaluated.push(split);
      const loss = (parameters[0]! - target) ** 2;
      return Promise.resolve({ loss, n: split.n, exact: null as never, summary: '' });
    },
    scoreHistograms: () => Promise.reject(new Error('not used')),
  };
}

function fixedTrainers(global: number, fineTuned: number, localOnly: number): CandidateTrainers {
  return {
    global: Float32Array.from([global]),
    fineTune: () => Promise.resolve({ parameters: Float32Array.from([fineTuned]), steps: 2 }),
    localOnly: () => Promise.resolve({ parameters: Float32Array.from([localOnly]), steps: 3 }),
  };
}

describe('selectByCrossValidation', () => {
  const train: SplitData = { n: 10, x: new Float32Array(10), y: new Float32Array(10) };

  it('chooses the candidate of lowest mean validation loss, validating only on held-out training records', async () => {
    const evaluated: SplitData[] = [];
    // global 0, fine-tuned 4, local-only 2: the mix 0.25·0 + 0.75·2 = 1.5 is nearest to 1.4.
    const s = await selectByCrossValidation(fakeModel(1.4, evaluated), fixedTrainers(0, 4, 2), train, 5, 3);
    expect(s.chosen).toEqual({ kind: 'mix', globalWeight: 0.25 });
    expect(s.folds).toBe(5);
    expect(s.steps).toBe(5 * (2 + 3));
    expect(s.scores.map((x) => x.candidate)).toEqual([...SELECTION_CANDIDATES]);
    expect(s.scores.find((x) => x.candidate.kind === 'global')!.loss).toBeCloseTo(1.96, 6);
    // Each fold's validation split is 2 of the 10 training records, each candidate scored on every fold.
    expect(evaluated).toHaveLength(5 * SELECTION_CANDIDATES.length);
    expect(new Set(evaluated.map((v) => v.n))).toEqual(new Set([2]));
    expect(describeSelection(s)).toMatch(/^chose 0\.25·global \+ 0\.75·local-only by 5-fold cross-validation/);
  });

  it('keeps the earlier candidate on a tie, and the global model when there are fewer records than folds', async () => {
    const tie = await selectByCrossValidation(fakeModel(1, []), fixedTrainers(1, 1, 1), train, 2, 3);
    expect(tie.chosen).toEqual({ kind: 'global' });
    const few = await selectByCrossValidation(fakeModel(5, []), fixedTrainers(0, 5, 5), train, 11, 3);
    expect(few).toMatchObject({ chosen: { kind: 'global' }, folds: 0, scores: [] });
    expect(describeSelection(few)).toMatch(/too few training records/);
  });

  it('with real training, leaves a global model that is wrong for this silo for one trained on the silo', async () => {
    const spec = parseModelSpec({ kind: 'logistic-regression', inputDim: 2 });
    const model = new RegistryStudyModel(spec);
    // The "federation" learned x0 > 0; this silo's labels are the opposite.
    const elsewhere = linearData(200, 2, 1);
    const global = (
      await trainLocal({
        spec,
        parameters: initialParameters(spec, 1),
        x: elsewhere.x as Float32Array,
        y: elsewhere.y,
        epochs: 20,
        learningRate: 0.5,
        batchSize: 16,
        seed: 1,
      })
    ).parameters;
    const silo = linearData(60, 2, 2, true);
    const options = { epochs: 20, learningRate: 0.5, batchSize: 16 };
    const trainers: CandidateTrainers = {
      global,
      fineTune: (data) => model.train(global, data, { ...options, epochs: 1 }, 5),
      localOnly: (data) => model.train(initialParameters(spec, 1), data, options, 6),
    };
    const s = await selectByCrossValidation(model, trainers, silo, 5, 9);
    expect(s.chosen).toEqual({ kind: 'local-only' });
    const best = Math.min(...s.scores.map((x) => x.loss));
    expect(s.scores.find((x) => x.candidate.kind === 'local-only')!.loss).toBe(best);
    expect(s.scores.find((x) => x.candidate.kind === 'global')!.loss).toBeGreaterThan(best + 1);
  });
});

describe("trainPersonalModels with method 'select'", () => {
  const select = (more: Partial<NonNullable<StudyPlan['personalization']>> = {}): StudyPlan => ({
    ...buildPlan({ training: { rounds: 2, localEpochs: 2 } }),
    personalization: { method: 'select', epochs: 2, validationFolds: 3, ...more },
  });
  const width = () => parseModelSpec(modelSpecOf(select())).inputDim;

  it('returns the chosen candidate trained on the whole training split, and the local-only model as baseline', async () => {
    const plan = select({ localBaseline: true });
    const model = new RegistryStudyModel(parseModelSpec(modelSpecOf(plan)));
    const train = linearData(40, width(), 4, true);
    const global = initialParameters(parseModelSpec(modelSpecOf(plan)), 99);
    const out = await trainPersonalModels(plan, model, global, train);
    expect(out.selection).not.toBeNull();
    expect(out.selection!.folds).toBe(3);
    expect(out.localBaseline).not.toBeNull();
    // Recomputed from the same seeds: the chosen candidate over the full training split is what was returned.
    const seed = (plan.training.initSeed + 7_919) % 2 ** 31;
    const tuned = await model.train(global, train, personalizationOptionsOf(plan), seed);
    const expected = candidateParameters(out.selection!.chosen, {
      global,
      fineTuned: tuned.parameters,
      localOnly: out.localBaseline!,
    });
    expect(Array.from(out.personalized)).toEqual(Array.from(expected));
    const again = await trainPersonalModels(select(), model, global, train);
    expect(again.localBaseline).toBeNull();
    expect(again.selection!.chosen).toEqual(out.selection!.chosen);
    expect(Array.from(again.personalized)).toEqual(Array.from(out.personalized));
  });

  it('refuses to select under differential privacy', async () => {
    const plan: StudyPlan = {
      ...buildPlan({
        privacy: {
          mode: 'dp-sgd',
          unit: 'record',
          targetEpsilon: 8,
          delta: 1e-5,
          clipNorm: 1,
          noiseMultiplier: 'derive',
          samplingRate: 0.1,
        },
      }),
      personalization: { method: 'select', epochs: 1 },
    };
    const model = new RegistryStudyModel(parseModelSpec(modelSpecOf(plan)));
    const train = linearData(20, width(), 5);
    await expect(trainPersonalModels(plan, model, new Float32Array(model.parameterCount), train)).rejects.toThrow(
      /refused under differential privacy/,
    );
  });
});
