// The accountant's names, order grids and fractional-order series (see rdp-accountant.ts for the references).

import { PrivacyParameterError, PrivacyParameterErrorCode } from './privacy-parameter.exception';
import { isList } from './privacy-parameter.util';

/**
 * Name reported with every charged epsilon (ledgers, CLI, audit): the RDP accountant of the Poisson-subsampled Gaussian
 * with dp_accounting's RdpAccountant arithmetic ([DPA]).
 */
export const RDP_ACCOUNTANT_NAME = 'rdp-sampled-gaussian';

/** Name reported with the informational exact-integral figure, which is never charged. */
export const EXACT_INTEGRAL_ACCOUNTANT_NAME = 'rdp-sampled-gaussian-exact-integral-informational';

/**
 * The default order grid of Google's dp_accounting RdpAccountant (`DEFAULT_RDP_ORDERS` in
 * python/dp_accounting/dp_accounting/rdp/rdp_privacy_accountant.py): 1.1 .. 10.9 in steps of 0.1, 11 .. 63, 128, 256,
 * 512, 1024. It contains Opacus' grid except 11 and the four large orders, which help at large noise multipliers.
 */
export const DEFAULT_RDP_ORDERS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10),
  ...Array.from({ length: 53 }, (_, x) => 11 + x),
  128,
  256,
  512,
  1024,
]);

/** Opacus' `RDPAccountant.DEFAULT_ALPHAS` (opacus/accountants/rdp.py): 1.1 .. 10.9 in steps of 0.1, then 12 .. 63. */
export const OPACUS_DEFAULT_ALPHAS: readonly number[] = Object.freeze([
  ...Array.from({ length: 99 }, (_, x) => 1 + (x + 1) / 10),
  ...Array.from({ length: 52 }, (_, x) => 12 + x),
]);

/** Human-readable description of DEFAULT_RDP_ORDERS, reported next to every epsilon. */
export const DEFAULT_RDP_ORDERS_DESCRIPTION = 'dp-accounting default: 1.1..10.9 step 0.1, 11..63, 128, 256, 512, 1024';

/**
 * How fractional orders are summed.
 * - `dp-accounting` (default; the charged figure): the two-sided series of [MTZ19] section 3.3 with |C(alpha, i)|, as
 *   [DPA] `_compute_log_a_frac` sums it: an upper bound on the integral, up to ~3% above it at orders near 1, equal at
 *   integer orders. An order whose series has not settled after 1000 terms is excluded (its RDP is +Infinity), as in
 *   [DPA].
 * - `exact-integral` (informational only): the signed series, or quadrature of the defining integral where that series
 *   is ill-conditioned; what Opacus' `compute_rdp` computes. Never used for pricing, enforcement or ledgers.
 */
export type FractionalOrderSeries = 'dp-accounting' | 'exact-integral';

/** The series every charged epsilon uses. */
export const CHARGED_FRACTIONAL_ORDER_SERIES: FractionalOrderSeries = 'dp-accounting';

// Above this, exact evaluation at an integer order (alpha + 1 terms) or a fractional order gets needlessly slow; no
// useful (epsilon, delta) comes from such orders for the sampled Gaussian.
const MAX_FINITE_ORDER = 1e6;

/** Validates an order grid and returns it as a plain array (the default grid when none is given). */
export function resolveOrders(orders: readonly number[] | undefined, parameter = 'orders'): readonly number[] {
  if (orders === undefined) return DEFAULT_RDP_ORDERS;
  if (!isList(orders) || orders.length === 0) {
    throw new PrivacyParameterError(
      PrivacyParameterErrorCode.InvalidOrder,
      parameter,
      `${parameter} must be a non-empty list of RDP orders`,
    );
  }
  for (const order of orders) {
    const ok = typeof order === 'number' && (order === Infinity || (order > 1 && order <= MAX_FINITE_ORDER));
    if (!ok) {
      throw new PrivacyParameterError(
        PrivacyParameterErrorCode.InvalidOrder,
        parameter,
        `every RDP order in ${parameter} must be > 1 and <= ${MAX_FINITE_ORDER} (or Infinity); got ${String(order)}`,
      );
    }
  }
  return orders;
}
