import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';
import {
  convFilterSquaredNorms,
  convGeometry,
  convNormMethod,
  convolve,
  differentiableConvolution,
  dilateKernel,
  maxPoolWithGradient,
  perExampleFilterGradients,
  unfoldPatches,
  type ConvAttributes,
  type ConvGeometry,
} from './conv-ops';
import { seededUniform } from './seeded-random';

function randomTensor(shape: number[], seed: number): tf.Tensor {
  const random = seededUniform(seed);
  return tf.tensor(
    Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 2 * random() - 1),
    shape,
  );
}

function maxRelativeDifference(a: tf.Tensor, b: tf.Tensor): number {
  const x = a.dataSync();
  const y = b.dataSync();
  expect(x.length).toBe(y.length);
  const scale = Math.max(...Array.from(y, Math.abs), 1e-12);
  return Math.max(...Array.from(x, (v, i) => Math.abs(v - y[i]!))) / scale;
}

/** The convolution written out as its definition, loop by loop (TensorFlow's padding: padBefore zeros first). */
function naiveConvolution(x: tf.Tensor4D, w: tf.Tensor4D, g: ConvGeometry): tf.Tensor4D {
  const [batch, height, width, channels] = x.shape;
  const xs = x.arraySync();
  const ws = w.arraySync();
  const out = new Float32Array(batch * g.rows.out * g.cols.out * g.filters);
  let k = 0;
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < g.rows.out; r++) {
      for (let c = 0; c < g.cols.out; c++) {
        for (let f = 0; f < g.filters; f++) {
          let sum = 0;
          for (let i = 0; i < g.kernel[0]; i++) {
            for (let j = 0; j < g.kernel[1]; j++) {
              const y = r * g.stride[0] + i * g.dilation[0] - g.rows.padBefore;
              const z = c * g.stride[1] + j * g.dilation[1] - g.cols.padBefore;
              if (y < 0 || y >= height || z < 0 || z >= width) continue;
              for (let ch = 0; ch < channels; ch++) sum += xs[b]![y]![z]![ch]! * ws[i]![j]![ch]![f]!;
            }
          }
          out[k++] = sum;
        }
      }
    }
  }
  return tf.tensor4d(out, [batch, g.rows.out, g.cols.out, g.filters]);
}

const cases: { name: string; layer: ConvAttributes; input: [number, number, number, number] }[] = [
  { name: '3×3 same', layer: { kernel: 3, filters: 4, padding: 'same' }, input: [2, 6, 5, 3] },
  { name: '2×3 valid, stride 2×1', layer: { kernel: [2, 3], stride: [2, 1], filters: 3 }, input: [3, 7, 6, 2] },
  {
    name: '3×3 same, stride 2 (odd padding)',
    layer: { kernel: 3, stride: 2, filters: 2, padding: 'same' },
    input: [2, 6, 6, 2],
  },
  {
    name: '3×2 same, dilation 2×3',
    layer: { kernel: [3, 2], dilation: [2, 3], filters: 3, padding: 'same' },
    input: [2, 7, 8, 2],
  },
  {
    name: '2×2 valid, dilation 2, stride 2',
    layer: { kernel: 2, dilation: 2, stride: 2, filters: 2 },
    input: [2, 7, 7, 3],
  },
  {
    name: '3×3 valid, stride 2, windows short of the edge',
    layer: { kernel: 3, stride: 2, filters: 2 },
    input: [2, 8, 6, 1],
  },
  {
    name: '2×2 valid, dilation 3, windows short of the edge',
    layer: { kernel: 2, dilation: 3, filters: 2 },
    input: [1, 6, 7, 2],
  },
];

