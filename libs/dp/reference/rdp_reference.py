#!/usr/bin/env python3
"""Independent high-precision reference values for libs/dp (RDP of the Poisson-subsampled Gaussian).

Not used at run time. It recomputes, with mpmath at 60 significant digits and without the series tricks that
libs/dp/src/rdp-accountant.ts uses, the numbers pinned in rdp-accountant.spec.ts under "mpmath reference". These are
the EXACT INTEGRAL: they check the informational 'exact-integral' figure (what Opacus computes). The charged figure is
dp_accounting's arithmetic, which is up to ~3% higher at fractional orders; its reference values come from
dp_accounting itself, see dp_accounting_reference.py beside this file.

* integer orders: A_alpha = sum_i C(alpha, i) (1-q)^(alpha-i) q^i exp((i^2 - i) / (2 sigma^2))  (exact, rational terms)
* fractional orders: A_alpha = integral of mu0(z) * ((1-q) + q * exp((2z - 1) / (2 sigma^2)))^alpha dz by adaptive
  quadrature (the definition in Mironov, Talwar, Zhang 2019, section 3), split at z0 and around the peaks.
* RDP = log(A_alpha) / (alpha - 1) per step, times steps; epsilon by Balle et al. 2020 Theorem 21, minimised over orders.

Run: python3 libs/dp/reference/rdp_reference.py   (needs mpmath; tested with mpmath 1.3.0)
"""
import mpmath as mp

mp.mp.dps = 60


def log_a(q, sigma, alpha):
    q, sigma, alpha = mp.mpf(q), mp.mpf(sigma), mp.mpf(alpha)
    if alpha == mp.floor(alpha):
        n = int(alpha)
        total = mp.fsum(
            mp.binomial(n, i) * (1 - q) ** (n - i) * q**i * mp.exp(mp.mpf(i * i - i) / (2 * sigma**2))
            for i in range(n + 1)
        )
        return mp.log(total)

    def integrand(z):
        return mp.npdf(z, 0, sigma) * ((1 - q) + q * mp.exp((2 * z - 1) / (2 * sigma**2))) ** alpha

    z0 = sigma**2 * mp.log(1 / q - 1) + mp.mpf(1) / 2
    # The integrand peaks near 0 (the mu0 part) and near alpha (the mu1^alpha part); split there and at z0.
    points = sorted({mp.mpf(0), mp.mpf(1), z0, alpha, mp.mpf(-50) * sigma, alpha + 50 * sigma})
    pts = [-mp.inf] + points + [mp.inf]
    return mp.log(mp.quad(integrand, pts, maxdegree=12))


def rdp(q, sigma, alpha, steps=1):
    if q == 0:
        return mp.mpf(0)
    if q == 1:
        return steps * mp.mpf(alpha) / (2 * mp.mpf(sigma) ** 2)
    return steps * log_a(q, sigma, alpha) / (mp.mpf(alpha) - 1)


def epsilon(orders, rdps, delta):
    delta = mp.mpf(delta)
    best = (mp.inf, None)
    for a, r in zip(orders, rdps):
        a = mp.mpf(a)
        if delta**2 + mp.expm1(-r) > 0:
            e = mp.mpf(0)
        elif a > mp.mpf("1.01"):
            e = r + mp.log1p(-1 / a) - mp.log(delta * a) / (a - 1)
        else:
            e = mp.inf
        if e < best[0]:
            best = (e, a)
    return best


if __name__ == "__main__":
    print("# single-step RDP: q, sigma, alpha -> rdp")
    for q, sigma, alpha in [
        (0.01, 2.5, "1.5"),
        (0.01, 2.5, "2.5"),
        (0.01, 2.5, 5),
        (0.01, 2.5, 50),
        (0.01, 2.5, 100),
        (0.1, 2, 5),
        (1e-3, 1, 2),
        (1e-6, 1, 27),
        (0.1, 100, "20.5"),
        (1e-4, 1, "1.5"),
        (0.04, 1.5, "3.9"),
        (0.5, 0.7, "7.3"),
        (0.2, 0.8, 256),
        (1e-5, 0.1, "256.1"),
        (0.3, 5, 1024),
    ]:
        print(q, sigma, alpha, mp.nstr(rdp(q, sigma, mp.mpf(alpha)), 17))

    print("# exact-integral (informational) epsilon over the dp-accounting default grid: sigma, q, steps, delta -> epsilon, order")
    default = [1 + x / mp.mpf(10) for x in range(1, 100)] + list(range(11, 64)) + [128, 256, 512, 1024]
    for sigma, q, steps, delta in [(1.1, 0.01, 1000, 1e-5), (0.8, 0.002, 20000, 1e-6), (4.0, 0.2, 50, 1e-5)]:
        rd = [rdp(q, sigma, a, steps) for a in default]
        e, a = epsilon(default, rd, delta)
        print(sigma, q, steps, delta, mp.nstr(e, 17), mp.nstr(a, 4))
