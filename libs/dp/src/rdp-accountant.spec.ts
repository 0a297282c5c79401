import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { logErfc as logErfcForTest } from './log-math.util';
import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';
import {
  composeRdp,
  computeRdp,
  DEFAULT_RDP_ORDERS,
  deltaFromRdp,
  epsilonFromRdp,
  type FractionalOrderSeries,
  OPACUS_DEFAULT_ALPHAS,
  rdpSampledGaussianStep,
  type SampledGaussianEvent,
} from './rdp-accountant';

function relativeError(actual: number, expected: number): number {
  return Math.abs(actual - expected) / Math.abs(expected);
}

function expectRelative(actual: number, expected: number, tolerance: number): void {
  expect(relativeError(actual, expected), `actual ${actual}, expected ${expected}`).toBeLessThanOrEqual(tolerance);
}

function range(from: number, toExclusive: number): number[] {
  return Array.from({ length: toExclusive - from }, (_, i) => from + i);
}

// A small grid keeps the property tests fast; the default grid is covered by the known-answer tests.
const SMALL_GRID = [1.5, 2, 3, 4.5, 8, 16, 32, 64];

describe('grids', () => {
  it('DEFAULT_RDP_ORDERS is dp_accounting DEFAULT_RDP_ORDERS (1.1..10.9 by 0.1, 11..63, 128, 256, 512, 1024)', () => {
    expect(DEFAULT_RDP_ORDERS).toHaveLength(99 + 53 + 4);
    expect(DEFAULT_RDP_ORDERS[0]).toBe(1.1);
    expect(DEFAULT_RDP_ORDERS[98]).toBe(10.9);
    expect(DEFAULT_RDP_ORDERS.slice(99, 101)).toEqual([11, 12]);
    expect(DEFAULT_RDP_ORDERS.slice(-5)).toEqual([63, 128, 256, 512, 1024]);
  });

  it('OPACUS_DEFAULT_ALPHAS is Opacus RDPAccountant.DEFAULT_ALPHAS (1.1..10.9 by 0.1, 12..63)', () => {
    expect(OPACUS_DEFAULT_ALPHAS).toHaveLength(99 + 52);
    expect(OPACUS_DEFAULT_ALPHAS[99]).toBe(12);
    expect(OPACUS_DEFAULT_ALPHAS.at(-1)).toBe(63);
  });
});

