import type { EvaluationMetrics } from './rounds';

/** One silo's figures at a study's final evaluation, as the fairness view reads them. */
export interface SiloFinalMetrics {
  siloId: string;
  siloName: string;
  /** The final global model on the silo's test split; null when the silo reported none. */
  global: EvaluationMetrics | null;
  /** The silo's personalized model (plan.personalization); null without. */
  personalized: EvaluationMetrics | null;
  /** The silo's local-only baseline (plan.personalization.localBaseline); null without. */
  localBaseline: EvaluationMetrics | null;
}

export interface FairnessSilo {
  siloId: string;
  siloName: string;
  global: number | null;
  personalized: number | null;
  localBaseline: number | null;
  /** Personalized − global; null when either is missing. */
  personalizationGain: number | null;
  /** Global − local-only baseline: what taking part bought this silo; null without a baseline. */
  changeFromBaseline: number | null;
  /** Personalized − local-only baseline; null when either is missing. */
  personalizedChangeFromBaseline: number | null;
}

/**
 * The fairness view of a study's final evaluation (docs/personalization.md): per silo the global model's metric, the
 * personalized model's and the change from the local-only baseline; across silos the worst and best silo under the
 * global model and their gap, and the worst and mean under each model. Higher is better for every metric chosen.
 */
export interface FairnessView {
  /** 'accuracy' for classification, 'r2' for regression. */
  metric: 'accuracy' | 'r2';
  /** True when a figure comes from a noisy (DP) release: an estimate. */
  noisy: boolean;
  silos: FairnessSilo[];
  worst: { siloId: string; siloName: string; value: number } | null;
  best: { siloId: string; siloName: string; value: number } | null;
  /** best − worst under the global model. */
  gap: number | null;
  /** Per model: the worst silo's figure and the mean over silos (null when no silo reported that model). */
  summary: Record<'global' | 'personalized' | 'localBaseline', { worst: number; mean: number } | null>;
}

function valueOf(m: EvaluationMetrics | null, metric: FairnessView['metric']): number | null {
  if (m === null) return null;
  return metric === 'accuracy' ? m.accuracy : (m.r2 ?? null);
}

function difference(a: number | null, b: number | null): number | null {
  return a === null || b === null ? null : a - b;
}

function summaryOf(values: (number | null)[]): { worst: number; mean: number } | null {
  const present = values.filter((v): v is number => v !== null);
  if (present.length === 0) return null;
  return { worst: Math.min(...present), mean: present.reduce((a, b) => a + b, 0) / present.length };
}

/** The fairness view of silos' final figures (silos without any figure are listed with nulls). */
export function fairnessView(silos: SiloFinalMetrics[]): FairnessView {
  const regression = silos.some((s) => s.global?.task === 'regression');
  const metric: FairnessView['metric'] = regression ? 'r2' : 'accuracy';
  const rows: FairnessSilo[] = silos.map((s) => {
    const global = valueOf(s.global, metric);
    const personalized = valueOf(s.personalized, metric);
    const localBaseline = valueOf(s.localBaseline, metric);
    return {
      siloId: s.siloId,
      siloName: s.siloName,
      global,
      personalized,
      localBaseline,
      personalizationGain: difference(personalized, global),
      changeFromBaseline: difference(global, localBaseline),
      personalizedChangeFromBaseline: difference(personalized, localBaseline),
    };
  });
  let worst: FairnessView['worst'] = null;
  let best: FairnessView['best'] = null;
  for (const r of rows) {
    if (r.global === null) continue;
    if (worst === null || r.global < worst.value) worst = { siloId: r.siloId, siloName: r.siloName, value: r.global };
    if (best === null || r.global > best.value) best = { siloId: r.siloId, siloName: r.siloName, value: r.global };
  }
  return {
    metric,
    noisy: silos.some((s) => [s.global, s.personalized, s.localBaseline].some((m) => m?.noisy === true)),
    silos: rows,
    worst,
    best,
    gap: worst && best ? best.value - worst.value : null,
    summary: {
      global: summaryOf(rows.map((r) => r.global)),
      personalized: summaryOf(rows.map((r) => r.personalized)),
      localBaseline: summaryOf(rows.map((r) => r.localBaseline)),
    },
  };
}
