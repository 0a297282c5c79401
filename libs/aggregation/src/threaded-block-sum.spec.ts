import { afterAll, describe, expect, it } from 'vitest';
import { AggregationErrorCode, type AggregationException } from './aggregation.exception';
import { FedAvgAggregator } from './delta-aggregator';
import { createDpFedAvgAggregator, type SumNoiseMechanism } from './dp-fed-avg';
import { fusedDpFedAvg, fusedFedAvg } from './fused-aggregation';
import { scaleUpdate } from './norm-bound';
import { StreamingSquaredNorm } from './streaming-norm';
import { ThreadedBlockSum, type UpdateBlockSource } from './threaded-block-sum';
import { squaredNorm } from './update-validation';
import { WeightedMeanAccumulator } from './weighted-mean-accumulator';

/** Deterministic pseudo-random source (a failure must be reproducible). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
}

/** m float32 values of mixed signs and magnitudes (2^-40 … 2^20), so rounding differs with the order of additions. */
function randomUpdate(m: number, seed: number): Float32Array {
  const next = lcg(seed);
  const u = new Float32Array(m);
  for (let i = 0; i < m; i += 1) u[i] = (next() < 0.5 ? -1 : 1) * next() * 2 ** Math.floor(next() * 60 - 40);
  return u;
}

/** A source over arrays that counts its reads, delivering them late (as a blob store would). */
function arraySource(updates: readonly Float32Array[]): UpdateBlockSource & { reads: number } {
  const source = {
    count: updates.length,
    length: updates[0]!.length,
    reads: 0,
    async readInto(k: number, start: number, end: number, target: Float32Array): Promise<void> {
      source.reads += 1;
      await new Promise((resolve) => setImmediate(resolve));
      target.set(updates[k]!.subarray(start, end));
    },
  };
  return source;
}

function sameBits(a: Float64Array | Float32Array, b: Float64Array | Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

const opened: ThreadedBlockSum[] = [];
function open(m: number, threads: number, blockParameters: number): ThreadedBlockSum {
  const sum = ThreadedBlockSum.create(m, { threads, blockParameters });
  if (!sum) throw new Error('this engine has WebAssembly SIMD: the sum must be available');
  opened.push(sum);
  return sum;
}
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
});

describe('StreamingSquaredNorm', () => {
  it('gives squaredNorm’s bits whatever the pieces (lengths with every remainder mod 8, random cuts)', () => {
    const next = lcg(11);
    for (const m of [1, 7, 8, 9, 15, 16, 17, 100, 1001, 4099]) {
      const u = randomUpdate(m, m);
      for (let trial = 0; trial < 6; trial += 1) {
        const norm = new StreamingSquaredNorm(m);
        for (let at = 0; at < m;) {
          const piece = trial === 0 ? m : 1 + Math.floor(next() * 13);
          norm.push(u.subarray(at, Math.min(m, at + piece)));
          at += piece;
        }
        expect(Object.is(norm.value, squaredNorm(u)), `m = ${m}, trial ${trial}`).toBe(true);
      }
    }
  });

  it('refuses to be read before the whole vector was pushed, or pushed past its length', () => {
    const norm = new StreamingSquaredNorm(10);
    norm.push(new Float32Array(4));
    expect(() => norm.value).toThrow(/after 4/);
    expect(() => norm.push(new Float32Array(7))).toThrow(/11 values/);
  });
});

