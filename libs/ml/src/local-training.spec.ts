import * as tf from '@tensorflow/tfjs';
import { latticeIntegers, latticeNoisePlan, SeededRandomSource } from '@tessera/dp';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';
import { clippedBatchGradients } from './dense-network';
import {
  conservativeClipNorm,
  poissonSample,
  trainLocal,
  type LatticeNoiseSource,
  type LocalTrainingInput,
} from './local-training';
import { TrainingInputErrorCode, TrainingInputException } from './ml.exception';
import type { ModelSpec } from './model-spec';
import { initialParameters, parameterLayout } from './parameter-layout';
import { seededUniform } from './seeded-random';

const spec: ModelSpec = { kind: 'mlp', inputDim: 3, hiddenLayers: [4], activation: 'tanh', task: 'binary' };
const size = parameterLayout(spec).size;

/** Linearly separable-ish data: label = [x0 + x1 > 0]. */
function dataset(n: number, seed: number) {
  const random = seededUniform(seed);
  const x = Float32Array.from({ length: n * 3 }, () => 2 * random() - 1);
  const y = Uint8Array.from({ length: n }, (_, i) => (x[3 * i]! + x[3 * i + 1]! > 0 ? 1 : 0));
  return { x, y };
}

/** Deterministic integer "noise": latticeSigma·(1, -1, 1, ...) so that the exact update can be predicted. */
function alternatingNoise(calls: { length: number; latticeSigma: number }[]): LatticeNoiseSource {
  return (length, latticeSigma) => {
    calls.push({ length, latticeSigma });
    return Float64Array.from({ length }, (_, i) => (i % 2 === 0 ? latticeSigma : -latticeSigma));
  };
}

/** No noise at all, through the lattice path (σ > 0): the release is the rounded sum. */
const zeroNoise: LatticeNoiseSource = (length) => new Float64Array(length);

/** The real thing: exact discrete-Gaussian integers from a seeded stream. */
function seededNoise(seed: string): LatticeNoiseSource {
  const rng = new SeededRandomSource(seed);
  return (length, latticeSigma) => latticeIntegers(length, latticeSigma, rng);
}

function l2(v: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i]! * v[i]!;
  return Math.sqrt(sum);
}

const base = (): LocalTrainingInput => {
  const { x, y } = dataset(40, 1);
  return { spec, parameters: initialParameters(spec, 2), x, y, learningRate: 0.1, batchSize: 8, epochs: 2, seed: 9 };
};

async function codeOf(input: LocalTrainingInput): Promise<TrainingInputErrorCode | undefined> {
  try {
    await trainLocal(input);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(TrainingInputException);
    return (error as TrainingInputException).code;
  }
}

beforeAll(async () => {
  await selectBackend('cpu');
});

describe('trainLocal without DP', () => {
  it('is deterministic given the seed, reports delta = new − old, and leaves the input untouched', async () => {
    const input = base();
    const before = input.parameters.slice();
    const a = await trainLocal(input);
    const b = await trainLocal(input);
    expect(a.parameters).toEqual(b.parameters);
    expect(input.parameters).toEqual(before);
    a.delta.forEach((d, i) => expect(d).toBeCloseTo(a.parameters[i]! - before[i]!, 6));
    expect(a.steps).toBe(10); // 2 epochs × ceil(40 / 8)
    expect(a.examplesUsed).toBe(80);
    expect(a.lossHistory).toHaveLength(2);
    expect(a.backend).toBe('cpu');
  });

  it('takes one full-batch step equal to −lr · ∇(mean loss) computed by tfjs autodiff', async () => {
    const input = { ...base(), batchSize: 40, epochs: undefined, steps: 1 };
    const result = await trainLocal(input);
    const layout = parameterLayout(spec);
    const params = layout.entries.map((e) =>
      tf.tensor(input.parameters.slice(e.offset, e.offset + e.length), [...e.shape]),
    );
    const grads = tf.grads((w1: tf.Tensor, b1: tf.Tensor, w2: tf.Tensor, b2: tf.Tensor) => {
      const h = tf.tanh(tf.add(tf.matMul(tf.tensor2d(input.x, [40, 3]), w1 as tf.Tensor2D), b1));
      const z = tf.add(tf.matMul(h, w2 as tf.Tensor2D), b2);
      return tf.losses.sigmoidCrossEntropy(tf.tensor2d(Float32Array.from(input.y), [40, 1]), z);
    })(params);
    layout.entries.forEach((e, k) => {
      const g = grads[k]!.dataSync();
      for (let i = 0; i < e.length; i++) {
        expect(result.parameters[e.offset + i]!).toBeCloseTo(input.parameters[e.offset + i]! - 0.1 * g[i]!, 5);
      }
    });
    tf.dispose([...params, ...grads]);
  });

  it('lowers the training loss on learnable data', async () => {
    const result = await trainLocal({ ...base(), epochs: 15, learningRate: 0.5 });
    expect(result.lossHistory[14]!).toBeLessThan(result.lossHistory[0]! * 0.8);
  });

  it('FedProx keeps the local model closer to the global one', async () => {
    const distance = (p: Float32Array, q: Float32Array) => Math.hypot(...Array.from(p, (v, i) => v - q[i]!));
    const input = { ...base(), epochs: 5, learningRate: 0.5 };
    const plain = await trainLocal(input);
    const proximal = await trainLocal({ ...input, proximalMu: 1 });
    expect(distance(proximal.parameters, input.parameters)).toBeLessThan(distance(plain.parameters, input.parameters));
  });
});

