import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { AggregationErrorCode, DigestMismatchException } from './aggregation.exception';
import { FedAvgAggregator } from './delta-aggregator';
import { createDpFedAvgAggregator, type SumNoiseMechanism } from './dp-fed-avg';
import { fusedDpFedAvg, fusedFedAvg } from './fused-aggregation';
import { scaleUpdate } from './norm-bound';
import { ThreadedBlockSum, type UpdateBlockSource } from './threaded-block-sum';
import { squaredNorm } from './update-validation';
import { WeightedMeanAccumulator } from './weighted-mean-accumulator';

/*
 * Digests computed while the fused sum reads (ADR 0021): each update's SHA-256 over its leading bytes and the blocks
 * as read, on the worker threads, so a caller checks the bytes it summed against their content address in the same
 * read. The reference digest is node:crypto's over the whole byte string at once.
 */

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296;
}

function randomUpdate(m: number, seed: number): Float32Array {
  const next = lcg(seed);
  const u = new Float32Array(m);
  for (let i = 0; i < m; i += 1) u[i] = (next() < 0.5 ? -1 : 1) * next() * 2 ** Math.floor(next() * 30 - 20);
  return u;
}

/** A header-like run of bytes of a given length (a frame's prefix and JSON header stand-in). */
function leading(k: number): Uint8Array {
  return Uint8Array.from({ length: 17 + 29 * k }, (_, i) => (i * 31 + k) & 0xff);
}

