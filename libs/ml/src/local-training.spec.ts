import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';
import { clippedBatchGradients } from './dense-network';
import { poissonSample, trainLocal, type GaussianNoise, type LocalTrainingInput } from './local-training';
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

/** Deterministic "noise": stddev·(1, -1, 1, ...) so that the exact update can be predicted. */
function alternatingNoise(calls: { length: number; stddev: number }[]): GaussianNoise {
  return (length, stddev) => {
    calls.push({ length, stddev });
    return Float64Array.from({ length }, (_, i) => (i % 2 === 0 ? stddev : -stddev));
  };
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
  it('adds noise of stddev σ·C to the clipped sum and divides by the expected batch size q·n', async () => {
    const calls: { length: number; stddev: number }[] = [];
    const input = { ...base(), batchSize: undefined, epochs: undefined, steps: 1 };
    const dp = { clipNorm: 0.05, noiseMultiplier: 1.3, samplingRate: 0.25, noise: alternatingNoise(calls) };
    // Replay the sampling stream to know which rows the step drew.
    const chosen = Array.from(poissonSample(40, 0.25, seededUniform(77)));
    const result = await trainLocal({ ...input, dp: { ...dp, sampling: seededUniform(77) } });
    expect(calls).toEqual([{ length: size, stddev: 1.3 * 0.05 }]);
    expect(result.examplesUsed).toBe(chosen.length);

    const xb = Float32Array.from(chosen.flatMap((i) => Array.from(input.x.subarray(3 * i, 3 * i + 3))));
    const yb = chosen.map((i) => input.y[i]!);
    const { clippedSum, clipFactors } = clippedBatchGradients(spec, input.parameters, xb, yb, 0.05);
    expect(Array.from(clipFactors).some((c) => c < 1)).toBe(true);
    const expectedBatch = 0.25 * 40;
    for (let k = 0; k < size; k++) {
      const noise = k % 2 === 0 ? 1.3 * 0.05 : -1.3 * 0.05;
      const expected = input.parameters[k]! - (0.1 * (clippedSum[k]! + noise)) / expectedBatch;
      expect(result.parameters[k]!).toBeCloseTo(expected, 5);
    }
  });

  it('takes noise from an asynchronous source (another thread) with the same result, one request per step', async () => {
    const input = { ...base(), batchSize: undefined };
    const syncCalls: { length: number; stddev: number }[] = [];
    const asyncCalls: { length: number; stddev: number }[] = [];
    const sync = alternatingNoise(syncCalls);
    const later = alternatingNoise(asyncCalls);
    const dp = { clipNorm: 0.5, noiseMultiplier: 1.1, samplingRate: 0.2 };
    const a = await trainLocal({ ...input, dp: { ...dp, noise: sync, sampling: seededUniform(5) } });
    const b = await trainLocal({
      ...input,
      dp: {
        ...dp,
        noise: (length, stddev) =>
          new Promise<Float32Array | Float64Array>((resolve) => setTimeout(() => resolve(later(length, stddev)), 2)),
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
      trainLocal({ ...input, dp: { clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.2, noise: failing } }),
    ).rejects.toThrow('noise thread died');
    expect(calls).toBe(2); // step 0 and the one requested ahead
  });

  it('bounds each step by lr·(|B|·C + noise)/(q·n) when σ = 0', async () => {
    const input = { ...base(), batchSize: undefined, epochs: undefined, steps: 1 };
    const dp = { clipNorm: 1e-3, noiseMultiplier: 0, samplingRate: 0.5, noise: alternatingNoise([]) };
    const result = await trainLocal({ ...input, dp });
    const norm = Math.hypot(...Array.from(result.delta));
    expect(norm).toBeLessThanOrEqual((0.1 * result.examplesUsed * 1e-3 * (1 + 1e-4)) / (0.5 * 40));
    expect(norm).toBeGreaterThan(0);
  });

  it('samples each example with probability q (Poisson): examples used ≈ q·n·steps', async () => {
    const input = { ...base(), batchSize: undefined, epochs: undefined, steps: 60, seed: 4 };
    const q = 0.3;
    const result = await trainLocal({
      ...input,
      dp: { clipNorm: 1, noiseMultiplier: 1, samplingRate: q, noise: alternatingNoise([]) },
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
    const calls: { length: number; stddev: number }[] = [];
    const input = { ...base(), batchSize: undefined, epochs: undefined, steps: 3 };
    const dp = {
      clipNorm: 1,
      noiseMultiplier: 2,
      samplingRate: 0.01,
      noise: alternatingNoise(calls),
      sampling: () => 0.99,
    };
    const result = await trainLocal({ ...input, dp });
    expect(result.examplesUsed).toBe(0);
    expect(calls).toHaveLength(3);
    expect(Math.abs(result.delta[0]!)).toBeCloseTo((3 * 0.1 * 2) / (0.01 * 40), 4);
  });

  it('counts an epoch as round(1/q) steps', async () => {
    const input = { ...base(), batchSize: undefined, epochs: 2 };
    const result = await trainLocal({
      ...input,
      dp: { clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.2, noise: alternatingNoise([]) },
    });
    expect(result.steps).toBe(10);
    expect(result.lossHistory).toHaveLength(2);
  });
});

describe('trainLocal input validation', () => {
  const dp = { clipNorm: 1, noiseMultiplier: 1, samplingRate: 0.1, noise: alternatingNoise([]) };
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
    expect(await codeOf({ ...dpInput, dp: { ...dp, noise: () => new Float32Array(2) } })).toBe(
      TrainingInputErrorCode.Noise,
    );
    expect(
      await codeOf({ ...dpInput, dp: { ...dp, noise: (n: number) => new Float32Array(n).fill(Number.NaN) } }),
    ).toBe(TrainingInputErrorCode.Noise);
  });
});