// On the cpu backend, which has tfjs's own convolution gradients (Conv2DBackpropFilter), the reference.
describe('convolution ops against the definition and tfjs’s own convolution gradients (references on cpu; ours on cpu and wasm)', () => {
  beforeAll(async () => {
    await selectBackend('cpu');
  });

  for (const { name, layer, input } of cases) {
    it(`${name}: on cpu and wasm, the output, the unfolded product, dx and dW match the definition and tf.conv2d's gradients`, async () => {
      const g = convGeometry(layer, input.slice(1));
      const operands = () => ({
        x: randomTensor(input, 1) as tf.Tensor4D,
        w: randomTensor([...g.kernel, input[3], layer.filters], 2) as tf.Tensor4D,
      });
      const [reference, dy, nativeDx, nativeDw] = tf.tidy(() => {
        const { x, w } = operands();
        const out = naiveConvolution(x, w, g);
        const dy = randomTensor(out.shape, 3) as tf.Tensor4D;
        // tfjs's native conv2d on the explicitly dilated kernel, differentiated back to w (cpu: Conv2DBackpropFilter).
        const native = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          tf.conv2d(a as tf.Tensor4D, dilateKernel(b as tf.Tensor4D, g), [g.stride[0], g.stride[1]], g.padding),
        )([x, w], dy);
        return [out, dy, native[0]!, native[1]!].map((t) => ({ values: t.dataSync().slice(), shape: t.shape }));
      });
      for (const backend of ['cpu', 'wasm'] as const) {
        await selectBackend(backend);
        tf.tidy(() => {
          const { x, w } = operands();
          const expected = tf.tensor(reference!.values, reference!.shape);
          expect(maxRelativeDifference(convolve(x, w, g), expected)).toBeLessThan(1e-5);
          const patches = unfoldPatches(x, g);
          const rows = tf.reshape(w, [-1, layer.filters]);
          const viaPatches = tf.reshape(tf.matMul(tf.reshape(patches, [-1, patches.shape[2]]), rows), expected.shape);
          expect(maxRelativeDifference(viaPatches, expected)).toBeLessThan(1e-5);
          const ours = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
            differentiableConvolution(g, { input: true, filter: true })(a as tf.Tensor4D, b as tf.Tensor4D),
          )([x, w], tf.tensor(dy!.values, dy!.shape));
          expect(maxRelativeDifference(ours[0]!, tf.tensor(nativeDx!.values, nativeDx!.shape))).toBeLessThan(1e-5);
          expect(maxRelativeDifference(ours[1]!, tf.tensor(nativeDw!.values, nativeDw!.shape))).toBeLessThan(1e-5);
        });
      }
      await selectBackend('cpu');
    });
  }

  it('skips the gradients a pass does not need (zeros), so DP-SGD never computes a filter gradient twice', () => {
    tf.tidy(() => {
      const g = convGeometry({ kernel: 3, filters: 2, padding: 'same' }, [4, 4, 1]);
      const x = randomTensor([1, 4, 4, 1], 4) as tf.Tensor4D;
      const w = randomTensor([3, 3, 1, 2], 5) as tf.Tensor4D;
      const [dx, dw] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
        differentiableConvolution(g, { input: false, filter: false })(a as tf.Tensor4D, b as tf.Tensor4D),
      )([x, w]);
      expect(tf.max(tf.abs(dx!)).dataSync()[0]).toBe(0);
      expect(tf.max(tf.abs(dw!)).dataSync()[0]).toBe(0);
    });
  });

  it('computes per-example filter-gradient norms the same way materialised and by the ghost form', () => {
    tf.tidy(() => {
      const g = convGeometry({ kernel: 3, filters: 5, padding: 'valid' }, [5, 5, 3]);
      const patches = unfoldPatches(randomTensor([4, 5, 5, 3], 6) as tf.Tensor4D, g);
      const delta = randomTensor([4, 9, 5], 7) as tf.Tensor3D;
      const materialised = convFilterSquaredNorms(patches, delta, 'materialise');
      const ghost = convFilterSquaredNorms(patches, delta, 'ghost');
      expect(maxRelativeDifference(ghost, materialised)).toBeLessThan(1e-5);
      // And both equal the norm of example 0's gradient computed alone.
      const first = perExampleFilterGradients(patches, delta).slice([0, 0, 0], [1, -1, -1]);
      expect(tf.sum(tf.square(first)).dataSync()[0]).toBeCloseTo(materialised.dataSync()[0]!, 3);
    });
  });

  const pools: { name: string; window: ConvAttributes; input: [number, number, number, number] }[] = [
    { name: '2×2 valid', window: { kernel: 2, stride: 2, filters: 3 }, input: [2, 5, 4, 3] },
    {
      name: '3×2 same, odd sides',
      window: { kernel: [3, 2], stride: [3, 2], padding: 'same', filters: 2 },
      input: [2, 7, 5, 2],
    },
    {
      name: '3×3 stride 2 same (overlapping)',
      window: { kernel: 3, stride: 2, padding: 'same', filters: 2 },
      input: [2, 6, 5, 2],
    },
    {
      name: '2×3 stride 1 same (overlapping)',
      window: { kernel: [2, 3], stride: 1, padding: 'same', filters: 3 },
      input: [2, 4, 5, 3],
    },
  ];
  for (const { name, window, input } of pools) {
    it(`max pooling by argmax, ${name}: on cpu and on wasm, the values of tf.maxPool and the gradient of cpu's MaxPoolGrad`, async () => {
      const g = convGeometry(window, input.slice(1));
      const size: [number, number] = [g.kernel[0], g.kernel[1]];
      const stride: [number, number] = [g.stride[0], g.stride[1]];
      const run = (pool: (a: tf.Tensor4D) => tf.Tensor4D) =>
        tf.tidy(() => {
          const x = randomTensor(input, 8) as tf.Tensor4D;
          const value = pool(x);
          const gradient = tf.grad((a: tf.Tensor) => pool(a as tf.Tensor4D))(x, randomTensor(value.shape, 9));
          return [Array.from(value.dataSync()), Array.from(gradient.dataSync())];
        });
      const [value, gradient] = run((a) => tf.maxPool(a, size, stride, g.padding));
      for (const backend of ['cpu', 'wasm'] as const) {
        await selectBackend(backend);
        const [ourValue, ourGradient] = run((a) => maxPoolWithGradient(a, g));
        expect(ourValue).toEqual(value);
        ourGradient!.forEach((v, i) => expect(Math.abs(v - gradient![i]!)).toBeLessThan(1e-6));
      }
      await selectBackend('cpu');
    });
  }

  it('picks the ghost form only when it is cheaper: few positions, wide layers', () => {
    // 28×28 positions, 3×3×1 taps, 16 filters: 784·(9 + 16) ≫ 9·16 → materialise.
    expect(convNormMethod(convGeometry({ kernel: 3, filters: 16, padding: 'same' }, [28, 28, 1]))).toBe('materialise');
    // 4×4 positions, 3×3×128 taps, 128 filters: 16·(1152 + 128) < 1152·128 → ghost.
    expect(convNormMethod(convGeometry({ kernel: 3, filters: 128, padding: 'same' }, [4, 4, 128]))).toBe('ghost');
  });
});