describe('ThreadedBlockSum', () => {
  // Shapes: m not a multiple of 8 nor of the block, n across several groups of eight; threads 0 (calling thread), 1, 2, 3.
  const cases = [
    { m: 1001, n: 1, threads: 0, block: 64 },
    { m: 5003, n: 13, threads: 1, block: 512 },
    { m: 20_011, n: 17, threads: 2, block: 4096 },
    { m: 9_999, n: 64, threads: 3, block: 1024 },
    { m: 40_000, n: 9, threads: 2, block: 262_144 },
  ];
  it.each(cases)('m = $m, n = $n, $threads threads, blocks of $block: the bits of adding one by one', async (c) => {
    const updates = Array.from({ length: c.n }, (_, k) => randomUpdate(c.m, 100 * c.m + k));
    const next = lcg(c.m);
    const weights = updates.map(() => [1, 3, 0.1, 123.456, 1e-3, 7][Math.floor(next() * 6)]!);
    const scales = updates.map((_, k) => (k % 3 === 1 ? next() : 1));
    const reference = new WeightedMeanAccumulator(c.m, { kernel: 'scalar' });
    updates.forEach((u, k) => reference.addValidated(scaleUpdate(u, scales[k]!), weights[k]));
    const sum = open(c.m, c.threads, c.block);
    const source = arraySource(updates);
    await sum.sum(source, { indices: updates.map((_, k) => k), weights, scales });
    expect(sameBits(sum.values, reference.sumCopy())).toBe(true);
    expect(sameBits(await sum.quotient(reference.totalWeight), reference.result())).toBe(true);
    // Every update read once per block, nothing more.
    expect(source.reads).toBe(c.n * Math.ceil(c.m / sum.blockParameters));
  });

  it('starts every sum from zero, and leaves the source’s arrays unscaled', async () => {
    const m = 3000;
    const updates = [randomUpdate(m, 1), randomUpdate(m, 2)];
    const before = updates.map((u) => u.slice());
    const sum = open(m, 2, 1024);
    await sum.sum(arraySource(updates), { indices: [0, 1], weights: [1, 1], scales: [0.5, 0.25] });
    await sum.sum(arraySource(updates), { indices: [1], weights: [2] });
    const reference = new WeightedMeanAccumulator(m, { kernel: 'scalar' });
    reference.addValidated(updates[1]!, 2);
    expect(sameBits(sum.values, reference.sumCopy())).toBe(true);
    updates.forEach((u, k) => expect(sameBits(u, before[k]!)).toBe(true));
  });

  it('refuses a bad thread count, a block not a multiple of 8, mismatched terms, and passes a read failure on', async () => {
    expect(() => ThreadedBlockSum.create(100, { threads: -1 })).toThrow(/threads/);
    expect(() => ThreadedBlockSum.create(100, { blockParameters: 12 })).toThrow(/multiple of 8/);
    const sum = open(100, 1, 16);
    const updates = [randomUpdate(100, 3)];
    await expect(sum.sum(arraySource(updates), { indices: [0], weights: [1, 2] })).rejects.toThrow(/one weight/);
    const failing: UpdateBlockSource = {
      count: 1,
      length: 100,
      readInto: (_k, start) => (start >= 48 ? Promise.reject(new Error('disk gone')) : Promise.resolve()),
    };
    await expect(sum.sum(failing, { indices: [0], weights: [1] })).rejects.toThrow('disk gone');
  });
});

describe('fused FedAvg and DP-FedAvg', () => {
  it('fusedFedAvg equals FedAvgAggregator (prevalidated, weighted and unweighted, norm-bounded) bit for bit', async () => {
    const m = 7777;
    const updates = Array.from({ length: 11 }, (_, k) => randomUpdate(m, 500 + k));
    const weights = updates.map((_, k) => 10 + 7 * k);
    const scales = updates.map((_, k) => (k === 3 ? 0.37 : 1));
    for (const weighting of ['weighted', 'unweighted'] as const) {
      const reference = new FedAvgAggregator(m, { weighting, updatesPrevalidated: true });
      updates.forEach((u, k) => reference.add(scaleUpdate(u, scales[k]!), weights[k]!));
      const expected = reference.finish();
      const actual = await fusedFedAvg(open(m, 2, 1024), arraySource(updates), { weighting, weights, scales });
      expect(sameBits(actual.delta, expected.delta)).toBe(true);
      expect(actual.trace).toEqual(expected.trace);
      expect([actual.count, actual.totalWeight]).toEqual([expected.count, expected.totalWeight]);
    }
  });

  it('fusedFedAvg refuses a weight of 0 as FedAvgAggregator does', async () => {
    const err = await fusedFedAvg(open(16, 0, 8), arraySource([randomUpdate(16, 1)]), {
      weighting: 'weighted',
      weights: [0],
    }).catch((e: unknown) => e as AggregationException);
    expect(err).toMatchObject({ code: AggregationErrorCode.InvalidWeight });
  });

  it('fusedDpFedAvg equals DpFedAvgAggregator: clipping, norms in the trace, noise, fixed denominator', async () => {
    const m = 6001;
    const updates = Array.from({ length: 10 }, (_, k) => randomUpdate(m, 900 + k));
    const norms = updates.map((u) => Math.sqrt(squaredNorm(u)));
    // S between the norms: some updates clipped, some not; receipt norms slightly off (as measured chunkwise), one unknown.
    const S = [...norms].sort((a, b) => a - b)[5]!;
    const receipt = norms.map((r, k) => (k === 2 ? null : r * (1 + 1e-12)));
    const noise: SumNoiseMechanism = (sum, { clipNorm, noiseMultiplier }) => ({
      sum: sum.map((v, i) => v + clipNorm * noiseMultiplier * ((i % 5) - 2)),
      plan: { effectiveStddev: clipNorm * noiseMultiplier, granularity: 2 ** -20 },
    });
    const options = { clippingNorm: S, noiseMultiplier: 0.8, expectedSilos: 12 };
    const reference = createDpFedAvgAggregator(m, options, noise);
    const reported = updates.map((_, k) => 100 + k);
    const expectedTraces = updates.map((u, k) => reference.add(u, reported[k]!));
    const expected = reference.finish();
    const actual = await fusedDpFedAvg(open(m, 2, 2048), arraySource(updates), reported, receipt, options, noise);
    expect(sameBits(actual.delta, expected.delta)).toBe(true);
    expect(actual.trace).toEqual(expected.trace);
    expect(actual.updateTrace).toEqual(expectedTraces);
    expect(actual.updateTrace.filter((t) => (t[1] as { factor: number }).factor < 1).length).toBe(4);
  });
});
