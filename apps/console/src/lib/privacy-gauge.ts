/**
 * How a privacy gauge reads (issue 19: "gauges turn red on success"). Spending the budget the stewards approved is
 * the plan working, not an alarm: a gauge is red only when the spend goes beyond what the plan allows, and reads
 * "complete" (neutral) once the planned budget is spent.
 *
 * - 'over': ε spent exceeds the study's target, or the planned ε of the whole study (the hub's calibration, ≤ the
 *   target), or more training rounds were charged than the plan has. The agents and the hub refuse work that would
 *   do this, so it means a report the hub could not prevent (a retried round, a misconfigured agent): look at it.
 * - 'complete': the planned ε (or the target, when the plan's own figure is unknown) is spent, within rounding.
 * - 'spending': below that; the bar shows the share of the target spent.
 * - 'none': the study uses no differential privacy; there is nothing to measure.
 */
export type GaugeState = 'spending' | 'complete' | 'over' | 'none';

export interface GaugeInput {
  /** ε spent so far at the study's δ (null: nothing charged or reported yet). */
  spent: number | null;
  /** The study's target ε (null: no differential privacy). */
  target: number | null;
  /** ε of the whole planned study (the hub's figure; ≤ target), when known. */
  planned?: number | null;
  /** Training rounds charged so far and the plan's number of rounds, when known. */
  trainingRounds?: number | null;
  plannedRounds?: number | null;
}

export interface GaugeReading {
  state: GaugeState;
  /** Share of the target spent, clamped to [0, 1] for drawing. */
  fraction: number;
  /** A short plain statement of the state. */
  label: string;
}

/** Relative slack for comparing ε figures computed by the same accountant in two places (floating point). */
const SLACK = 1e-6;

export function gaugeReading(input: GaugeInput): GaugeReading {
  const { spent, target } = input;
  if (target === null) return { state: 'none', fraction: 0, label: 'no differential privacy' };
  const eps = spent ?? 0;
  const fraction = target > 0 ? Math.min(1, Math.max(0, eps / target)) : 0;
  const planned = input.planned ?? null;
  const limit = planned !== null && planned <= target ? planned : target;
  if (eps > target * (1 + SLACK)) return { state: 'over', fraction, label: "over the study's target" };
  if (eps > limit * (1 + SLACK)) return { state: 'over', fraction, label: 'beyond the approved plan' };
  const rounds = input.trainingRounds ?? null;
  const plannedRounds = input.plannedRounds ?? null;
  if (rounds !== null && plannedRounds !== null && rounds > plannedRounds) {
    return { state: 'over', fraction, label: 'more rounds than the plan' };
  }
  if (eps >= limit * (1 - SLACK) && eps > 0) return { state: 'complete', fraction, label: 'planned budget spent' };
  return { state: 'spending', fraction, label: 'within the plan' };
}
