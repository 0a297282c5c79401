import type { ScreeningFlag, ScreeningReport } from '@tessera/aggregation';
import type { RoundScreeningView, ScreeningFlagView } from '@tessera/protocol';

/*
 * A round's screening report (@tessera/aggregation, indexed like the round's inputs) as the hub records it: keyed by
 * silo, in the round's summary and in one `round.update.flagged` audit record per flagged update. Audit details are
 * canonical JSON, which has no Infinity: an infinite score (every other update had exactly the median) is null, and
 * its reason says "infinitely many robust deviations".
 */

function flagView(flag: ScreeningFlag): ScreeningFlagView {
  return {
    statistic: flag.statistic,
    value: flag.value,
    median: flag.median,
    scale: flag.scale,
    score: Number.isFinite(flag.score) ? flag.score : null,
    reason: flag.reason,
  };
}

/** The report keyed by silo: `siloIds[k]` sent input k. */
export function screeningView(report: ScreeningReport, siloIds: readonly string[]): RoundScreeningView {
  if (report.updates.length !== siloIds.length) {
    throw new Error(`a screening report of ${report.updates.length} updates for ${siloIds.length} silos`);
  }
  return {
    rule: { ...report.rule },
    summaries: report.summaries.map((s) => ({
      statistic: s.statistic,
      median: s.median,
      scaledMad: s.scaledMad,
      scale: s.scale,
    })),
    updates: report.updates.map((u, k) => ({
      siloId: siloIds[k]!,
      norm: u.norm,
      cosineToAggregate: u.cosineToAggregate,
      cosineToPrevious: u.cosineToPrevious,
      flags: u.flags.map(flagView),
      excluded: u.excluded,
    })),
  };
}

/** A `round.update.flagged` audit record of one silo: why it was flagged, and whether it was left out. */
export interface FlaggedUpdate {
  siloId: string;
  details: {
    round: number;
    attempt: number;
    excluded: boolean;
    threshold: number;
    flags: ScreeningFlagView[];
    /** The flags' reasons in one sentence, for people reading the trail. */
    reason: string;
  };
}

/** One record per flagged update of the round (none when nothing was flagged). */
export function flaggedUpdates(view: RoundScreeningView, round: { number: number; attempt: number }): FlaggedUpdate[] {
  return view.updates
    .filter((u) => u.flags.length > 0)
    .map((u) => ({
      siloId: u.siloId,
      details: {
        round: round.number,
        attempt: round.attempt,
        excluded: u.excluded,
        threshold: view.rule.threshold,
        flags: u.flags,
        reason:
          u.flags.map((f) => f.reason).join('; ') +
          (u.excluded ? "; left out of the round's aggregate (screening.exclude)" : '; kept in the aggregate'),
      },
    }));
}