describe('published known answers: RDP of the sampled Gaussian', () => {
  // tensorflow/privacy tensorflow_privacy/privacy/analysis/rdp_accountant_test.py, test_compute_rdp_no_data
  it('q = 0 gives 0 (TF Privacy test_compute_rdp_no_data)', () => {
    expect(computeRdp({ samplingRate: 0, noiseMultiplier: 10, steps: 1 }, { orders: [20] }).rdp[0]).toBe(0);
    expect(rdpSampledGaussianStep(0, 1, Infinity)).toBe(0);
  });

  // tensorflow/privacy rdp_accountant_test.py, test_compute_rdp_no_sampling: compute_rdp(1, 10, 1, 20) == 0.1
  it('q = 1 gives alpha / (2 sigma^2) (TF Privacy test_compute_rdp_no_sampling)', () => {
    expect(computeRdp({ samplingRate: 1, noiseMultiplier: 10, steps: 1 }, { orders: [20] }).rdp[0]).toBe(0.1);
  });

  // tensorflow/privacy rdp_accountant_test.py, test_compute_heterogeneous_rdp_different_sampling_probabilities
  it('heterogeneous composition of q = 0 and q = 1 (TF Privacy test_compute_heterogeneous_rdp_...)', () => {
    const curve = composeRdp(
      [
        { samplingRate: 0, noiseMultiplier: 10, steps: 1 },
        { samplingRate: 1, noiseMultiplier: 10, steps: 1 },
      ],
      { orders: [20] },
    );
    expect(curve.rdp[0]).toBe(0.1);
  });

  // tensorflow/privacy rdp_accountant_test.py, test_compute_rdp_scalar: compute_rdp(0.1, 2, 10, 5) ~ 0.07737 (5 places)
  it('q = 0.1, sigma = 2, 10 steps, order 5 (TF Privacy test_compute_rdp_scalar)', () => {
    const rdp = computeRdp({ samplingRate: 0.1, noiseMultiplier: 2, steps: 10 }, { orders: [5] }).rdp[0]!;
    expect(Math.abs(rdp - 0.07737)).toBeLessThan(5e-6);
    // mpmath reference (reference/rdp_reference.py): 10 * 0.007736968489795865. The exact-integral figure holds all its
    // digits; the charged one is above it only by its rounding guard (a few units of 2^-52 in log A per step).
    const exact = computeRdp(
      { samplingRate: 0.1, noiseMultiplier: 2, steps: 10 },
      { orders: [5], fractionalOrderSeries: 'exact-integral' },
    ).rdp[0]!;
    expectRelative(exact, 0.07736968489795865, 1e-13);
    expect(rdp).toBeGreaterThanOrEqual(exact);
    expectRelative(rdp, 0.07736968489795865, 1e-11);
  });

  // tensorflow/privacy rdp_accountant_test.py, test_compute_rdp_sequence (assertSequenceAlmostEqual, delta=1e-5);
  // the same numbers are what Opacus' signed series computes: the informational exact-integral figure.
  it('q = 0.01, sigma = 2.5, 50 steps at orders 1.5..inf (TF Privacy test_compute_rdp_sequence; exact-integral)', () => {
    const orders = [1.5, 2.5, 5, 50, 100, Infinity];
    const { rdp } = computeRdp(
      { samplingRate: 0.01, noiseMultiplier: 2.5, steps: 50 },
      { orders, fractionalOrderSeries: 'exact-integral' },
    );
    const expected = [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307];
    expected.forEach((value, k) => expect(Math.abs(rdp[k]! - value)).toBeLessThan(1e-5));
    expect(rdp[5]).toBe(Infinity);
  });

  // google/differential-privacy python/dp_accounting/dp_accounting/rdp/rdp_privacy_accountant_test.py,
  // test_compute_rdp_poisson_sampled_gaussian (np.allclose, rtol 1e-4; we hold all published digits). Current
  // dp_accounting sums |terms| at fractional orders: the charged default reproduces all five values; the informational
  // exact integral is 3% lower at order 1.5 and agrees at the integer orders.
  it('dp_accounting test_compute_rdp_poisson_sampled_gaussian: the charged default, to all published digits', () => {
    const orders = [1.5, 2.5, 5, 50, 100, Infinity];
    const event = { samplingRate: 0.01, noiseMultiplier: 2.5, steps: 50 };
    const charged = computeRdp(event, { orders }).rdp;
    const exact = computeRdp(event, { orders, fractionalOrderSeries: 'exact-integral' }).rdp;
    const published = [6.70579741e-4, 1.0854871e-3, 2.18075656e-3, 2.38460375e-2, 1.67416308e2];
    published.forEach((value, k) => expectRelative(charged[k]!, value, 1e-8));
    [2, 3, 4].forEach((k) => expectRelative(exact[k]!, published[k]!, 1e-8));
    expect(exact[0]).toBeLessThan(0.98 * published[0]!);
    expect(charged[5]).toBe(Infinity);
  });

  // Older dp_accounting / tensorflow/privacy tensorflow_privacy/privacy/analysis/rdp_privacy_accountant_test.py,
  // test_compute_rdp_poisson_sampled_gaussian (signed series, rtol 1e-4): [6.5007e-04, 1.0854e-03, 2.1808e-03, ...].
  // Those are exact-integral values, kept as the informational figure's check.
  it('TF Privacy rdp_privacy_accountant_test (signed series) at rtol 1e-4: the exact-integral figure', () => {
    const orders = [1.5, 2.5, 5, 50, 100];
    const { rdp } = computeRdp(
      { samplingRate: 0.01, noiseMultiplier: 2.5, steps: 50 },
      { orders, fractionalOrderSeries: 'exact-integral' },
    );
    [6.5007e-4, 1.0854e-3, 2.1808e-3, 2.3846e-2, 1.6742e2].forEach((value, k) => expectRelative(rdp[k]!, value, 1e-4));
  });
});

