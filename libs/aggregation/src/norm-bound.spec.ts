import { describe, expect, it } from 'vitest';
import { AggregationErrorCode } from './aggregation.exception';
import { boundNorms, boundNormsBlockwise, decideNormBound, scaleUpdate } from './norm-bound';
import {
  asyncRefusalCode,
  countingReader,
  expectSameBits,
  f32,
  gaussianVector,
  refusalCode,
  seededNormal,
} from './robust.test-util';
import { forEachBlock } from './update-blocks';
import { l2Norm } from './update-validation';

describe('server-side norm bounding', () => {
  it('fixed bound: (3, 4) with norm 5 becomes (0.6, 0.8) under a bound of 1; short updates are untouched', () => {
    const { updates, factors, trace, updateTrace } = boundNorms([f32(3, 4), f32(0.5, 0), f32(0, 0)], {
      mode: 'fixed',
      maxNorm: 1,
    });
    expect(factors).toEqual([0.2, 1, 1]);
    expect(Array.from(updates[0]!)).toEqual([Math.fround(0.6), Math.fround(0.8)]);
    expect(Array.from(updates[1]!)).toEqual([0.5, 0]);
    expect(trace).toEqual({ step: 'norm-bound', mode: 'fixed', bound: 1, medianNorm: 0.5, clipped: 1 });
    expect(updateTrace[0]).toEqual({ step: 'clip', norm: 5, clippingNorm: 1, factor: 0.2 });
  });

  it('median multiple: norms 1, 2, 3, 4, 100 with ×2 → bound 6, only the 100 is scaled, to norm 6', () => {
    const decision = decideNormBound([1, 2, 3, 4, 100], { mode: 'median-multiple', multiplier: 2 });
    expect(decision.medianNorm).toBe(3);
    expect(decision.bound).toBe(6);
    expect(decision.factors).toEqual([1, 1, 1, 1, 0.06]);
    expect(decision.trace).toMatchObject({ mode: 'median-multiple', multiplier: 2, clipped: 1 });
    const scaled = scaleUpdate(f32(60, 80), decision.factors[4]!);
    expect(l2Norm(scaled)).toBeCloseTo(6, 5);
  });

  it('a ×10 scaled update is brought back to the honest scale', () => {
    const normal = seededNormal(3);
    const honest = Array.from({ length: 7 }, () => gaussianVector(1000, normal));
    const attacker = Float32Array.from(honest[0]!, (x) => 10 * x);
    const { updates, bound } = boundNorms([...honest, attacker], { mode: 'median-multiple', multiplier: 1.5 });
    expect(l2Norm(updates[7]!)).toBeLessThanOrEqual(bound * (1 + 1e-6));
    expect(l2Norm(updates[7]!)).toBeLessThan(2 * l2Norm(honest[0]!));
    expect(updates[1]).toBe(honest[1]); // not copied when not clipped
  });

  it('blockwise: a reader that scales blocks as they are read gives the in-memory bounded updates bit for bit', async () => {
    const normal = seededNormal(4);
    const updates = Array.from({ length: 5 }, (_, k) => gaussianVector(70_001, normal, k + 1));
    const bound = { mode: 'median-multiple', multiplier: 1 } as const;
    const inMemory = boundNorms(updates, bound);
    const reader = countingReader(updates);
    const blockwise = await boundNormsBlockwise(reader, bound);
    expect(blockwise.factors).toEqual(inMemory.factors);
    expect(reader.reads).toEqual([2, 2, 2, 2, 2]); // the norm pass: 2 blocks of the default 65,536
    const rebuilt = updates.map((u) => new Float32Array(u.length));
    await forEachBlock(blockwise.reader, 4096, (blocks, start) => blocks.forEach((b, k) => rebuilt[k]!.set(b, start)));
    rebuilt.forEach((u, k) => expectSameBits(u, inMemory.updates[k] as Float32Array));
  });

  it('known norms (recorded at upload) spare the norm pass', async () => {
    const updates = [f32(3, 4), f32(1, 0), f32(0, 1)];
    const reader = countingReader(updates);
    const { factors } = await boundNormsBlockwise(reader, { mode: 'fixed', maxNorm: 1 }, { norms: [5, 1, 1] });
    expect(factors).toEqual([0.2, 1, 1]);
    expect(reader.reads).toEqual([0, 0, 0]);
  });

  it('refuses bad bounds, norms and inputs', async () => {
    expect(refusalCode(() => decideNormBound([1], { mode: 'fixed', maxNorm: -1 }))).toBe(
      AggregationErrorCode.InvalidParameter,
    );
    expect(refusalCode(() => decideNormBound([1], { mode: 'fixed', maxNorm: Infinity }))).toBe(
      AggregationErrorCode.InvalidParameter,
    );
    expect(refusalCode(() => decideNormBound([1], { mode: 'median-multiple', multiplier: 0 }))).toBe(
      AggregationErrorCode.InvalidParameter,
    );
    expect(refusalCode(() => decideNormBound([], { mode: 'fixed', maxNorm: 1 }))).toBe(
      AggregationErrorCode.EmptyAggregate,
    );
    expect(refusalCode(() => decideNormBound([Number.NaN], { mode: 'fixed', maxNorm: 1 }))).toBe(
      AggregationErrorCode.NonFiniteValue,
    );
    expect(refusalCode(() => boundNorms([f32(1), f32(Infinity)], { mode: 'fixed', maxNorm: 1 }))).toBe(
      AggregationErrorCode.NonFiniteValue,
    );
    const reader = countingReader([f32(1), f32(2)]);
    expect(
      await asyncRefusalCode(() => boundNormsBlockwise(reader, { mode: 'fixed', maxNorm: 1 }, { norms: [1] })),
    ).toBe(AggregationErrorCode.LengthMismatch);
  });
});
