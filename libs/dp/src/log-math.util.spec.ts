import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { logAdd, logBinomial, logErfc, logGamma, logSumExp, SignedLogSum } from './log-math.util';

// Reference values: mpmath 1.3.0 at 40 digits, `mp.log(mp.erfc(x))` and `mp.loggamma(x)` (see reference/rdp_reference.py
// for the accountant's own mpmath references).
const LOG_ERFC_REFERENCE: ReadonlyArray<readonly [number, number]> = [
  [-5, 0.6931471805591766],
  [-1.5, 0.6760545027339606],
  [-0.3, 0.28414589714140825],
  [0, 0],
  [0.1, -0.1193049737373956],
  [0.5, -0.7350111298370844],
  [1.2, -2.41144035516693],
  [1.9999, -5.36449945777353],
  [2, -5.364941264616638],
  [2.5, -7.806815272727264],
  [4, -17.987778312103007],
  [10, -102.87988902484489],
  [27.5, -760.1372110153482],
  [300, -90006.27615297306],
];

const LOG_GAMMA_REFERENCE: ReadonlyArray<readonly [number, number]> = [
  [0.5, 0.5723649429247001],
  [1, 0],
  [3.7, 1.4280723266653879],
  [24, 51.60667556776438],
  [100.25, 360.28455963776423],
  [1e5, 1051287.708973657],
];

describe('logErfc', () => {
  it.each(LOG_ERFC_REFERENCE)('matches mpmath at x = %d', (x, expected) => {
    // Near x = 0 the value itself is ~0, so compare absolutely there.
    expect(Math.abs(logErfc(x) - expected)).toBeLessThan(1e-13 * Math.max(1, Math.abs(expected)));
  });

  it('is finite and decreasing far into the tail, where erfc itself underflows', () => {
    expect(Number.isFinite(logErfc(1e4))).toBe(true);
    expect(logErfc(1e4)).toBeLessThan(logErfc(1e3));
    expect(logErfc(Infinity)).toBe(-Infinity);
    expect(logErfc(-Infinity)).toBeCloseTo(Math.LN2, 15);
  });

  it('is continuous across the series / continued-fraction switch at x = 2', () => {
    expect(Math.abs(logErfc(2 - 1e-12) - logErfc(2))).toBeLessThan(1e-10);
  });
});

describe('logGamma', () => {
  it.each(LOG_GAMMA_REFERENCE)('matches mpmath at x = %d', (x, expected) => {
    expect(Math.abs(logGamma(x) - expected)).toBeLessThan(1e-14 * Math.max(1, Math.abs(expected)));
  });

  it('gives exact binomial coefficients for small n', () => {
    expect(Math.exp(logBinomial(10, 3))).toBeCloseTo(120, 10);
    expect(Math.exp(logBinomial(52, 5))).toBeCloseTo(2598960, 5);
    expect(logBinomial(1000, 0)).toBe(0);
  });
});

describe('log-space sums', () => {
  it('logAdd and logSumExp agree with direct sums on moderate values', () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -50, max: 50, noNaN: true }), { minLength: 1, maxLength: 20 }), (xs) => {
        const direct = Math.log(xs.reduce((s, x) => s + Math.exp(x), 0));
        const tolerance = 1e-12 * Math.max(1, Math.abs(direct));
        expect(Math.abs(logSumExp(xs) - direct)).toBeLessThan(tolerance);
        expect(Math.abs(xs.reduce((a, x) => logAdd(a, x), -Infinity) - direct)).toBeLessThan(tolerance);
      }),
      { numRuns: 100 },
    );
  });

  it('does not overflow on huge logs', () => {
    expect(logSumExp([1e6, 1e6])).toBeCloseTo(1e6 + Math.LN2, 6);
    expect(logAdd(-Infinity, -Infinity)).toBe(-Infinity);
  });

  it('SignedLogSum tracks sign and magnitude of alternating sums', () => {
    const sum = new SignedLogSum();
    sum.add(1, Math.log(5));
    sum.add(-1, Math.log(3));
    expect(sum.resultSign).toBe(1);
    expect(Math.exp(sum.resultLog)).toBeCloseTo(2, 12);
    sum.add(-1, Math.log(4));
    expect(sum.resultSign).toBe(-1);
    expect(Math.exp(sum.resultLog)).toBeCloseTo(2, 12);
    sum.add(1, Math.log(2));
    expect(sum.resultSign).toBe(0);
    expect(sum.resultLog).toBe(-Infinity);
  });
});
