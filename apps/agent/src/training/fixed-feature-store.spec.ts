import {
  fixedFeatures,
  initialNetworkParameters,
  seededUniform,
  selectBackend,
  type LatticeNoiseSource,
  type NetworkExampleSource,
} from '@tessera/ml';
import type { LabelRule, NetworkSpec } from '@tessera/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { FixedFeatureStore } from './fixed-feature-store';
import type { LocalTrainingOptions } from './plan-mapping.util';
import { NetworkStudyModel, type SplitData, type StreamedRows } from './study-model';

beforeAll(async () => {
  await selectBackend('wasm');
});

const SIDE = 12;
const PIXELS = SIDE * SIDE;

/** The digits DP preset's layers on 12×12 images: scattering J = 2, L = 4 (3×3×25), group norm, linear. */
const spec: NetworkSpec = {
  format: 'tessera.network/1',
  input: { kind: 'image', height: SIDE, width: SIDE, channels: 1 },
  layers: [
    { id: 'scatter', kind: 'scattering', scales: 2, angles: 4 },
    { id: 'norm', kind: 'groupNorm', groups: 25 },
    { id: 'flatten', kind: 'flatten' },
    { id: 'logits', kind: 'dense', units: 10 },
  ],
  task: { kind: 'multiclass', classes: 10 },
};
const label: LabelRule = {
  column: 'label',
  operator: 'class',
  classes: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
};

/** Rows read from memory as the image splits read them from disk, counting plain reads; optionally augmenting. */
class CountingRows implements StreamedRows, NetworkExampleSource {
  plainReads = 0;
  trainingReads = 0;
  readonly n: number;

  constructor(
    private readonly x: Float32Array,
    private readonly augmented = false,
  ) {
    this.n = x.length / PIXELS;
  }

  readPlain(indices: ArrayLike<number>, out: Float32Array): Promise<void> {
    this.plainReads++;
    for (let k = 0; k < indices.length; k++) {
      out.set(this.x.subarray(indices[k]! * PIXELS, (indices[k]! + 1) * PIXELS), k * PIXELS);
    }
    return Promise.resolve();
  }

  withAugmentation(): NetworkExampleSource {
    return this;
  }

  readRows(indices: ArrayLike<number>, out: Float32Array): Promise<void> {
    this.trainingReads++;
    return this.readPlain(indices, out);
  }

  augments(): boolean {
    return this.augmented;
  }
}

function split(n: number, seed: number, augmented = false): { split: SplitData; rows: CountingRows; x: Float32Array } {
  const random = seededUniform(seed);
  const x = Float32Array.from({ length: n * PIXELS }, () => 0.2 * random());
  const y = Int32Array.from({ length: n }, () => Math.floor(random() * 10));
  for (let i = 0; i < n; i++) for (let c = 1; c < SIDE - 1; c++) x[i * PIXELS + (y[i]! + 1) * SIDE + c] = 1;
  const rows = new CountingRows(x, augmented);
  return { split: { n, y, x: rows }, rows, x };
}

function seededNoise(seed: number): LatticeNoiseSource {
  const random = seededUniform(seed);
  return (length) => Float64Array.from({ length }, () => Math.round(6 * (random() - 0.5)));
}

const dpOptions = (): LocalTrainingOptions => ({
  epochs: 1,
  learningRate: 0.5,
  dp: { clipNorm: 1, noiseMultiplier: 1.2, samplingRate: 0.1, expectedBatchSize: 32, noise: seededNoise(9) },
});

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('FixedFeatureStore with NetworkStudyModel', () => {
  it('computes the features once and trains every round to the bytes of the uncached path', async () => {
    const cachedData = split(300, 1);
    const plainData = split(300, 1);
    const cached = new NetworkStudyModel(spec, label, new FixedFeatureStore());
    // A budget of 0 bytes: the store declines, and the model transforms each batch of images as before.
    const uncached = new NetworkStudyModel(spec, label, new FixedFeatureStore(0));

    let parametersA = initialNetworkParameters(spec, 5);
    let parametersB = parametersA;
    for (let round = 0; round < 3; round++) {
      const a = await cached.train(parametersA, cachedData.split, dpOptions(), 100 + round);
      const b = await uncached.train(parametersB, plainData.split, dpOptions(), 100 + round);
      expect(bytes(a.parameters)).toEqual(bytes(b.parameters));
      expect(a.lossHistory).toEqual(b.lossHistory);
      expect(a.delta.some((d) => d !== 0)).toBe(true);
      parametersA = a.parameters;
      parametersB = b.parameters;
    }
    // Cached: two plain reads of 256 and 44 rows, once; no training read of images. Uncached: one read per step.
    expect(cachedData.rows.plainReads).toBe(2);
    expect(cachedData.rows.trainingReads).toBe(0);
    expect(plainData.rows.trainingReads).toBe(30);

    const evaluatedA = await cached.evaluate(parametersA, cachedData.split);
    const evaluatedB = await uncached.evaluate(parametersB, plainData.split);
    expect(evaluatedA.exact).toEqual(evaluatedB.exact);
    expect(evaluatedA.loss).toBe(evaluatedB.loss);
    expect(cachedData.rows.plainReads).toBe(2);
  }, 120_000);

  it('keeps bit-identical features per split and front, and declines beyond the budget', async () => {
    const { split: data, x } = split(40, 2);
    const store = new FixedFeatureStore();
    const first = await store.featuresOf(spec, data);
    expect(first).not.toBeNull();
    expect(bytes(first!)).toEqual(bytes(await fixedFeatures(spec, x)));
    expect(await store.featuresOf(spec, data)).toBe(first);
    // 40 rows × 225 features × 4 bytes = 36,000 bytes.
    expect(await new FixedFeatureStore(35_999).featuresOf(spec, data)).toBeNull();
    expect(await new FixedFeatureStore(36_000).featuresOf(spec, data)).not.toBeNull();
    const conv: NetworkSpec = {
      ...spec,
      layers: [
        { id: 'conv', kind: 'conv2d', filters: 2, kernel: 3, stride: 2 },
        { id: 'flatten', kind: 'flatten' },
        { id: 'logits', kind: 'dense', units: 10 },
      ],
    };
    expect(await store.featuresOf(conv, data)).toBeNull();
  }, 60_000);

  it('trains on the augmented reads, never on kept features, when the plan augments', async () => {
    const { split: data, rows } = split(60, 3, true);
    const model = new NetworkStudyModel(spec, label, new FixedFeatureStore());
    await model.train(initialNetworkParameters(spec, 1), data, dpOptions(), 7);
    expect(rows.trainingReads).toBe(10);
    expect(rows.plainReads).toBe(10);
  }, 60_000);
});
