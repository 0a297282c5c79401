import { smallCnnNetwork, type NetworkSpec } from '@tessera/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';
import { TrainingInputException } from './ml.exception';
import { initialNetworkParameters } from './network-model';
import { trainNetwork, type NetworkExampleSource } from './network-training';
import { seededUniform } from './seeded-random';

beforeAll(async () => {
  await selectBackend('wasm');
});

const cnn: NetworkSpec = smallCnnNetwork({
  height: 8,
  width: 8,
  channels: 1,
  task: { kind: 'multiclass', classes: 3 },
});

function data(n: number): { x: Float32Array; y: Int32Array } {
  const random = seededUniform(5);
  return {
    x: Float32Array.from({ length: n * 64 }, () => random()),
    y: Int32Array.from({ length: n }, () => Math.floor(random() * 3)),
  };
}

/** A source over an in-memory array that records the largest batch it was asked for. */
function sourceOf(x: Float32Array, n: number): NetworkExampleSource & { largest: number; steps: number[] } {
  const source = {
    n,
    largest: 0,
    steps: [] as number[],
    readRows(indices: ArrayLike<number>, out: Float32Array, step: number): Promise<void> {
      source.largest = Math.max(source.largest, indices.length);
      source.steps.push(step);
      for (let k = 0; k < indices.length; k++) out.set(x.subarray(indices[k]! * 64, indices[k]! * 64 + 64), k * 64);
      return Promise.resolve();
    },
  };
  return source;
}

describe('trainNetwork from a streamed source', () => {
  it('takes the same steps as from the array, asking for one batch at a time', async () => {
    const { x, y } = data(40);
    const base = {
      network: cnn,
      parameters: initialNetworkParameters(cnn, 1),
      y,
      epochs: 2,
      batchSize: 8,
      learningRate: 0.1,
      seed: 4,
    };
    const fromArray = await trainNetwork({ ...base, x });
    const source = sourceOf(x, 40);
    const fromSource = await trainNetwork({ ...base, x: source });
    expect(fromSource.parameters).toEqual(fromArray.parameters);
    expect(source.largest).toBe(8);
    expect(source.steps).toEqual(Array.from({ length: 10 }, (_, i) => i));
  });

  it('refuses a batch with a non-finite value, naming the batch row and column', async () => {
    const { x, y } = data(16);
    const source = sourceOf(x, 16);
    const poisoned: NetworkExampleSource = {
      n: 16,
      async readRows(indices, out, step) {
        await source.readRows(indices, out, step);
        out[70] = Number.NaN;
      },
    };
    const run = trainNetwork({
      network: cnn,
      parameters: initialNetworkParameters(cnn, 1),
      x: poisoned,
      y,
      epochs: 1,
      batchSize: 4,
      learningRate: 0.1,
    });
    await expect(run).rejects.toThrow(TrainingInputException);
    await expect(run).rejects.toThrow(/batch row 1, column 6/);
  });

  it('checks the labels against the source size', async () => {
    const { x, y } = data(16);
    const run = trainNetwork({
      network: cnn,
      parameters: initialNetworkParameters(cnn, 1),
      x: sourceOf(x, 17),
      y,
      epochs: 1,
      batchSize: 4,
      learningRate: 0.1,
    });
    await expect(run).rejects.toThrow(/17 labels/);
  });
});
