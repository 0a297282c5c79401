import type { StudyPlan } from '@tessera/protocol';
import { numberOf, textOf, type AggregationDraft, type SecureAggregationDraft } from './plan-draft-fields.js';

// The draft's aggregation, screening and secure-aggregation sections, to the plan and back.

/**
 * The plan's `aggregation` and `screening`, each only when chosen: FedAvg without a bound and no screening is the
 * plan without either key, exactly as a plan made before the options (same bytes, same hash).
 */
export function aggregationToPlan(a: AggregationDraft): Record<string, unknown> {
  const optional = (key: string, text: string) => (text.trim() === '' ? {} : { [key]: numberOf(text) });
  const aggregator =
    a.kind === 'trimmed-mean'
      ? { kind: a.kind, trimFraction: numberOf(a.trimFraction) }
      : a.kind === 'krum'
        ? { kind: a.kind, byzantine: numberOf(a.byzantine), ...optional('selected', a.selected) }
        : a.kind === 'geometric-median'
          ? { kind: a.kind, ...optional('tolerance', a.tolerance), ...optional('maxIterations', a.maxIterations) }
          : { kind: a.kind };
  const normBound =
    a.normBound === 'fixed'
      ? { mode: 'fixed', maxNorm: numberOf(a.maxNorm) }
      : a.normBound === 'median-multiple'
        ? { mode: 'median-multiple', multiplier: numberOf(a.multiplier) }
        : null;
  const out: Record<string, unknown> = {};
  if (a.kind !== 'fedavg' || normBound) out.aggregation = { aggregator, ...(normBound ? { normBound } : {}) };
  if (a.screening) out.screening = { threshold: numberOf(a.threshold), exclude: a.exclude };
  return out;
}

/** What the aggregation draft holds before anything is chosen: FedAvg, no bound, no screening. */
export const DEFAULT_AGGREGATION: AggregationDraft = {
  kind: 'fedavg',
  trimFraction: '0.1',
  byzantine: '1',
  selected: '',
  tolerance: '',
  maxIterations: '',
  normBound: 'none',
  maxNorm: '1',
  multiplier: '3',
  screening: false,
  threshold: '3.5',
  exclude: false,
};

/** A plan's aggregation and screening as the wizard's draft. */
export function aggregationToDraft(plan: Pick<StudyPlan, 'aggregation' | 'screening'>): AggregationDraft {
  const a = plan.aggregation?.aggregator;
  const bound = plan.aggregation?.normBound;
  const s = plan.screening;
  return {
    ...DEFAULT_AGGREGATION,
    kind: a?.kind ?? 'fedavg',
    ...(a?.kind === 'trimmed-mean' ? { trimFraction: String(a.trimFraction) } : {}),
    ...(a?.kind === 'krum' ? { byzantine: String(a.byzantine), selected: textOf(a.selected) } : {}),
    ...(a?.kind === 'geometric-median'
      ? { tolerance: textOf(a.tolerance), maxIterations: textOf(a.maxIterations) }
      : {}),
    normBound: bound?.mode ?? 'none',
    ...(bound?.mode === 'fixed' ? { maxNorm: String(bound.maxNorm) } : {}),
    ...(bound?.mode === 'median-multiple' ? { multiplier: String(bound.multiplier) } : {}),
    screening: s !== undefined,
    ...(s ? { threshold: String(s.threshold), exclude: s.exclude } : {}),
  };
}

/** The plan's `secureAggregation` only when opted in (off: the plan as before the option, same bytes, same hash). */
export function secureAggregationToPlan(sa: SecureAggregationDraft): Record<string, unknown> {
  if (!sa.enabled) return {};
  return {
    secureAggregation: {
      threshold: numberOf(sa.threshold),
      ...(sa.neighbourCount.trim() === '' ? {} : { neighbourCount: numberOf(sa.neighbourCount) }),
      modulusBits: numberOf(sa.modulusBits),
      clipNorm: numberOf(sa.clipNorm),
    },
  };
}

/** Secure aggregation before it is chosen: off; once on, the complete graph, 32-bit sums, clip norm 1. */
export const DEFAULT_SECURE_AGGREGATION: SecureAggregationDraft = {
  enabled: false,
  threshold: '',
  neighbourCount: '',
  modulusBits: '32',
  clipNorm: '1',
};

/**
 * The threshold to propose for k neighbours per silo: ⌊k/2⌋ + 1, at least 2. It is recommendedThreshold(k) of
 * @tessera/secagg without colluding neighbours (a hub that lies about who dropped cannot rebuild both secrets of a
 * silo), restated because that library runs on node:crypto and is not part of the console's bundle.
 */
export function proposedSecureAggregationThreshold(neighbourCount: number): number {
  return Math.max(2, Math.floor(neighbourCount / 2) + 1);
}

export function secureAggregationToDraft(plan: Pick<StudyPlan, 'secureAggregation'>): SecureAggregationDraft {
  const sa = plan.secureAggregation;
  if (!sa) return { ...DEFAULT_SECURE_AGGREGATION };
  return {
    enabled: true,
    threshold: String(sa.threshold),
    neighbourCount: textOf(sa.neighbourCount),
    modulusBits: String(sa.modulusBits),
    clipNorm: String(sa.clipNorm),
  };
}
