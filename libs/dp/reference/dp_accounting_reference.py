#!/usr/bin/env python3
"""Reference values for the CHARGED accountant of libs/dp, computed by Google's dp_accounting itself (and Opacus).

Not used at run time. Every number pinned in libs/dp/src/*.spec.ts under "dp_accounting reference" or "Opacus
reference" is printed by this script; it calls the libraries' public functions and reimplements nothing:

* epsilon: dp_accounting.rdp.RdpAccountant() (default orders, or the orders given), composed with
  SelfComposedDpEvent(PoissonSampledDpEvent(q, GaussianDpEvent(sigma)), steps) for each event, then
  get_epsilon_and_optimal_order(delta). q = 1 is composed as SelfComposedDpEvent(GaussianDpEvent(sigma), steps).
* calibration: dp_accounting.calibrate_dp_mechanism(RdpAccountant, make_event, target_epsilon, delta) with its default
  bracket and tolerance (1e-6 of the bracket width).
* Opacus (informational exact-integral figure): opacus.accountants.analysis.rdp.compute_rdp / get_privacy_spent.

Run: pip install dp-accounting==0.4.4 opacus; python3 libs/dp/reference/dp_accounting_reference.py
(values in the specs were produced from google/differential-privacy at commit b5b0286 and pytorch/opacus at commit
4d0ebc8, with numpy 2.4.6 and scipy 1.17.1.)
"""
import json
import logging
import math
import random

import dp_accounting
from dp_accounting import dp_event
from dp_accounting.rdp import rdp_privacy_accountant as rdp

logging.disable(logging.WARNING)  # dp_accounting warns when it excludes a non-converging order; that is expected


def event_of(sigma, q, steps):
    base = dp_event.GaussianDpEvent(sigma)
    if q != 1:
        base = dp_event.PoissonSampledDpEvent(q, base)
    return dp_event.SelfComposedDpEvent(base, steps)


def epsilon(events, delta, orders=None):
    accountant = rdp.RdpAccountant(orders) if orders is not None else rdp.RdpAccountant()
    for sigma, q, steps in events:
        accountant.compose(event_of(sigma, q, steps))
    eps, order = accountant.get_epsilon_and_optimal_order(delta)
    return float(eps), float(order)


def calibrate(target, q, steps, delta):
    return float(
        dp_accounting.calibrate_dp_mechanism(
            rdp.RdpAccountant, lambda sigma: event_of(sigma, q, steps), target, delta
        )
    )


OPACUS_ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))

if __name__ == "__main__":
    print("# charged epsilon: events [(sigma, q, steps)], delta -> epsilon, best order (default orders)")
    for events, delta in [
        ([(1.1, 0.01, 1000)], 1e-5),
        ([(0.7, 0.01, 120)], 1e-5),
        ([(1.5, 0.04, 2250)], 1e-5),
        ([(9.153, 0.1, 500)], 1e-5),
        ([(0.8, 0.002, 20000)], 1e-6),
        ([(4.0, 0.2, 50)], 1e-5),
        ([(0.5, 0.05, 200)], 1e-5),
        ([(2.0, 0.001, 100000)], 1e-8),
        ([(1.0, 0.1, 100)], 1e-5),
        ([(5.0, 1, 10)], 1e-6),
        ([(4.530877117, 1, 1)], 1e-6),
        ([(1.1, 0.01, 600), (1.5, 0.02, 400), (20.0, 1, 3)], 1e-5),
        ([(30.0, 0.0003, 50)], 1e-3),
    ]:
        print(json.dumps([events, delta, *epsilon(events, delta)]))

    print("# charged epsilon on Opacus' DEFAULT_ALPHAS: sigma 1.5, q 0.04, 2250 steps, delta 1e-5")
    print(json.dumps(epsilon([(1.5, 0.04, 2250)], 1e-5, OPACUS_ALPHAS)))

    print("# RDP of q = 0.1, sigma = 1, one step at the default orders: orders dp_accounting excludes (inf)")
    accountant = rdp.RdpAccountant()
    accountant.compose(event_of(1.0, 0.1, 1))
    print(json.dumps([o for o, r in zip(rdp.DEFAULT_RDP_ORDERS, accountant.rdp) if r == float("inf")]))

    print("# calibration: target epsilon, q, steps, delta -> noise multiplier, its dp_accounting epsilon")
    for target, q, steps, delta in [
        (8, 0.04, 2000, 1e-5),
        (8, 0.04, 2250, 1e-5),
        (1, 0.01, 1000, 1e-5),
        (3, 0.01, 120, 1e-5),
        (0.5, 0.2, 10, 1e-5),
        (1, 1, 10, 1e-6),
        (0.3, 1, 1, 1e-5),
        (2, 0.001, 100000, 1e-8),
    ]:
        sigma = calibrate(target, q, steps, delta)
        print(json.dumps([target, q, steps, delta, sigma, epsilon([(sigma, q, steps)], delta)[0]]))

    print("# random vectors (seed 20260807): sigma, q, steps, delta -> epsilon, best order; dp-accounting-vectors.test-util.ts")
    rng = random.Random(20260807)
    for _ in range(48):
        sigma = math.exp(rng.uniform(math.log(0.4), math.log(30)))
        q = 1.0 if rng.random() < 0.1 else math.exp(rng.uniform(math.log(1e-4), math.log(0.9)))
        steps = int(math.exp(rng.uniform(0, math.log(1e5))))
        delta = rng.choice([1e-3, 1e-5, 1e-6, 1e-8, 1e-10])
        print(json.dumps([sigma, q, steps, delta, *epsilon([(sigma, q, steps)], delta)]))

    try:
        from opacus.accountants.analysis import rdp as opacus_rdp
    except ImportError:
        opacus_rdp = None
    if opacus_rdp is not None:
        print("# Opacus get_privacy_spent over DEFAULT_ALPHAS at the noise multipliers its tests publish")
        for sigma, steps in [(1.5, 2250), (1.3562, 2000), (1.416, 2250)]:
            curve = opacus_rdp.compute_rdp(q=0.04, noise_multiplier=sigma, steps=steps, orders=OPACUS_ALPHAS)
            eps, order = opacus_rdp.get_privacy_spent(orders=OPACUS_ALPHAS, rdp=curve, delta=1e-5)
            print(json.dumps([sigma, steps, float(eps), float(order), epsilon([(sigma, 0.04, steps)], 1e-5)[0]]))