describe('published known answers: dp_accounting behaviour the charged figure must share', () => {
  // google/differential-privacy rdp_privacy_accountant_test.py, test_log_a_frac_early_termination: for
  // PoissonSampledDpEvent(0.1, GaussianDpEvent(1.0)) on the default orders the fractional series does not converge at
  // some small orders, and dp_accounting records inf there (excluding them). Which orders: 1.1..1.5, printed by
  // reference/dp_accounting_reference.py.
  it('excludes the orders whose series does not settle (test_log_a_frac_early_termination)', () => {
    const { orders, rdp } = computeRdp({ samplingRate: 0.1, noiseMultiplier: 1, steps: 1 });
    const excluded = orders.filter((_, k) => rdp[k] === Infinity);
    expect(excluded).toEqual([1.1, 1.2, 1.3, 1.4, 1.5]);
    // The informational exact integral has a finite value there.
    const exact = computeRdp(
      { samplingRate: 0.1, noiseMultiplier: 1, steps: 1 },
      { orders: [1.1], fractionalOrderSeries: 'exact-integral' },
    );
    expect(Number.isFinite(exact.rdp[0])).toBe(true);
  });

  // rdp_privacy_accountant_test.py, test_compute_log_a_equals_mp: dp_accounting's log(A) within rtol 1e-4, atol 1e-8 of
  // an mpmath quadrature, at these ten (q, sigma, order). The mpmath values are from reference/rdp_reference.py log_a.
  const logACases: ReadonlyArray<readonly [number, number, number, number]> = [
    [1e-7, 0.1, 1.01, 4.003412322526394e-8],
    [1e-6, 0.1, 256, 3260463.2292971606],
    [1e-5, 0.1, 256.1, 3263607.039788421],
    [1e-6, 1, 27, 8.769511304848498e-10],
    [1e-4, 1.0, 1.5, 6.4426869538366495e-9],
    [1e-3, 1.0, 2, 1.7182803522145153e-6],
    [0.01, 10, 20, 0.00019129699912842963],
    [0.1, 100, 20.5, 0.00019991818458068295],
    [0.99, 0.1, 256, 3263997.427114021],
    [0.999, 100, 256.1, 3.260108037973112],
  ];
  it.each(logACases)('log A at q = %d, sigma = %d, order = %d (test_compute_log_a_equals_mp)', (q, s, order, mp) => {
    const logA = rdpSampledGaussianStep(q, s, order) * (order - 1);
    expect(Math.abs(logA - mp)).toBeLessThanOrEqual(1e-8 + 1e-4 * Math.abs(mp));
    // The charged figure bounds the integral from above (|binomial coefficients| plus the rounding guard).
    expect(logA).toBeGreaterThanOrEqual(mp * (1 - 1e-12));
  });

  // test_compute_rdp_gaussian / test_compute_rdp_multi_gaussian: GaussianDpEvent(sigma) has RDP alpha / (2 sigma^2) at
  // any order, and a composition adds up (alpha = 3.14159, sigma = 2.71828 and 6.28319).
  it('Gaussian mechanism (q = 1): alpha / (2 sigma^2), additive (test_compute_rdp_gaussian, _multi_gaussian)', () => {
    const alpha = 3.14159;
    const one = computeRdp({ samplingRate: 1, noiseMultiplier: 2.71828, steps: 1 }, { orders: [alpha] }).rdp[0];
    expect(one).toBeCloseTo(alpha / (2 * 2.71828 ** 2), 7);
    const both = composeRdp(
      [
        { samplingRate: 1, noiseMultiplier: 2.71828, steps: 1 },
        { samplingRate: 1, noiseMultiplier: 6.28319, steps: 1 },
      ],
      { orders: [alpha] },
    ).rdp[0];
    expect(both).toBeCloseTo(alpha / (2 * 2.71828 ** 2) + alpha / (2 * 6.28319 ** 2), 7);
  });

  // test_zero_poisson_sample: q = 0 costs nothing, at any delta.
  it('q = 0 gives epsilon 0 (test_zero_poisson_sample)', () => {
    const curve = computeRdp({ samplingRate: 0, noiseMultiplier: 1, steps: 1 }, { orders: [3.14159] });
    expect(epsilonFromRdp(curve.orders, curve.rdp, 1e-10).epsilon).toBe(0);
    expect(deltaFromRdp(curve.orders, curve.rdp, 1e-10).delta).toBe(0);
  });
});

