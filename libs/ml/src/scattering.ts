import * as tf from '@tensorflow/tfjs';

/**
 * The fixed wavelet scattering transform of the `scattering` layer (Mallat 2012, "Group invariant scattering"; Bruna
 * & Mallat 2013; used for private learning by Tramèr & Boneh 2021). No parameter is learned and nothing depends on the
 * data: the filters below are a function of the number of angles alone, so DP-SGD pays no noise for them.
 *
 * Tessera's variant works on a dyadic pyramid, so every filter is one small kernel at one scale:
 * - x_0 = x, x_j = A(x_{j−1}) with A the 2×2 average with stride 2 (the low-pass between scales);
 * - first order at scale j: U_j = |x_j ⋆ ψ_θ| for θ = 0..L−1 (complex modulus);
 * - second order for j1 < j2: |A^{j2−j1}(U_{j1}) ⋆ ψ_θ2|, at the resolution of scale j2;
 * - every map is then averaged over windows that bring it to 2^J × 2^J of the input (stride equal to the window).
 * Output channels, per input channel: 1 (the averaged image) + J·L (first order) + L²·J(J−1)/2 (second order),
 * ordered [order 0 | order 1 by scale, then channel, then angle | order 2 by (j1, j2), then channel, θ1, θ2].
 *
 * ψ_θ is a Morlet-like filter on a 9×9 grid: a Gaussian envelope of width σ = 0.8 px across the oscillation and
 * σ/s along it (s = 4/L, elongated for sharper orientation), times the plane wave e^{iξ u} with ξ = 3π/4 rad/px along
 * direction θ = π·l/L, minus β·envelope so that the discrete filter sums to zero (a band-pass), divided by the
 * envelope's sum. These are the constants of the usual Morlet scattering at its finest scale (Oyallon & Mallat 2015).
 */

/** Side of every scattering filter, in pixels. */
export const SCATTERING_KERNEL = 9;
const SIGMA = 0.8;
const XI = (3 * Math.PI) / 4;

/** One complex filter per angle, each as real and imaginary [K·K] arrays, row-major (row = image row). */
export interface MorletBank {
  readonly size: number;
  readonly real: readonly Float32Array[];
  readonly imag: readonly Float32Array[];
}

const banks = new Map<number, MorletBank>();

/** The L filters ψ_θ, θ = π·l/L (cached; computed in float64, stored as float32). */
export function morletBank(angles: number): MorletBank {
  const cached = banks.get(angles);
  if (cached !== undefined) return cached;
  const K = SCATTERING_KERNEL;
  const half = (K - 1) / 2;
  const slant = 4 / angles;
  const real: Float32Array[] = [];
  const imag: Float32Array[] = [];
  for (let l = 0; l < angles; l++) {
    const theta = (Math.PI * l) / angles;
    const [c, s] = [Math.cos(theta), Math.sin(theta)];
    const envelope = new Float64Array(K * K);
    const waveRe = new Float64Array(K * K);
    const waveIm = new Float64Array(K * K);
    for (let i = 0; i < K; i++) {
      for (let j = 0; j < K; j++) {
        const y = i - half;
        const x = j - half;
        const along = x * c + y * s; // the direction of the oscillation
        const across = -x * s + y * c;
        const k = i * K + j;
        envelope[k] = Math.exp(-(along * along + slant * slant * across * across) / (2 * SIGMA * SIGMA));
        waveRe[k] = Math.cos(XI * along);
        waveIm[k] = Math.sin(XI * along);
      }
    }
    const mass = envelope.reduce((a, b) => a + b, 0);
    // β makes Σ envelope·(wave − β) = 0 for each part, so ψ removes the local mean.
    const betaRe = envelope.reduce((a, e, k) => a + e * waveRe[k]!, 0) / mass;
    const betaIm = envelope.reduce((a, e, k) => a + e * waveIm[k]!, 0) / mass;
    real.push(Float32Array.from(envelope, (e, k) => (e * (waveRe[k]! - betaRe)) / mass));
    imag.push(Float32Array.from(envelope, (e, k) => (e * (waveIm[k]! - betaIm)) / mass));
  }
  const bank = { size: K, real, imag };
  banks.set(angles, bank);
  return bank;
}

