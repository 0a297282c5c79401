import { afterAll, describe, expect, it } from 'vitest';
import { CHUNK, FusedSum, accumulateScaled } from './fused-sum';
import { kernelModule, kernelModuleBytes, MAX_FUSED, wasmApi } from './simd-kernel';
import { WeightedMeanAccumulator } from './weighted-mean-accumulator';

/** Deterministic pseudo-random source (no Math.random: a failure must be reproducible). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
}

// Finite float32 extremes: the largest and smallest normal, the smallest subnormal, signed zeros, powers of two.
const EXTREMES = [3.4028234663852886e38, -3.4028234663852886e38, 1.1754943508222875e-38, -1.1754943508222875e-38];
EXTREMES.push(1.401298464324817e-45, -1.401298464324817e-45, 0, -0, 1, -1, 2 ** 100, -(2 ** -100), 0.1, -0.3);

/** m float32 values: mostly random magnitudes over the whole float32 range, one in eight an extreme. */
function randomUpdate(m: number, seed: number, shared = false): Float32Array {
  const next = lcg(seed);
  const u = shared ? new Float32Array(new SharedArrayBuffer(4 * m)) : new Float32Array(m);
  for (let i = 0; i < m; i += 1) {
    const r = next();
    if (r < 0.125) u[i] = EXTREMES[Math.floor(next() * EXTREMES.length)]!;
    else u[i] = (next() < 0.5 ? -1 : 1) * next() * 2 ** Math.floor(next() * 250 - 125);
  }
  return u;
}

// Weights across float64's range: tiny ones push products of subnormals below float64's normal range too.
const WEIGHTS = [1, 3, 1e6, 0.1, 1e-270, 7.25, 123_456.789, 2 ** -1000, 42, 1e-10, 5e5, 0.5];

/** The reference: the scalar one-update-at-a-time loop the library has always run. */
function scalarSum(m: number, updates: readonly Float32Array[], weights: readonly number[]): Float64Array {
  const acc = new Float64Array(m);
  updates.forEach((u, j) => accumulateScaled(acc, u, weights[j]!));
  return acc;
}

