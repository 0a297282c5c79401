import type { EvaluationMetrics, RoundView, StudyView } from '@tessera/protocol';

// Turns the hub's rounds into what the live view draws: the current round, metric series per round (mean and per
// silo), the privacy budget each silo spent, and the model versions. Pure functions over RoundView[].

export type MetricName = 'loss' | 'accuracy' | 'auc';

/** The latest attempt of each round number, in round order. */
export function latestAttempts(rounds: readonly RoundView[]): RoundView[] {
  const byNumber = new Map<number, RoundView>();
  for (const r of rounds) {
    const seen = byNumber.get(r.number);
    if (!seen || r.attempt > seen.attempt) byNumber.set(r.number, r);
  }
  return [...byNumber.values()].sort((a, b) => a.number - b.number);
}

/** Whether a round attempt is still under way: open for reports, or being aggregated ('closing'). */
export function roundInProgress(round: Pick<RoundView, 'status'>): boolean {
  return round.status === 'open' || round.status === 'closing';
}

/** The round in progress, or the last one. */
export function currentRound(rounds: readonly RoundView[]): RoundView | null {
  const latest = latestAttempts(rounds);
  return latest.find(roundInProgress) ?? latest[latest.length - 1] ?? null;
}

export interface SiloRef {
  id: string;
  name: string;
}

/** Every silo that appears in any round, in order of first appearance. */
export function silosOfRounds(rounds: readonly RoundView[]): SiloRef[] {
  const seen = new Map<string, string>();
  for (const r of rounds) for (const p of r.participants) if (!seen.has(p.siloId)) seen.set(p.siloId, p.siloName);
  return [...seen].map(([id, name]) => ({ id, name }));
}

export interface MetricRow {
  /** Round number (x axis). */
  round: number;
  /** "3", or "final" for the evaluation of the last model. */
  label: string;
  /** Unweighted mean across silos (the hub's summary when the round closed; else the reports so far). */
  mean: number | null;
  /** Some of the round's figures are DP estimates (from noisy score histograms), not exact metrics. */
  noisy: boolean;
  /** Per silo id: that silo's evaluation. */
  [siloId: string]: number | string | boolean | null;
}

/** A metric of one evaluation; null when absent (a DP estimate has no loss). */
function metricOf(e: EvaluationMetrics | null, metric: MetricName): number | null {
  if (!e) return null;
  const v = e[metric];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/**
 * One row per round with evaluations. A round's evaluations measure the model the round STARTED from (the previous
 * round's result), at each silo on its own held-out split; the final evaluation round measures the last model.
 */
export function metricSeries(rounds: readonly RoundView[], metric: MetricName): MetricRow[] {
  const rows: MetricRow[] = [];
  const silos = silosOfRounds(rounds);
  for (const r of latestAttempts(rounds)) {
    const values = r.participants.map((p) => [p.siloId, metricOf(p.evaluation, metric)] as const);
    const reported = values.map(([, v]) => v).filter((v): v is number => v !== null);
    if (reported.length === 0) continue;
    const summary = r.summary?.evaluation;
    const fromSummary = summary ? (metric === 'auc' ? summary.auc.unweighted : summary[metric].unweighted) : null;
    const mean = fromSummary ?? reported.reduce((a, b) => a + b, 0) / reported.length;
    const noisy = r.participants.some((p) => p.evaluation?.noisy === true && metricOf(p.evaluation, metric) !== null);
    const row: MetricRow = {
      round: r.number,
      label: r.kind === 'evaluate' ? 'final' : String(r.number),
      mean,
      noisy,
    };
    // Every silo has a value or null in every row: a silo that missed the round (late, failed, dropped) is a gap in
    // its line, never a line drawn straight through the round.
    for (const s of silos) row[s.id] = null;
    for (const [siloId, v] of values) row[siloId] = v;
    rows.push(row);
  }
  return rows;
}

/** Whether any silo reported an evaluation in these rounds (whatever its figures). */
export function hasEvaluations(rounds: readonly RoundView[]): boolean {
  return rounds.some((r) => r.participants.some((p) => p.evaluation !== null));
}

export interface SiloBudget {
  siloId: string;
  siloName: string;
  /** ε spent so far (the latest cumulative figure the silo reported), null when it reported none. */
  spent: number | null;
  /** The study's target ε, null for plans without DP. */
  target: number | null;
  delta: number | null;
}

/** Per participating silo: the privacy budget spent against the plan's target. */
export function privacyBudgets(study: StudyView, rounds: readonly RoundView[]): SiloBudget[] {
  const p = study.plan.privacy;
  const target = p.mode === 'none' ? null : p.targetEpsilon;
  const delta = p.mode === 'none' ? null : p.delta;
  const names = new Map(study.decisions.map((d) => [d.siloId, d.siloName]));
  for (const s of silosOfRounds(rounds)) names.set(s.id, s.name);
  const ids = study.participants.length > 0 ? study.participants : study.plan.silos;
  return ids.map((siloId) => {
    let spent: number | null = null;
    for (const r of rounds) {
      for (const part of r.participants) {
        const e = part.siloId === siloId ? part.privacy?.epsilonCumulative : undefined;
        if (typeof e === 'number' && (spent === null || e > spent)) spent = e;
      }
    }
    return { siloId, siloName: names.get(siloId) ?? siloId, spent, target, delta };
  });
}

export interface ModelVersion {
  /** 0 = the initial model; n = the result of round n. */
  version: number;
  hash: string;
  /** The round that produced it (null for the initial model). */
  round: number | null;
  at: string | null;
}

/** The global model's versions: the initial model, then each closed training round's result. */
export function modelVersions(rounds: readonly RoundView[]): ModelVersion[] {
  const latest = latestAttempts(rounds);
  const out: ModelVersion[] = [];
  const first = latest[0];
  if (first) out.push({ version: 0, hash: first.modelHash, round: null, at: first.openedAt });
  for (const r of latest) {
    if (r.kind === 'train' && r.resultModelHash) {
      out.push({ version: r.number, hash: r.resultModelHash, round: r.number, at: r.closedAt });
    }
  }
  return out;
}
