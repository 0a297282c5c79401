import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { selectBackend } from './backend-selection';
import { morletBank, SCATTERING_KERNEL, scatteringChannels, scatteringTransform } from './scattering';
import { seededUniform } from './seeded-random';

beforeAll(async () => {
  await selectBackend('wasm');
});

/** A [h, w, c] image as nested arrays: image[y][x][channel]. */
type Image = number[][][];

/** Correlation with a K×K filter, zero padding of (K − 1)/2 on every side (TensorFlow's 'same' for odd K, stride 1). */
function correlate(plane: number[][], filter: Float32Array, K: number): number[][] {
  const half = (K - 1) / 2;
  const h = plane.length;
  const w = plane[0]!.length;
  return Array.from({ length: h }, (_, y) =>
    Array.from({ length: w }, (_, x) => {
      let sum = 0;
      for (let i = 0; i < K; i++) {
        for (let j = 0; j < K; j++) {
          const v = plane[y + i - half]?.[x + j - half];
          if (v !== undefined) sum += v * filter[i * K + j]!;
        }
      }
      return sum;
    }),
  );
}

/** Mean over non-overlapping s×s windows, the incomplete border dropped. */
function averageWindows(plane: number[][], s: number): number[][] {
  const h = Math.floor(plane.length / s);
  const w = Math.floor(plane[0]!.length / s);
  return Array.from({ length: h }, (_, y) =>
    Array.from({ length: w }, (_, x) => {
      let sum = 0;
      for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) sum += plane[y * s + i]![x * s + j]!;
      return sum / (s * s);
    }),
  );
}

const halveTimes = (plane: number[][], times: number): number[][] =>
  times === 0 ? plane : halveTimes(averageWindows(plane, 2), times - 1);

/**
 * The transform by its definition, one plane at a time in float64: |x_j ⋆ ψ_θ| on the dyadic pyramid, second order
 * on the halved first-order moduli, every map averaged down to 2^J, channels in the documented order.
 */
function referenceScattering(image: Image, scales: number, angles: number): Image {
  const K = SCATTERING_KERNEL;
  const bank = morletBank(angles);
  const c = image[0]![0]!.length;
  const plane = (ch: number) => image.map((row) => row.map((px) => px[ch]!));
  const modulus = (p: number[][], l: number): number[][] => {
    const re = correlate(p, bank.real[l]!, K);
    const im = correlate(p, bank.imag[l]!, K);
    return re.map((row, y) => row.map((v, x) => Math.hypot(v, im[y]![x]!)));
  };
  const maps: number[][][] = [];
  for (let ch = 0; ch < c; ch++) maps.push(averageWindows(plane(ch), 2 ** scales));
  const first: number[][][][] = []; // [scale][channel·L + angle]
  for (let j = 0; j < scales; j++) {
    first.push([]);
    for (let ch = 0; ch < c; ch++) {
      for (let l = 0; l < angles; l++) {
        const u = modulus(halveTimes(plane(ch), j), l);
        first[j]!.push(u);
        maps.push(averageWindows(u, 2 ** (scales - j)));
      }
    }
  }
  for (let j1 = 0; j1 < scales; j1++) {
    for (let j2 = j1 + 1; j2 < scales; j2++) {
      for (const u of first[j1]!) {
        for (let l = 0; l < angles; l++) {
          maps.push(averageWindows(modulus(halveTimes(u, j2 - j1), l), 2 ** (scales - j2)));
        }
      }
    }
  }
  const h = maps[0]!.length;
  const w = maps[0]![0]!.length;
  return Array.from({ length: h }, (_, y) => Array.from({ length: w }, (_, x) => maps.map((m) => m[y]![x]!)));
}

function randomImages(n: number, h: number, w: number, c: number, seed: number): Image[] {
  const random = seededUniform(seed);
  return Array.from({ length: n }, () =>
    Array.from({ length: h }, () => Array.from({ length: w }, () => Array.from({ length: c }, () => 2 * random() - 1))),
  );
}

describe('scattering filters', () => {
  it('are band-pass (each part sums to zero), unit-mass envelopes, one per angle', () => {
    for (const angles of [1, 4, 8]) {
      const bank = morletBank(angles);
      expect(bank.real).toHaveLength(angles);
      for (let l = 0; l < angles; l++) {
        const sum = (f: Float32Array) => f.reduce((a, b) => a + b, 0);
        expect(Math.abs(sum(bank.real[l]!))).toBeLessThan(1e-6);
        expect(Math.abs(sum(bank.imag[l]!))).toBeLessThan(1e-6);
        expect(bank.real[l]!.some((v) => Math.abs(v) > 1e-3)).toBe(true);
      }
    }
  });

  it('are oriented: a plane wave at the filter’s own angle and frequency gives the largest response', () => {
    const angles = 8;
    const bank = morletBank(angles);
    const K = SCATTERING_KERNEL;
    const half = (K - 1) / 2;
    const xi = (3 * Math.PI) / 4;
    for (let wave = 0; wave < angles; wave++) {
      const theta = (Math.PI * wave) / angles;
      // |Σ ψ_l(u)·e^{−iξ⟨u, e_θ⟩}|: the filter's response to the wave at the centre pixel.
      const responses = bank.real.map((re, l) => {
        let a = 0;
        let b = 0;
        for (let i = 0; i < K; i++) {
          for (let j = 0; j < K; j++) {
            const phase = xi * ((j - half) * Math.cos(theta) + (i - half) * Math.sin(theta));
            const im = bank.imag[l]![i * K + j]!;
            a += re[i * K + j]! * Math.cos(phase) + im * Math.sin(phase);
            b += im * Math.cos(phase) - re[i * K + j]! * Math.sin(phase);
          }
        }
        return Math.hypot(a, b);
      });
      expect(responses.indexOf(Math.max(...responses))).toBe(wave);
    }
  });
});

describe('scatteringTransform', () => {
  const cases: [string, number, number, number, number, number][] = [
    // name, height, width, channels, J, L
    ['grey 28×28, J = 2, L = 8 (the digits layer)', 28, 28, 1, 2, 8],
    ['RGB 13×10, J = 2, L = 3 (odd sides, channels in the batch)', 13, 10, 3, 2, 3],
    ['two channels 16×16, J = 3, L = 2 (second order over two halvings)', 16, 16, 2, 3, 2],
  ];
  for (const [k, [name, h, w, c, J, L]] of cases.entries()) {
    it(`${name}: equals the definition computed plane by plane, to 1e-4`, async () => {
      const images = randomImages(2, h, w, c, 70 + k);
      const x = tf.tensor4d(images.flat(3), [2, h, w, c]);
      const out = scatteringTransform(x, J, L);
      const actual = (await out.array()) as Image[];
      x.dispose();
      out.dispose();
      expect(out.shape).toEqual([2, Math.floor(h / 2 ** J), Math.floor(w / 2 ** J), c * scatteringChannels(J, L)]);
      images.forEach((image, n) => {
        const expected = referenceScattering(image, J, L);
        expected.forEach((row, y) =>
          row.forEach((pixel, xx) =>
            pixel.forEach((v, ch) =>
              expect(Math.abs(actual[n]![y]![xx]![ch]! - v)).toBeLessThanOrEqual(1e-4 * Math.max(1, Math.abs(v))),
            ),
          ),
        );
      });
    });
  }
});