/** Output channels of the transform per input channel: 1 + J·L + L²·J(J−1)/2. */
export function scatteringChannels(scales: number, angles: number): number {
  return 1 + scales * angles + (angles * angles * scales * (scales - 1)) / 2;
}

/**
 * The bank as a conv2d kernel [K, K, 1, parts·L] for one channel: for angle θ the outputs parts·θ + k hold the real
 * part, the imaginary part, and (parts = 4, for the tfjs export's modulus) their negatives.
 */
export function morletKernel(angles: number, parts: 2 | 4): Float32Array {
  const bank = morletBank(angles);
  const K = bank.size;
  const width = parts * angles;
  const out = new Float32Array(K * K * width);
  for (let p = 0; p < K * K; p++) {
    for (let l = 0; l < angles; l++) {
      const re = bank.real[l]![p]!;
      const im = bank.imag[l]![p]!;
      const values = parts === 2 ? [re, im] : [re, im, -re, -im];
      values.forEach((v, k) => (out[p * width + parts * l + k] = v));
    }
  }
  return out;
}

/** |t ⋆ ψ_θ| for every channel of t [B, h, w, n] and every angle: [B, h, w, n·L], channel n_i·L + θ ('same' padding). */
function modulusOfBank(t: tf.Tensor4D, kernel: tf.Tensor4D, angles: number): tf.Tensor4D {
  const [B, h, w, n] = t.shape;
  // Every channel through the same one-channel bank: the channels join the batch, so the product is one conv2d
  // (XNNPACK) instead of a depthwise convolution with L·2 outputs per channel (slow on tfjs-wasm).
  const single: tf.Tensor4D = n === 1 ? t : tf.reshape(tf.transpose(t, [0, 3, 1, 2]), [B * n, h, w, 1]);
  const z = tf.conv2d(single, kernel, 1, 'same');
  const squared = tf.sum(tf.square(tf.reshape(z, [B * n, h, w, angles, 2])), -1);
  const modulus = tf.sqrt(squared);
  if (n === 1) return modulus as tf.Tensor4D;
  return tf.reshape(tf.transpose(tf.reshape(modulus, [B, n, h, w, angles]), [0, 2, 3, 1, 4]), [B, h, w, n * angles]);
}

/**
 * The scattering transform of a batch of images x [B, h, w, c] → [B, ⌊h/2^J⌋, ⌊w/2^J⌋, c·(1 + J·L + L²·J(J−1)/2)].
 * Forward only: it is never differentiated (the layer reads the network input and has no parameters).
 */
export function scatteringTransform(x: tf.Tensor4D, scales: number, angles: number): tf.Tensor4D {
  return tf.tidy(() => {
    const K = SCATTERING_KERNEL;
    const kernel = tf.tensor4d(morletKernel(angles, 2), [K, K, 1, 2 * angles]);
    const halve = (t: tf.Tensor4D): tf.Tensor4D => tf.avgPool(t, 2, 2, 'valid');
    const average = (t: tf.Tensor4D, window: number): tf.Tensor4D =>
      window === 1 ? t : tf.avgPool(t, window, window, 'valid');
    const parts: tf.Tensor4D[] = [average(x, 2 ** scales)];
    const first: tf.Tensor4D[] = [];
    let xj = x;
    for (let j = 0; j < scales; j++) {
      if (j > 0) xj = halve(xj);
      const u = modulusOfBank(xj, kernel, angles);
      first.push(u);
      parts.push(average(u, 2 ** (scales - j)));
    }
    for (let j1 = 0; j1 < scales; j1++) {
      let u = first[j1]!;
      for (let j2 = j1 + 1; j2 < scales; j2++) {
        u = halve(u);
        parts.push(average(modulusOfBank(u, kernel, angles), 2 ** (scales - j2)));
      }
    }
    return tf.concat(parts, -1);
  });
}