describe('trainLocal with DP-SGD', () => {
  it('rounds the clipped sum to the lattice, adds the integer noise, and divides by the expected batch size', async () => {
    const calls: { length: number; latticeSigma: number }[] = [];
    const input = { ...base(), batchSize: undefined, epochs: undefined, steps: 1 };
    // expectedBatchSize 7 on purpose: not q·n = 10, and not the realised batch size.
    const dp = {
      clipNorm: 0.05,
      noiseMultiplier: 1.3,
      samplingRate: 0.25,
      expectedBatchSize: 7,
      noise: alternatingNoise(calls),
    };
    const lattice = latticeNoisePlan({ clipNorm: 0.05, noiseMultiplier: 1.3, dimension: size });
    // Replay the sampling stream to know which rows the step drew.
    const chosen = Array.from(poissonSample(40, 0.25, seededUniform(77)));
    const result = await trainLocal({ ...input, dp: { ...dp, sampling: seededUniform(77) } });
    expect(calls).toEqual([{ length: size, latticeSigma: lattice.latticeSigma }]);
    expect(result.examplesUsed).toBe(chosen.length);

    const xb = Float32Array.from(chosen.flatMap((i) => Array.from(input.x.subarray(3 * i, 3 * i + 3))));
    const yb = chosen.map((i) => input.y[i]!);
    const { clippedSum, clipFactors } = clippedBatchGradients(
      spec,
      input.parameters,
      xb,
      yb,
      conservativeClipNorm(spec, 0.05),
    );
    expect(Array.from(clipFactors).some((c) => c < 1)).toBe(true);
    const gamma = lattice.granularity;
    for (let k = 0; k < size; k++) {
      const z = k % 2 === 0 ? lattice.latticeSigma : -lattice.latticeSigma;
      const released = (Math.round(clippedSum[k]! / gamma) + z) * gamma;
      expect(result.parameters[k]!).toBeCloseTo(input.parameters[k]! - (0.1 * released) / 7, 5);
    }
  });

  it('normalises by the plan constant: one more record (same batches) changes the update by its clipped gradient only', async () => {
    // q = 1, one step: both datasets' batches are every record, so the sampled batches agree on the shared records.
    const { x, y } = dataset(41, 3);
    const common = {
      spec,
      parameters: initialParameters(spec, 2),
      learningRate: 1,
      steps: 1,
      dp: { clipNorm: 0.5, noiseMultiplier: 1, samplingRate: 1, expectedBatchSize: 16, noise: zeroNoise },
    };
    const small = await trainLocal({ ...common, x: x.subarray(0, 40 * 3), y: y.subarray(0, 40) });
    const large = await trainLocal({ ...common, x, y });
    const extra = clippedBatchGradients(
      spec,
      common.parameters,
      x.subarray(40 * 3),
      [y[40]!],
      conservativeClipNorm(spec, 0.5),
    ).clippedSum;
    expect(l2(extra)).toBeGreaterThan(0.1);
    const gamma = latticeNoisePlan({ clipNorm: 0.5, noiseMultiplier: 1, dimension: size }).granularity;
    // Lattice rounding (γ per coordinate), float32 sums and updates: far below the effect of a data-dependent
    // normaliser, which would rescale all 40 shared contributions by 40/41 (checked to be large just below).
    const tolerance = 1e-5;
    for (let k = 0; k < size; k++) {
      expect(Math.abs(large.delta[k]! - small.delta[k]! + extra[k]! / 16)).toBeLessThan(tolerance + gamma);
    }
    expect(l2(small.delta) / 41).toBeGreaterThan(100 * tolerance);
  });

  it(
    'clips conservatively: no clipped per-example gradient exceeds C after float32 rounding',
    { timeout: 30_000 },
    () => {
      const wide: ModelSpec = { kind: 'mlp', inputDim: 200, hiddenLayers: [128], activation: 'tanh', task: 'binary' };
      const parameters = initialParameters(wide, 5);
      const random = seededUniform(31);
      const clipNorm = 0.37;
      const target = conservativeClipNorm(wide, clipNorm);
      expect(target).toBeLessThan(clipNorm);
      expect(1 - target / clipNorm).toBeLessThan(1e-4); // the margin costs nothing measurable
      let clipped = 0;
      let rawOver = 0;
      for (let t = 0; t < 100; t++) {
        // Features of widely varying scale, so most gradients are far above C and get clipped.
        const scale = 10 ** (4 * random() - 1);
        const x = Float32Array.from({ length: 200 }, () => (2 * random() - 1) * scale);
        const { clippedSum, clipFactors } = clippedBatchGradients(wide, parameters, x, [t % 2], target);
        if (clipFactors[0]! < 1) clipped++;
        // The float64 norm of the float32 contribution that enters the sum.
        expect(l2(clippedSum)).toBeLessThanOrEqual(clipNorm);
        if (l2(clippedBatchGradients(wide, parameters, x, [t % 2], clipNorm).clippedSum) > clipNorm) rawOver++;
      }
      expect(clipped).toBeGreaterThan(60);
      // Why the margin: clipping to C itself (factor C / (norm + 1e-6), as Opacus does) lets float32 rounding push
      // the contribution above C (18 of these 100 examples on the cpu backend).
      expect(rawOver).toBeGreaterThan(0);
    },
  );

  it('learns a simple problem under DP (real discrete-Gaussian noise, σ = 0.8)', async () => {
    const { x, y } = dataset(400, 8);
    const result = await trainLocal({
      spec,
      parameters: initialParameters(spec, 2),
      x,
      y,
      learningRate: 0.5,
      epochs: 15,
      seed: 3,
      dp: {
        clipNorm: 1,
        noiseMultiplier: 0.8,
        samplingRate: 0.1,
        expectedBatchSize: 40,
        noise: seededNoise('converges'),
        sampling: seededUniform(19),
      },
    });
    expect(result.lossHistory).toHaveLength(15);
    expect(result.lossHistory[14]!).toBeLessThan(result.lossHistory[0]! * 0.7);
  });

  it('takes noise from an asynchronous source (another thread) with the same result, one request per step', async () => {
    const input = { ...base(), batchSize: undefined };
    const syncCalls: { length: number; latticeSigma: number }[] = [];
    const asyncCalls: { length: number; latticeSigma: number }[] = [];
    const sync = alternatingNoise(syncCalls);
    const later = alternatingNoise(asyncCalls);
    const dp = { clipNorm: 0.5, noiseMultiplier: 1.1, samplingRate: 0.2, expectedBatchSize: 8 };
    const a = await trainLocal({ ...input, dp: { ...dp, noise: sync, sampling: seededUniform(5) } });
    const b = await trainLocal({
      ...input,
      dp: {
        ...dp,
        noise: (length, latticeSigma) =>
          new Promise<Float64Array>((resolve) => setTimeout(() => resolve(later(length, latticeSigma)), 2)),
        sampling: seededUniform(5),
      },
    });
    expect(b.parameters).toEqual(a.parameters);
    // Requests run ahead of the steps, but never past the last one: nothing is drawn for nothing.
    expect(asyncCalls).toHaveLength(a.steps);
    expect(syncCalls).toHaveLength(a.steps);
  });

  it("fails with the noise source's error, without an unhandled rejection from the draws requested ahead", async () => {
    const input = { ...base(), batchSize: undefined };
    let calls = 0;
    const failing = (): Promise<Float64Array> => {
      calls++;
      return Promise.reject(new Error('noise thread died'));
    };
    await expect(
      trainLocal({
        ...input,
        dp: { clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.2, expectedBatchSize: 8, noise: failing },
      }),
    ).rejects.toThrow('noise thread died');
    expect(calls).toBe(2); // step 0 and the one requested ahead
  });

  it('bounds each step by lr·|B|·C / expectedBatchSize when σ = 0', async () => {
    const input = { ...base(), batchSize: undefined, epochs: undefined, steps: 1 };
    const calls: { length: number; latticeSigma: number }[] = [];
    const dp = {
      clipNorm: 1e-3,
      noiseMultiplier: 0,
      samplingRate: 0.5,
      expectedBatchSize: 20,
      noise: alternatingNoise(calls),
    };
    const result = await trainLocal({ ...input, dp });
    const norm = l2(result.delta);
    expect(norm).toBeLessThanOrEqual((0.1 * result.examplesUsed * 1e-3 * (1 + 1e-4)) / 20);
    expect(norm).toBeGreaterThan(0);
    expect(calls).toHaveLength(0);
  });

  it('samples each example with probability q (Poisson): examples used ≈ q·n·steps', async () => {
    const input = { ...base(), batchSize: undefined, epochs: undefined, steps: 60, seed: 4 };
    const q = 0.3;
    const result = await trainLocal({
      ...input,
      dp: { clipNorm: 1, noiseMultiplier: 1, samplingRate: q, expectedBatchSize: 12, noise: alternatingNoise([]) },
    });
    const mean = q * 40 * 60;
    const sd = Math.sqrt(40 * 60 * q * (1 - q));
    expect(Math.abs(result.examplesUsed - mean)).toBeLessThan(4 * sd);
  });

  it('includes each index independently with probability q (Poisson sampling by geometric gaps)', () => {
    const random = seededUniform(12);
    const n = 50;
    const q = 0.2;
    const draws = 2000;
    const hits = new Float64Array(n);
    const sizes: number[] = [];
    for (let t = 0; t < draws; t++) {
      const sample = poissonSample(n, q, random);
      sample.forEach((i) => hits[i]!++);
      sizes.push(sample.length);
      for (let k = 1; k < sample.length; k++) expect(sample[k]!).toBeGreaterThan(sample[k - 1]!);
    }
    // Marginals: each index ~ Binomial(draws, q); 5 sd is far outside chance for 50 indices.
    const sd = Math.sqrt(draws * q * (1 - q));
    hits.forEach((h) => expect(Math.abs(h - draws * q)).toBeLessThan(5 * sd));
    // Batch size ~ Binomial(n, q): its variance n·q·(1 − q) = 8 distinguishes it from fixed-size batches.
    const mean = sizes.reduce((a, b) => a + b, 0) / draws;
    const variance = sizes.reduce((a, b) => a + (b - mean) ** 2, 0) / (draws - 1);
    expect(mean).toBeCloseTo(n * q, 0);
    expect(variance).toBeGreaterThan(6);
    expect(variance).toBeLessThan(10);
    expect(poissonSample(5, 1, random)).toEqual(Int32Array.of(0, 1, 2, 3, 4));
  });

  it('still takes a pure-noise step when the Poisson batch is empty', async () => {
    const calls: { length: number; latticeSigma: number }[] = [];
    const input = { ...base(), batchSize: undefined, epochs: undefined, steps: 3 };
    const dp = {
      clipNorm: 1,
      noiseMultiplier: 2,
      samplingRate: 0.01,
      expectedBatchSize: 4,
      noise: alternatingNoise(calls),
      sampling: () => 0.99,
    };
    const result = await trainLocal({ ...input, dp });
    expect(result.examplesUsed).toBe(0);
    expect(calls).toHaveLength(3);
    const { effectiveStddev } = latticeNoisePlan({ clipNorm: 1, noiseMultiplier: 2, dimension: size });
    expect(Math.abs(result.delta[0]!)).toBeCloseTo((3 * 0.1 * effectiveStddev) / 4, 4);
  });

  it('counts an epoch as round(1/q) steps', async () => {
    const input = { ...base(), batchSize: undefined, epochs: 2 };
    const result = await trainLocal({
      ...input,
      dp: { clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.2, expectedBatchSize: 8, noise: alternatingNoise([]) },
    });
    expect(result.steps).toBe(10);
    expect(result.lossHistory).toHaveLength(2);
  });
});