function sha256(...parts: Uint8Array[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

function bytesOf(u: Float32Array): Uint8Array {
  return new Uint8Array(u.buffer, u.byteOffset, u.byteLength);
}

/** The content address of update k as stored: its leading bytes, then its float32 values. */
function addressOf(updates: readonly Float32Array[], k: number): string {
  return sha256(leading(k), bytesOf(updates[k]!));
}

/**
 * A source over arrays (reads delivered late, as a blob store would) with leading bytes; `tampered` delivers other
 * values than `updates` for some updates (bytes changed on disk after their address was taken).
 */
function source(
  updates: readonly Float32Array[],
  tampered: ReadonlyMap<number, Float32Array> = new Map(),
  withLeading = true,
): UpdateBlockSource & { reads: number } {
  const s = {
    count: updates.length,
    length: updates[0]!.length,
    reads: 0,
    async readInto(k: number, start: number, end: number, target: Float32Array): Promise<void> {
      s.reads += 1;
      await new Promise((resolve) => setImmediate(resolve));
      target.set((tampered.get(k) ?? updates[k]!).subarray(start, end));
    },
    ...(withLeading ? { leadingBytes: (k: number) => leading(k) } : {}),
  };
  return s;
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

/** One value of `u` changed by one bit (its lowest mantissa bit), at coordinate i. */
function flipped(u: Float32Array, i: number): Float32Array {
  const copy = u.slice();
  new Uint32Array(copy.buffer)[i]! ^= 1;
  return copy;
}

describe('ThreadedBlockSum digests: SHA-256 of every update as the sum reads it', () => {
  // Blocks that divide m (4096 | 16384, 1024 | 8192) and that do not (a short last block), one block bigger than m,
  // n across several groups of eight, and 0 (calling thread), 1, 2 and 3 threads (an odd split of each group).
  const cases = [
    { m: 16_384, n: 5, threads: 2, block: 4096 },
    { m: 10_007, n: 13, threads: 2, block: 4096 },
    { m: 8192, n: 9, threads: 1, block: 1024 },
    { m: 1001, n: 3, threads: 0, block: 64 },
    { m: 5003, n: 17, threads: 3, block: 512 },
    { m: 777, n: 2, threads: 2, block: 262_144 },
  ];
  it.each(cases)('m = $m, n = $n, $threads threads, blocks of $block: digests and the same sum', async (c) => {
    const updates = Array.from({ length: c.n }, (_, k) => randomUpdate(c.m, 40 * c.m + k));
    const weights = updates.map((_, k) => 1 + (k % 4));
    // Scaled terms: the slots are scaled in place before they are summed; the digest must be of the bytes as read.
    const scales = updates.map((_, k) => (k % 3 === 1 ? 0.37 : 1));
    const reference = new WeightedMeanAccumulator(c.m, { kernel: 'scalar' });
    updates.forEach((u, k) => reference.addValidated(scaleUpdate(u, scales[k]!), weights[k]));
    const sum = open(c.m, c.threads, c.block);
    const src = source(updates);
    const indices = updates.map((_, k) => k);
    const { digests } = await sum.sum(src, { indices, weights, scales, digests: true });
    expect(digests).toEqual(updates.map((_, k) => addressOf(updates, k)));
    expect(sameBits(sum.values, reference.sumCopy())).toBe(true);
    // Hashing reads nothing more: every update once per block.
    expect(src.reads).toBe(c.n * Math.ceil(c.m / sum.blockParameters));
  });

  it('hashes the terms in their order, over a subset and without leading bytes; none when not asked', async () => {
    const m = 3000;
    const updates = Array.from({ length: 6 }, (_, k) => randomUpdate(m, 70 + k));
    const sum = open(m, 2, 1024);
    const indices = [5, 0, 3];
    const plain = source(updates, new Map(), false);
    const { digests } = await sum.sum(plain, { indices, weights: [1, 1, 1], digests: true });
    expect(digests).toEqual(indices.map((k) => sha256(bytesOf(updates[k]!))));
    expect((await sum.sum(plain, { indices, weights: [1, 1, 1] })).digests).toBeNull();
  });

  it('scan hashes and visits every block without touching the sum', async () => {
    const m = 9000;
    const updates = Array.from({ length: 10 }, (_, k) => randomUpdate(m, 300 + k));
    const sum = open(m, 2, 2048);
    await sum.sum(source(updates), { indices: [1, 2], weights: [1, 1] });
    const before = sum.values.slice();
    const seen = updates.map(() => 0);
    const { digests } = await sum.scan(source(updates), {
      indices: [9, 4, 0],
      onBlock: (j, values) => (seen[j] = (seen[j] ?? 0) + values.length),
      digests: true,
    });
    expect(digests).toEqual([9, 4, 0].map((k) => addressOf(updates, k)));
    expect(seen.slice(0, 3)).toEqual([m, m, m]);
    expect(sameBits(sum.values, before)).toBe(true);
  });

  it('gives the digest of the bytes actually read: one flipped bit changes only that update’s digest', async () => {
    const m = 10_007;
    const updates = Array.from({ length: 9 }, (_, k) => randomUpdate(m, 800 + k));
    const bad = flipped(updates[6]!, m - 1);
    const { digests } = await open(m, 2, 4096).sum(source(updates, new Map([[6, bad]])), {
      indices: updates.map((_, k) => k),
      weights: updates.map(() => 1),
      digests: true,
    });
    updates.forEach((_, k) => {
      if (k === 6) expect(digests![k]).toBe(sha256(leading(6), bytesOf(bad)));
      else expect(digests![k]).toBe(addressOf(updates, k));
    });
    expect(digests![6]).not.toBe(addressOf(updates, 6));
  });
});

describe('fused FedAvg and DP-FedAvg checked against expected digests', () => {
  const m = 7777;
  const updates = Array.from({ length: 11 }, (_, k) => randomUpdate(m, 500 + k));
  const addresses = updates.map((_, k) => addressOf(updates, k));
  const weights = updates.map((_, k) => 10 + 7 * k);

  it('FedAvg: the same bits as the unchecked sum and the reference when every update matches', async () => {
    const reference = new FedAvgAggregator(m, { weighting: 'weighted', updatesPrevalidated: true });
    updates.forEach((u, k) => reference.add(u, weights[k]!));
    const expected = reference.finish();
    for (const threads of [0, 2]) {
      const checked = await fusedFedAvg(open(m, threads, 1024), source(updates), {
        weighting: 'weighted',
        weights,
        expectedDigests: addresses,
      });
      expect(sameBits(checked.delta, expected.delta), `${threads} threads`).toBe(true);
      expect(checked.trace).toEqual(expected.trace);
    }
  });

  it('FedAvg: a changed update is refused by name, even one whose changed bytes are not finite', async () => {
    const nan = updates[2]!.slice();
    nan[100] = Number.NaN;
    const tampered = new Map([
      [2, nan],
      [7, flipped(updates[7]!, 0)],
    ]);
    const err = await fusedFedAvg(open(m, 2, 1024), source(updates, tampered), {
      weighting: 'weighted',
      weights,
      expectedDigests: addresses,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DigestMismatchException);
    const mismatch = err as DigestMismatchException;
    expect(mismatch.code).toBe(AggregationErrorCode.DigestMismatch);
    expect(mismatch.mismatches).toEqual([
      { update: 2, expected: addresses[2], actual: sha256(leading(2), bytesOf(nan)) },
      { update: 7, expected: addresses[7], actual: sha256(leading(7), bytesOf(tampered.get(7)!)) },
    ]);
  });

  it('FedAvg without the changed update equals the reference over the others', async () => {
    const others = updates.filter((_, k) => k !== 7);
    const reference = new FedAvgAggregator(m, { weighting: 'unweighted', updatesPrevalidated: true });
    others.forEach((u) => reference.add(u, 1));
    const checked = await fusedFedAvg(open(m, 2, 1024), source(others), {
      weighting: 'unweighted',
      weights: others.map(() => 1),
      expectedDigests: others.map((u, j) => sha256(leading(j), bytesOf(u))),
    });
    expect(sameBits(checked.delta, reference.finish().delta)).toBe(true);
  });

  describe('DP-FedAvg', () => {
    const norms = updates.map((u) => Math.sqrt(squaredNorm(u)));
    const S = [...norms].sort((a, b) => a - b)[5]!;
    const receipt = norms.map((r) => r * (1 + 1e-12));
    const noise: SumNoiseMechanism = (sum, { clipNorm, noiseMultiplier }) => ({
      sum: sum.map((v, i) => v + clipNorm * noiseMultiplier * ((i % 5) - 2)),
      plan: { effectiveStddev: clipNorm * noiseMultiplier, granularity: 2 ** -20 },
    });
    const options = { clippingNorm: S, noiseMultiplier: 0.8, expectedSilos: 12 };
    const reported = updates.map((_, k) => 100 + k);
    const above = norms.findIndex((r) => r > S);
    const under = norms.findIndex((r) => r < S * 0.99);

    it('the same bits and traces as DpFedAvgAggregator when every update matches', async () => {
      const reference = createDpFedAvgAggregator(m, options, noise);
      const traces = updates.map((u, k) => reference.add(u, reported[k]!));
      const expected = reference.finish();
      const actual = await fusedDpFedAvg(open(m, 2, 2048), source(updates), reported, receipt, options, noise, {
        expectedDigests: addresses,
      });
      expect(sameBits(actual.delta, expected.delta)).toBe(true);
      expect(actual.updateTrace).toEqual(traces);
    });

    it.each([
      ['measured before the pass (receipt norm above S)', above],
      ['measured during the pass (receipt norm under S)', under],
    ])('refuses an update changed on disk, %s', async (_what, k) => {
      expect(k).toBeGreaterThanOrEqual(0);
      const bad = flipped(updates[k]!, 5);
      const err = await fusedDpFedAvg(
        open(m, 2, 2048),
        source(updates, new Map([[k, bad]])),
        reported,
        receipt,
        options,
        noise,
        { expectedDigests: addresses },
      ).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DigestMismatchException);
      expect((err as DigestMismatchException).mismatches.map((x) => x.update)).toEqual([k]);
    });
  });
});