describe('mpmath reference: RDP computed independently at 60 digits (reference/rdp_reference.py, mpmath 1.3.0)', () => {
  // Integer orders: exact binomial sum in mpmath; fractional orders: adaptive quadrature of the MTZ19 integral. These
  // are the exact integral, so they check the informational 'exact-integral' series; the charged one must not be lower.
  // Columns: q, sigma, order, one-step RDP.
  const cases: ReadonlyArray<readonly [number, number, number, number]> = [
    [0.01, 2.5, 1.5, 1.3001417943760795e-5],
    [0.01, 2.5, 2.5, 2.1708361138362487e-5],
    [0.01, 2.5, 5, 4.3615131246157614e-5],
    [0.01, 2.5, 50, 0.0004769207507741234],
    [0.01, 2.5, 100, 3.348326150968365],
    [0.1, 2, 5, 0.007736968489795865],
    [1e-3, 1, 2, 1.7182803522145153e-6],
    [1e-6, 1, 27, 3.372888963403269e-11],
    [0.1, 100, 20.5, 1.0252214593881177e-5],
    [1e-4, 1, 1.5, 1.2885373907673299e-8],
    [0.04, 1.5, 3.9, 0.0018332021995838587],
    [0.5, 0.7, 7.3, 6.6458120707611945],
    [0.2, 0.8, 256, 198.38425056634065],
    [1e-5, 0.1, 256.1, 12793.441943506157],
    [0.3, 5, 1024, 19.274850291662016],
  ];
  it.each(cases)('q = %d, sigma = %d, order = %d', (q, sigma, order, expected) => {
    // Integer orders are exact to ~1e-15; the fractional series loses a few digits to cancellation, still << 1e-6.
    const exact = rdpSampledGaussianStep(q, sigma, order, 'exact-integral');
    expectRelative(exact, expected, Number.isInteger(order) ? 1e-13 : 1e-9);
    expect(rdpSampledGaussianStep(q, sigma, order)).toBeGreaterThanOrEqual(expected);
  });

  // Columns: sigma, q, steps, delta, epsilon over DEFAULT_RDP_ORDERS, best order.
  const epsilonCases: ReadonlyArray<readonly [number, number, number, number, number, number]> = [
    [1.1, 0.01, 1000, 1e-5, 1.7117700912181726, 9.6],
    [0.8, 0.002, 20000, 1e-6, 3.0806641805735464, 6.8],
    [4.0, 0.2, 50, 1e-5, 1.5991924434554181, 12],
  ];
  it.each(epsilonCases)(
    'exact-integral epsilon for sigma = %d, q = %d, steps = %d, delta = %d',
    (sigma, q, steps, delta, eps, order) => {
      const curve = computeRdp(
        { noiseMultiplier: sigma, samplingRate: q, steps },
        { fractionalOrderSeries: 'exact-integral' },
      );
      const result = epsilonFromRdp(curve.orders, curve.rdp, delta);
      expectRelative(result.epsilon, eps, 1e-9);
      expect(result.bestOrder).toBe(order);
    },
  );
});