describe('trainLocal input validation', () => {
  const dp = { clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.1, expectedBatchSize: 4, noise: alternatingNoise([]) };
  it('rejects malformed inputs with a code naming the field', async () => {
    const input = base();
    const nanX = input.x.slice();
    nanX[5] = Number.NaN;
    expect(await codeOf({ ...input, x: input.x.subarray(1) })).toBe(TrainingInputErrorCode.Features);
    expect(await codeOf({ ...input, x: nanX })).toBe(TrainingInputErrorCode.Features);
    expect(await codeOf({ ...input, y: input.y.subarray(1) })).toBe(TrainingInputErrorCode.Labels);
    expect(await codeOf({ ...input, y: Uint8Array.from(input.y, () => 2) })).toBe(TrainingInputErrorCode.Labels);
    expect(await codeOf({ ...input, parameters: new Float32Array(3) })).toBe(TrainingInputErrorCode.Parameters);
    expect(await codeOf({ ...input, steps: 3 })).toBe(TrainingInputErrorCode.Epochs);
    expect(await codeOf({ ...input, epochs: 0 })).toBe(TrainingInputErrorCode.Epochs);
    expect(await codeOf({ ...input, batchSize: 0 })).toBe(TrainingInputErrorCode.BatchSize);
    expect(await codeOf({ ...input, learningRate: -1 })).toBe(TrainingInputErrorCode.LearningRate);
    expect(await codeOf({ ...input, proximalMu: Number.NaN })).toBe(TrainingInputErrorCode.ProximalMu);
    expect(await codeOf({ ...input, dp })).toBe(TrainingInputErrorCode.BatchSize);
    const dpInput = { ...input, batchSize: undefined };
    expect(await codeOf({ ...dpInput, dp: { ...dp, clipNorm: 0 } })).toBe(TrainingInputErrorCode.ClipNorm);
    expect(await codeOf({ ...dpInput, dp: { ...dp, noiseMultiplier: -1 } })).toBe(
      TrainingInputErrorCode.NoiseMultiplier,
    );
    expect(await codeOf({ ...dpInput, dp: { ...dp, samplingRate: 1.5 } })).toBe(TrainingInputErrorCode.SamplingRate);
  });

  it('requires the plan constant expectedBatchSize under DP, with an error that says so', async () => {
    const dpInput = { ...base(), batchSize: undefined };
    for (const expectedBatchSize of [undefined, 0, -3, 2.5, Number.NaN, Infinity]) {
      const input = { ...dpInput, dp: { ...dp, expectedBatchSize } } as unknown as LocalTrainingInput;
      expect(await codeOf(input)).toBe(TrainingInputErrorCode.BatchSize);
      await expect(trainLocal(input)).rejects.toThrow(/dp\.expectedBatchSize must be a positive integer/);
    }
  });

  it('refuses noise that is not integers in a Float64Array of the right length', async () => {
    const dpInput = { ...base(), batchSize: undefined };
    const bad: LatticeNoiseSource[] = [
      () => new Float64Array(2),
      (n) => new Float32Array(n) as unknown as Float64Array,
      (n) => new Float64Array(n).fill(0.5),
      (n) => new Float64Array(n).fill(Number.NaN),
      (n) => new Float64Array(n).fill(2 ** 53),
    ];
    for (const noise of bad) {
      expect(await codeOf({ ...dpInput, dp: { ...dp, noise } })).toBe(TrainingInputErrorCode.Noise);
    }
  });
});