function expectSameBits(actual: Float64Array | Float32Array, expected: Float64Array | Float32Array): void {
  expect(actual.length).toBe(expected.length);
  const a = new Uint8Array(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = new Uint8Array(expected.buffer, expected.byteOffset, expected.byteLength);
  let firstDiff = -1;
  for (let i = 0; i < a.length && firstDiff < 0; i += 1) if (a[i] !== b[i]) firstDiff = i;
  const at = Math.floor(firstDiff / actual.BYTES_PER_ELEMENT);
  expect(firstDiff, firstDiff < 0 ? '' : `coordinate ${at}: ${actual[at]} against ${expected[at]}`).toBe(-1);
  for (let i = 0; i < actual.length; i += 97) expect(Object.is(actual[i], expected[i])).toBe(true);
}

const closers: FusedSum[] = [];
afterAll(async () => {
  await Promise.all(closers.map((s) => s.close()));
});

describe('WebAssembly SIMD kernel', () => {
  it('is a valid module in both variants and is used on this engine', () => {
    const api = wasmApi();
    expect(api).toBeDefined();
    expect(api!.validate(kernelModuleBytes(false))).toBe(true);
    expect(api!.validate(kernelModuleBytes(true))).toBe(true);
    expect(kernelModule(false)).not.toBeNull();
    expect(new FusedSum(10).kernel).toBe('simd');
    expect(new FusedSum(10, { kernel: 'scalar' }).kernel).toBe('scalar');
  });
});

describe('FusedSum: every path gives the scalar loop’s bits', () => {
  const m = 2 * CHUNK + 4099; // three chunks, the last with a tail that is not a multiple of 8
  const n = 2 * MAX_FUSED + 3; // two full fused groups and a group of 3
  const updates = Array.from({ length: n }, (_, k) => randomUpdate(m, 11 + k));
  const weights = Array.from({ length: n }, (_, k) => WEIGHTS[k % WEIGHTS.length]!);
  const expected = scalarSum(m, updates, weights);

  it('has data that exercises the extremes (sanity of the fixture)', () => {
    expect(expected.some((x) => Math.abs(x) > 1e40)).toBe(true);
    for (const x of EXTREMES) expect(updates.some((u) => u.some((v) => Object.is(v, Math.fround(x))))).toBe(true);
    expect(expected.every((x) => Number.isFinite(x))).toBe(true);
  });

  it('SIMD, all updates in one fused call', () => {
    const sum = new FusedSum(m);
    sum.add(updates, weights);
    expectSameBits(sum.values, expected);
  });

  it('SIMD, one update per call and in uneven batches', () => {
    for (const batch of [1, 2, 5, 8, 9]) {
      const sum = new FusedSum(m);
      for (let g = 0; g < n; g += batch) sum.add(updates.slice(g, g + batch), weights.slice(g, g + batch));
      expectSameBits(sum.values, expected);
    }
  });

  it('scalar kernel forced', () => {
    const sum = new FusedSum(m, { kernel: 'scalar' });
    sum.add(updates, weights);
    expectSameBits(sum.values, expected);
  });

  it('updates in input buffers (read by the kernel in place), mixed with ordinary arrays', () => {
    const sum = new FusedSum(m, { inputBuffers: 4 });
    for (let j = 0; j < 4; j += 1) sum.input(j).set(updates[j]!);
    const mixed = updates.map((u, k) => (k < 4 ? sum.input(k) : u));
    sum.add(mixed, weights);
    expectSameBits(sum.values, expected);
    expect(() => sum.input(4)).toThrow(/input buffer 4 does not exist/);
  });

  it('reset: the next add starts from zero (also for −0 products), and values read as zeros before it', () => {
    for (const options of [{}, { kernel: 'scalar' as const }, { threads: 2 as const }]) {
      const sum = new FusedSum(m, options);
      closers.push(sum);
      sum.add(updates.slice(0, 5), weights.slice(0, 5));
      sum.reset();
      expect(sum.values.every((x) => Object.is(x, 0))).toBe(true);
      sum.reset();
      const negatives = [updates[0]!.map((x) => -Math.abs(x) || -0)];
      sum.add(negatives, [1]);
      expectSameBits(sum.values, scalarSum(m, negatives, [1]));
      sum.reset();
      sum.add(updates, weights);
      expectSameBits(sum.values, expected);
    }
  });

  it('quotient: SIMD division and rounding to float32 equal the scalar ones', () => {
    const simd = new FusedSum(m);
    simd.add(updates, weights);
    for (const d of [1, 3, 1234567.5, 1e-300, 7e300]) {
      const out = new Float32Array(m);
      simd.quotient(d, out);
      const reference = new Float32Array(m);
      for (let i = 0; i < m; i += 1) reference[i] = expected[i]! / d;
      expectSameBits(out, reference);
    }
  });

  it('quotient near every float32 rounding boundary (midpoints, subnormals, overflow), with divisors across float64', () => {
    const next = lcg(7);
    const f32 = new Float32Array(1);
    const bits = new Uint32Array(f32.buffer);
    const values: number[] = [];
    for (let t = 0; t < 400; t += 1) {
      // a random float32 (normal, subnormal or near the top) and the next one up: their midpoint in float64
      const exponent = t % 5 === 0 ? Math.floor(next() * 3) : 1 + Math.floor(next() * 253);
      bits[0] = (exponent << 23) | Math.floor(next() * 0x7fffff);
      const a = f32[0]!;
      bits[0] += 1;
      const mid = (a + f32[0]!) / 2;
      const ulp = Math.max(Number.MIN_VALUE, mid * 2 ** -52);
      for (let k = -40; k <= 40; k += 1) values.push(mid + k * ulp, -(mid + k * ulp));
    }
    values.push(0, -0, 2 ** 127, 2 ** 128, 1e300, -1e300, 2 ** -126, 2 ** -149, 2 ** -150, 5e-324, -5e-324);
    const divisors = [1, 2, 3, 7, 0.1, 1234.5, 2 ** 40 + 1, 1 / 3, 2 ** -999, 2 ** 999, 2 ** -1010, 2 ** 1010, 5e-324];
    for (let j = 0; j < 20; j += 1) divisors.push(next() * 10 ** Math.floor(next() * 12 - 6));
    const m = values.length;
    const sum = new FusedSum(m);
    const inPlace = new FusedSum(m, { inputBuffers: 1 });
    for (const d of divisors) {
      // sums whose quotient by d lands on (or within a few units of) the midpoints above
      sum.values.set(values.map((y) => y * d));
      const out = new Float32Array(m);
      sum.quotient(d, out);
      const reference = Float32Array.from(sum.values, (x) => x / d);
      expectSameBits(out, reference);
      inPlace.values.set(sum.values);
      inPlace.quotient(d, inPlace.input(0)); // written by the kernel straight into its memory
      expectSameBits(inPlace.input(0), reference);
    }
  }, 60_000);

  it('short vectors (shorter than one SIMD step) and every tail length', () => {
    for (let len = 1; len <= 20; len += 1) {
      const us = updates.slice(0, 3).map((u) => u.subarray(0, len));
      const sum = new FusedSum(len);
      sum.add(us, weights.slice(0, 3));
      expectSameBits(sum.values, scalarSum(len, us, weights.slice(0, 3)));
    }
  });

  it('sums that are float64 subnormals (gradual underflow is not flushed to zero by either path)', () => {
    const tiny = [2 ** -900, 2 ** -910, 2 ** -920];
    const us = updates.slice(0, 3).map((u) => u.map((x) => (Math.abs(x) < 1e-30 ? x : x * 2 ** -100)));
    const reference = scalarSum(m, us, tiny);
    expect(reference.some((x) => x !== 0 && Math.abs(x) < 2.2250738585072014e-308)).toBe(true);
    const sum = new FusedSum(m);
    sum.add(us, tiny);
    expectSameBits(sum.values, reference);
  });

  it('refuses impossible options with a clear error', () => {
    expect(() => new FusedSum(4, { threads: 3 as 1 })).toThrow(/threads must be 1 or 2/);
    expect(() => new FusedSum(4, { kernel: 'gpu' as 'auto' })).toThrow(/unknown kernel/);
  });
});

// Timeouts: these sizes take ~1 s each on a quiet machine, several when the shared machine is loaded.
describe('FusedSum on two threads: the same bits', () => {
  // Large enough (m·n ≥ 2M) for the worker to take the upper half; m not a multiple of CHUNK nor of 8.
  const m = 128 * CHUNK + 4099;
  const n = 19;
  const updates = Array.from({ length: n }, (_, k) => randomUpdate(m, 501 + k));
  const weights = Array.from({ length: n }, (_, k) => WEIGHTS[(k * 7) % WEIGHTS.length]!);
  const expected = scalarSum(m, updates, weights);

  it('updates in SharedArrayBuffers, in two calls', () => {
    const shared = updates.map((u) => {
      const s = new Float32Array(new SharedArrayBuffer(4 * m));
      s.set(u);
      return s;
    });
    const sum = new FusedSum(m, { threads: 2 });
    closers.push(sum);
    expect(sum.threads).toBe(2);
    sum.add(shared.slice(0, 9), weights.slice(0, 9));
    sum.add(shared.slice(9), weights.slice(9));
    expect(sum.passesOnTwoCores).toBe(2);
    expectSameBits(sum.values, expected);
    // Ordinary (unshared) updates go through the calling thread alone, with the same bits.
    sum.reset();
    sum.add(updates, weights);
    expect(sum.passesOnTwoCores).toBe(2);
    expectSameBits(sum.values, expected);
  }, 60_000);

  it('updates in the input buffers of the shared memory, after a reset', () => {
    const sum = new FusedSum(m, { threads: 2, inputBuffers: n });
    closers.push(sum);
    updates.forEach((u, j) => sum.input(j).set(u));
    const inputs = updates.map((_, j) => sum.input(j));
    sum.add(inputs.slice(0, 3), weights.slice(0, 3));
    sum.reset();
    sum.add(inputs, weights);
    expect(sum.passesOnTwoCores).toBe(1); // the first call (3 updates) was too small to share
    expectSameBits(sum.values, expected);
  }, 60_000);

  it('one sweep with the division, on two threads, the mean in an input buffer', () => {
    const acc = new WeightedMeanAccumulator(m, { threads: 2, inputBuffers: n + 1 });
    updates.forEach((u, j) => acc.inputBuffer(j).set(u));
    const mean = acc.addValidatedManyAndResult(
      updates.map((_, j) => acc.inputBuffer(j)),
      weights,
      acc.inputBuffer(n),
    );
    const reference = new WeightedMeanAccumulator(m, { kernel: 'scalar' });
    updates.forEach((u, j) => reference.add(u, weights[j]));
    expect(acc.kernel).toEqual({ kernel: 'simd', threads: 2, passesOnTwoCores: 1 });
    expectSameBits(mean, reference.result());
    expectSameBits(acc.sumCopy(), reference.sumCopy());
    return acc.close();
  }, 60_000);

  it('a small addition stays on the calling thread', () => {
    const sum = new FusedSum(m, { threads: 2 });
    closers.push(sum);
    const shared = new Float32Array(new SharedArrayBuffer(4 * m));
    shared.set(updates[0]!);
    sum.add([shared], [weights[0]!]);
    expect(sum.passesOnTwoCores).toBe(0);
    expectSameBits(sum.values, scalarSum(m, [updates[0]!], [weights[0]!]));
  }, 60_000);
});

describe('WeightedMeanAccumulator over the kernels', () => {
  const m = CHUNK + 37;
  const n = 13;
  const updates = Array.from({ length: n }, (_, k) => randomUpdate(m, 101 + k));
  const weights = Array.from({ length: n }, (_, k) => WEIGHTS[(k * 5) % WEIGHTS.length]!);

  function scalarAccumulator(): WeightedMeanAccumulator {
    const acc = new WeightedMeanAccumulator(m, { kernel: 'scalar' });
    updates.forEach((u, k) => acc.add(u, weights[k]));
    return acc;
  }

  it('add one by one (SIMD), addMany and addValidatedMany: same sum, mean, count and weight as scalar add', () => {
    const reference = scalarAccumulator();
    const one = new WeightedMeanAccumulator(m);
    updates.forEach((u, k) => one.addValidated(u, weights[k]));
    const many = new WeightedMeanAccumulator(m);
    many.addMany(updates, weights);
    const validated = new WeightedMeanAccumulator(m);
    validated.addValidatedMany(updates.slice(0, 4), weights.slice(0, 4));
    validated.addValidatedMany(updates.slice(4), weights.slice(4));
    for (const acc of [one, many, validated]) {
      expect(acc.kernel.kernel).toBe('simd');
      expectSameBits(acc.sumCopy(), reference.sumCopy());
      expectSameBits(acc.result(), reference.result());
      expect(acc.count).toBe(n);
      expect(Object.is(acc.totalWeight, reference.totalWeight)).toBe(true);
    }
  });

  it('addValidatedManyAndResult: one sweep, into an input buffer or an ordinary array, same bits as add + result', () => {
    const reference = scalarAccumulator();
    const inPlace = new WeightedMeanAccumulator(m, { inputBuffers: n + 1 });
    updates.forEach((u, k) => inPlace.inputBuffer(k).set(u));
    const inputs = updates.map((_, k) => inPlace.inputBuffer(k));
    inPlace.addValidatedMany(inputs.slice(0, 2), weights.slice(0, 2)); // an earlier addition is kept
    const mean = inPlace.addValidatedManyAndResult(inputs.slice(2), weights.slice(2), inPlace.inputBuffer(n));
    expect(mean).toBe(inPlace.inputBuffer(n));
    expectSameBits(mean, reference.result());
    expectSameBits(inPlace.sumCopy(), reference.sumCopy());
    expect(inPlace.count).toBe(n);
    expect(Object.is(inPlace.totalWeight, reference.totalWeight)).toBe(true);
    const plain = new WeightedMeanAccumulator(m);
    expectSameBits(plain.addValidatedManyAndResult(updates, weights), reference.result());
    const scalar = new WeightedMeanAccumulator(m, { kernel: 'scalar' });
    expectSameBits(scalar.addValidatedManyAndResult(updates, weights), reference.result());
    expect(() => new WeightedMeanAccumulator(m).addValidatedManyAndResult([], [])).toThrow(/no update/);
    expect(() => plain.addValidatedManyAndResult([updates[0]!], [1], new Float32Array(3))).toThrow(/output buffer/);
  });

  it('addMany refuses the whole batch when one update is bad, leaving the state unchanged', () => {
    const acc = new WeightedMeanAccumulator(m);
    acc.addMany(updates.slice(0, 2), weights.slice(0, 2));
    const before = acc.sumCopy();
    const bad = updates[3]!.slice();
    bad[17] = Number.NaN;
    expect(() => acc.addMany([updates[2]!, bad], [1, 1])).toThrow(/update #1/);
    expect(() => acc.addMany([updates[2]!, updates[3]!.subarray(1)], [1, 1])).toThrow(/update #1/);
    expect(() => acc.addValidatedMany([updates[2]!], [1, 2])).toThrow(/one length/);
    expect(() => acc.addValidatedMany([updates[2]!, updates[3]!], [1, -1])).toThrow();
    expect(acc.count).toBe(2);
    expectSameBits(acc.sumCopy(), before);
  });

  it('unweighted: weights checked, then counted as 1', () => {
    const acc = new WeightedMeanAccumulator(m, { weighting: 'unweighted' });
    acc.addMany(updates.slice(0, 3), [5, 6, 7]);
    const reference = new WeightedMeanAccumulator(m, { weighting: 'unweighted', kernel: 'scalar' });
    updates.slice(0, 3).forEach((u) => reference.add(u, 1));
    expect(acc.totalWeight).toBe(3);
    expectSameBits(acc.result(), reference.result());
  });
});