describe('published known answers: conversion to (epsilon, delta)', () => {
  // google/differential-privacy rdp_privacy_accountant_test.py, test_compute_epsilon_delta_pure_dp
  // (also tensorflow/privacy rdp_accountant_test.py, test_get_privacy_spent_check_target_delta).
  it('constant RDP 1.1 on orders 2..32 gives epsilon 1.32783806176 at order 32, and back', () => {
    const orders = range(2, 33);
    const rdp = orders.map(() => 1.1);
    const eps = epsilonFromRdp(orders, rdp, 1e-5);
    expect(eps.epsilon).toBeCloseTo(1.32783806176, 10);
    expect(eps.bestOrder).toBe(32);
    const delta = deltaFromRdp(orders, rdp, 1.32783806176);
    expectRelative(delta.delta, 1e-5, 1e-9);
    expect(delta.bestOrder).toBe(32);
  });

  // google/differential-privacy rdp_privacy_accountant_test.py, test_compute_epsilon_delta_gaussian: sigma = 4.530877117
  // gives exactly (1, 1e-6)-DP for the Gaussian mechanism; the fine grid starts at 1.001 here (our orders must be > 1).
  it('Gaussian mechanism sigma = 4.530877117 on a fine grid gives epsilon 1 at delta 1e-6, and back', () => {
    const orders = range(1001, 100000).map((i) => 0.001 * i);
    const { rdp } = computeRdp({ samplingRate: 1, noiseMultiplier: 4.530877117, steps: 1 }, { orders });
    expect(epsilonFromRdp(orders, rdp, 1e-6).epsilon).toBeCloseTo(1, 7);
    expectRelative(deltaFromRdp(orders, rdp, 1).delta, 1e-6, 1e-6);
  });

  // google/differential-privacy rdp_privacy_accountant_test.py, test_epsilon_delta_consistency
  it('delta(epsilon(delta)) = delta over q, sigma and delta grids (dp_accounting test_epsilon_delta_consistency)', () => {
    const orders = range(2, 50);
    for (const q of [0, 0.01, 0.1, 0.8, 1]) {
      for (const sigma of [0.1, 1, 10, 100]) {
        const { rdp } = computeRdp({ samplingRate: q, noiseMultiplier: sigma, steps: 1 }, { orders });
        for (const delta of [0.99, 0.9, 0.1, 0.01, 1e-3, 1e-5, 1e-9, 1e-12]) {
          const { epsilon } = epsilonFromRdp(orders, rdp, delta);
          const delta2 = deltaFromRdp(orders, rdp, epsilon).delta;
          if (epsilon === Infinity) expect(delta2).toBe(1);
          else if (epsilon === 0) expect(delta2).toBeLessThanOrEqual(delta);
          else expect(Math.abs(delta2 - delta)).toBeLessThan(5e-8);
        }
      }
    }
  });

  // google/differential-privacy rdp_privacy_accountant_test.py, test_delta_bounds_gaussian: for sigma = 1, the RDP
  // delta lies between the optimal Gaussian delta (Balle & Wang 2018, Theorem 8) and exp(-(eps - 1/2)^2 / 2).
  it('Gaussian delta bounds (dp_accounting test_delta_bounds_gaussian)', () => {
    const orders = range(11, 505).map((x) => 0.1 * x);
    const { rdp } = computeRdp({ samplingRate: 1, noiseMultiplier: 1, steps: 1 }, { orders });
    const erfc = (x: number): number => Math.exp(logErfcForTest(x));
    for (let k = 0; k < 500; k++) {
      const eps = 0.1 * k;
      const { delta } = deltaFromRdp(orders, rdp, eps);
      const optimal = erfc((eps - 0.5) / Math.SQRT2) / 2 - (Math.exp(eps) * erfc((eps + 0.5) / Math.SQRT2)) / 2;
      expect(optimal).toBeLessThanOrEqual(delta + 1e-300 + 1e-12 * delta);
      const standard = eps >= 0.5 ? Math.exp(-0.5 * (eps - 0.5) ** 2) : 1;
      expect(delta).toBeLessThanOrEqual(standard + 1e-300);
    }
  });
});

describe('published known answers: epsilon of whole runs', () => {
  // pytorch/opacus opacus/tests/accountants_test.py, test_rdp_accountant: sigma 1.5, q 0.04, int(90 / 0.04) steps,
  // delta 1e-5, DEFAULT_ALPHAS -> 7.32911117143 (assertAlmostEqual, 7 places). Opacus sums the fractional-order series
  // with signs (opacus/accountants/analysis/rdp.py), i.e. the exact integral: our informational figure reproduces it.
  // dp_accounting prices the same run (its arithmetic, Opacus' orders) at 7.329334702381698 (best order 3.9,
  // reference/dp_accounting_reference.py), which is what we charge.
  it('Opacus test_rdp_accountant: 7.32911117143 (exact-integral, informational); charged 7.3293347', () => {
    const event = { noiseMultiplier: 1.5, samplingRate: 0.04, steps: 2250 };
    const exact = computeRdp(event, { orders: OPACUS_DEFAULT_ALPHAS, fractionalOrderSeries: 'exact-integral' });
    expect(epsilonFromRdp(exact.orders, exact.rdp, 1e-5).epsilon).toBeCloseTo(7.32911117143, 9);
    const charged = computeRdp(event, { orders: OPACUS_DEFAULT_ALPHAS });
    const result = epsilonFromRdp(charged.orders, charged.rdp, 1e-5);
    expectRelative(result.epsilon, 7.329334702381698, 1e-9);
    expect(result.epsilon).toBeGreaterThanOrEqual(7.329334702381698);
    expect(result.bestOrder).toBe(3.9);
  });

  // tensorflow/privacy tensorflow_privacy/privacy/analysis/compute_dp_sgd_privacy_test.py, test_compute_dp_sgd_privacy:
  // (n, batch, sigma, epochs, delta) -> (epsilon, order) with q = batch / n, steps = ceil(epochs * n / batch) and the
  // orders [1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5] + range(5, 64) + [128, 256, 512] of compute_dp_sgd_privacy_lib.
  const tfOrders = [1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5, ...range(5, 64), 128, 256, 512];
  const tfCases: ReadonlyArray<readonly [number, number, number, number, number, number, number]> = [
    [60000, 150, 1.3, 15, 1e-5, 0.7242234026109595, 19],
    [100000, 100, 1.0, 30, 1e-7, 1.4154988495444842, 13],
    [100000000, 1024, 0.1, 10, 1e-7, 5907982.3113978775, 1.25],
  ];
  it.each(tfCases)(
    'TF Privacy compute_dp_sgd_privacy n = %d, batch = %d, sigma = %d',
    (n, batch, sigma, epochs, delta, eps, order) => {
      const event = { noiseMultiplier: sigma, samplingRate: batch / n, steps: Math.ceil((epochs * n) / batch) };
      for (const fractionalOrderSeries of ['exact-integral', 'dp-accounting'] as const) {
        const curve = computeRdp(event, { orders: tfOrders, fractionalOrderSeries });
        const result = epsilonFromRdp(curve.orders, curve.rdp, delta);
        expectRelative(result.epsilon, eps, 1e-9);
        expect(result.bestOrder).toBe(order);
      }
    },
  );

  // tensorflow/privacy compute_dp_sgd_privacy_test.py, test_compute_dp_sgd_example_privacy,
  // 'no_microbatching_with_subsampling_rdp': 1.2 epochs at q = 1e-2 (120 steps), sigma 0.7, delta 1e-5 -> 3.2392676 with
  // dp_accounting's default orders; the best order (4.4) is fractional, so this is the charged default. The exact
  // integral gives 3.2391922 (Opacus / signed-series value), 2.3e-05 relative lower: informational only.
  it('TF Privacy test_compute_dp_sgd_example_privacy with subsampling: 3.2392676', () => {
    const event = { noiseMultiplier: 0.7, samplingRate: 0.01, steps: 120 };
    const charged = computeRdp(event);
    expect(epsilonFromRdp(charged.orders, charged.rdp, 1e-5).epsilon).toBeCloseTo(3.2392676, 7);
    const exact = computeRdp(event, { fractionalOrderSeries: 'exact-integral' });
    expect(epsilonFromRdp(exact.orders, exact.rdp, 1e-5).epsilon).toBeCloseTo(3.2391922, 7);
  });

  // Same test, 'no_microbatching_no_subsampling_rdp': each example once per epoch, ceil(1.2) = 2 Gaussian steps.
  it('TF Privacy test_compute_dp_sgd_example_privacy without subsampling: 10.8602036', () => {
    const curve = computeRdp({ noiseMultiplier: 0.7, samplingRate: 1, steps: 2 });
    expect(epsilonFromRdp(curve.orders, curve.rdp, 1e-5).epsilon).toBeCloseTo(10.8602036, 7);
  });
});

describe('properties', () => {
  const sigma = fc.double({ min: 0.3, max: 20, noNaN: true });
  const rate = fc.double({ min: 1e-4, max: 1, noNaN: true });
  const steps = fc.integer({ min: 1, max: 5000 });
  const epsilonOf = (event: SampledGaussianEvent): number => {
    const curve = computeRdp(event, { orders: SMALL_GRID });
    return epsilonFromRdp(curve.orders, curve.rdp, 1e-5).epsilon;
  };
  const slack = (x: number): number => 1e-12 * Math.max(1, Math.abs(x));

  it('more steps never cost less epsilon', () => {
    fc.assert(
      fc.property(sigma, rate, steps, steps, (s, q, t1, t2) => {
        const [lo, hi] = t1 <= t2 ? [t1, t2] : [t2, t1];
        const a = epsilonOf({ noiseMultiplier: s, samplingRate: q, steps: lo });
        expect(a).toBeLessThanOrEqual(epsilonOf({ noiseMultiplier: s, samplingRate: q, steps: hi }) + slack(a));
      }),
      { numRuns: 40 },
    );
  });

  it('a larger sampling rate never costs less epsilon', () => {
    fc.assert(
      fc.property(sigma, rate, rate, steps, (s, q1, q2, t) => {
        const [lo, hi] = q1 <= q2 ? [q1, q2] : [q2, q1];
        const a = epsilonOf({ noiseMultiplier: s, samplingRate: lo, steps: t });
        expect(a).toBeLessThanOrEqual(epsilonOf({ noiseMultiplier: s, samplingRate: hi, steps: t }) + slack(a));
      }),
      { numRuns: 40 },
    );
  });

  it('a smaller noise multiplier never costs less epsilon', () => {
    fc.assert(
      fc.property(sigma, sigma, rate, steps, (s1, s2, q, t) => {
        const [lo, hi] = s1 <= s2 ? [s1, s2] : [s2, s1];
        const a = epsilonOf({ noiseMultiplier: hi, samplingRate: q, steps: t });
        expect(a).toBeLessThanOrEqual(epsilonOf({ noiseMultiplier: lo, samplingRate: q, steps: t }) + slack(a));
      }),
      { numRuns: 40 },
    );
  });

  it('q = 1 is the closed form alpha / (2 sigma^2) per step, at any order including fractional ones', () => {
    fc.assert(
      fc.property(sigma, steps, fc.double({ min: 1.01, max: 500, noNaN: true }), (s, t, order) => {
        const { rdp } = computeRdp({ noiseMultiplier: s, samplingRate: 1, steps: t }, { orders: [order] });
        expectRelative(rdp[0]!, (t * order) / (2 * s * s), 1e-14);
      }),
      { numRuns: 50 },
    );
  });

  it('subsampling never costs more than the full-batch Gaussian, and RDP grows with the order', () => {
    fc.assert(
      fc.property(sigma, rate, (s, q) => {
        const event = { noiseMultiplier: s, samplingRate: q, steps: 1 };
        // Both properties belong to the divergence itself, i.e. to the exact integral.
        const exact = computeRdp(event, { orders: SMALL_GRID, fractionalOrderSeries: 'exact-integral' }).rdp;
        const charged = computeRdp(event, { orders: SMALL_GRID }).rdp;
        SMALL_GRID.forEach((order, k) => {
          expect(exact[k]).toBeGreaterThanOrEqual(0);
          expect(exact[k]).toBeLessThanOrEqual(order / (2 * s * s) + slack(exact[k]!));
          if (k > 0) expect(exact[k - 1]).toBeLessThanOrEqual(exact[k]! + 1e-9 * exact[k]!);
          // The charged figure bounds it from above; +Infinity only where dp_accounting excludes a fractional order.
          expect(charged[k]).toBeGreaterThanOrEqual(exact[k]!);
          if (charged[k] === Infinity) expect(Number.isInteger(order)).toBe(false);
        });
      }),
      { numRuns: 50 },
    );
  });

  it('composition is additive: per-order RDP of a list is the sum, and steps split freely', () => {
    fc.assert(
      fc.property(sigma, sigma, rate, rate, steps, steps, (s1, s2, q1, q2, t1, t2) => {
        const e1 = { noiseMultiplier: s1, samplingRate: q1, steps: t1 };
        const e2 = { noiseMultiplier: s2, samplingRate: q2, steps: t2 };
        const both = composeRdp([e1, e2], { orders: SMALL_GRID }).rdp;
        const a = computeRdp(e1, { orders: SMALL_GRID }).rdp;
        const b = computeRdp(e2, { orders: SMALL_GRID }).rdp;
        const merged = computeRdp({ ...e1, steps: t1 + t2 }, { orders: SMALL_GRID }).rdp;
        const split = composeRdp(
          [
            { ...e1, steps: t1 },
            { ...e1, steps: t2 },
          ],
          { orders: SMALL_GRID },
        ).rdp;
        SMALL_GRID.forEach((_, k) => {
          expect(both[k]).toBe(a[k]! + b[k]!);
          if (merged[k] === Infinity) expect(split[k]).toBe(Infinity);
          else expect(Math.abs(split[k]! - merged[k]!)).toBeLessThanOrEqual(1e-12 * merged[k]!);
        });
      }),
      { numRuns: 30 },
    );
  });

  it("charges at least the true RDP where dp_accounting's stopping rule falls below it", () => {
    // Reference: the RDP integral of the sampled Gaussian at q = 1e-4, σ = 0.8083742089858518, α = 5.38005458025757,
    // by mpmath quadrature at 50 digits: 9.76311003790867304452e-8. dp_accounting's truncated series gives
    // 9.7631100358883e-8 here (2·10^-10 relative below).
    const truth = Number('9.76311003790867304452e-8'); // the nearest double of the 50-digit value
    const charged = rdpSampledGaussianStep(1e-4, 0.8083742089858518, 5.38005458025757);
    expect(charged).toBeGreaterThanOrEqual(truth);
    expect((charged - truth) / truth).toBeLessThan(1e-12);
  });

  it('the charged (dp-accounting) series is never below the exact integral', () => {
    fc.assert(
      fc.property(
        sigma,
        fc.double({ min: 1e-4, max: 0.999, noNaN: true }),
        fc.double({ min: 1.02, max: 60, noNaN: true }),
        (s, q, order) => {
          const exact = rdpSampledGaussianStep(q, s, order, 'exact-integral');
          const charged = rdpSampledGaussianStep(q, s, order, 'dp-accounting');
          // dp_accounting's rule truncates terms below e^-30 of A (~1e-13 absolute), which the rounding guard exceeds.
          expect(charged).toBeGreaterThanOrEqual(exact);
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('numerical range', () => {
  it('huge orders and tiny sigma stay finite in log space (no overflow to NaN)', () => {
    const { rdp } = computeRdp(
      { noiseMultiplier: 0.05, samplingRate: 0.5, steps: 1 },
      { orders: [1024, 4096.5, 100000] },
    );
    rdp.forEach((value) => {
      expect(Number.isFinite(value)).toBe(true);
      expect(value).toBeGreaterThan(0);
    });
    // q = 1 bound order / (2 sigma^2) = 200 * order caps the subsampled value.
    expect(rdp[2]).toBeLessThanOrEqual(200 * 100000);
  });

  it('tiny RDP keeps full relative precision (log1p of a positive-term sum)', () => {
    // mpmath: q = 1e-6, sigma = 1, order 27 -> 3.372888963403269e-11 (reference/rdp_reference.py).
    expectRelative(rdpSampledGaussianStep(1e-6, 1, 27, 'exact-integral'), 3.372888963403269e-11, 1e-13);
  });
});

describe('input validation', () => {
  const good = { noiseMultiplier: 1, samplingRate: 0.01, steps: 10 };
  const cases: ReadonlyArray<readonly [string, () => unknown, PrivacyParameterErrorCode, string]> = [
    [
      'sigma <= 0',
      () => computeRdp({ ...good, noiseMultiplier: 0 }),
      PrivacyParameterErrorCode.InvalidNoiseMultiplier,
      'noiseMultiplier',
    ],
    [
      'sigma NaN',
      () => computeRdp({ ...good, noiseMultiplier: NaN }),
      PrivacyParameterErrorCode.InvalidNoiseMultiplier,
      'noiseMultiplier',
    ],
    [
      'q < 0',
      () => computeRdp({ ...good, samplingRate: -0.1 }),
      PrivacyParameterErrorCode.InvalidSamplingRate,
      'samplingRate',
    ],
    [
      'q > 1',
      () => computeRdp({ ...good, samplingRate: 1.5 }),
      PrivacyParameterErrorCode.InvalidSamplingRate,
      'samplingRate',
    ],
    ['steps 0', () => computeRdp({ ...good, steps: 0 }), PrivacyParameterErrorCode.InvalidSteps, 'steps'],
    ['steps 2.5', () => computeRdp({ ...good, steps: 2.5 }), PrivacyParameterErrorCode.InvalidSteps, 'steps'],
    ['order 1', () => computeRdp(good, { orders: [1] }), PrivacyParameterErrorCode.InvalidOrder, 'orders'],
    ['empty grid', () => computeRdp(good, { orders: [] }), PrivacyParameterErrorCode.InvalidOrder, 'orders'],
    [
      'unknown series',
      () => rdpSampledGaussianStep(0.1, 1, 2.5, 'absolute' as FractionalOrderSeries),
      PrivacyParameterErrorCode.InvalidOption,
      'fractionalOrderSeries',
    ],
    ['delta 0', () => epsilonFromRdp([2], [1], 0), PrivacyParameterErrorCode.InvalidDelta, 'delta'],
    ['delta 1', () => epsilonFromRdp([2], [1], 1), PrivacyParameterErrorCode.InvalidDelta, 'delta'],
    ['length mismatch', () => epsilonFromRdp([2, 3], [1], 1e-5), PrivacyParameterErrorCode.InvalidOrder, 'rdp'],
    [
      'bad event in list',
      () => composeRdp([good, { ...good, steps: -1 }]),
      PrivacyParameterErrorCode.InvalidSteps,
      'events[1].steps',
    ],
  ];
  it.each(cases)('%s throws a typed PrivacyParameterError naming the parameter', (_, run, code, parameter) => {
    try {
      run();
      expect.unreachable('should have thrown');
    } catch (error) {
      expect(error).toBeInstanceOf(PrivacyParameterError);
      expect((error as PrivacyParameterError).code).toBe(code);
      expect((error as PrivacyParameterError).parameter).toBe(parameter);
      expect((error as PrivacyParameterError).message).toContain(parameter.replace(/^events\[1\]\./, ''));
    }
  });
});
