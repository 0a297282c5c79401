import { screenStatistics } from '@tessera/aggregation';
import { canonicalJson } from '@tessera/canonical';
import { describe, expect, it } from 'vitest';
import { flaggedUpdates, screeningView } from './round-screening.util';

const honest = (norm: number) => ({ norm, cosineToAggregate: 0.9, cosineToPrevious: 0.5 });

describe('a round’s screening as the hub records it', () => {
  it('keys every update by its silo and writes one audit record per flagged update, with its reasons', () => {
    const report = screenStatistics([honest(1), honest(1.02), honest(0.98), honest(10.1)], { exclude: true });
    const view = screeningView(report, ['a', 'b', 'c', 'd']);
    expect(view.updates.map((u) => [u.siloId, u.flags.length, u.excluded])).toEqual([
      ['a', 0, false],
      ['b', 0, false],
      ['c', 0, false],
      ['d', 1, true],
    ]);
    const records = flaggedUpdates(view, { number: 3, attempt: 2 });
    expect(records).toHaveLength(1);
    expect(records[0]!.siloId).toBe('d');
    expect(records[0]!.details).toMatchObject({ round: 3, attempt: 2, excluded: true, threshold: 3.5 });
    expect(records[0]!.details.reason).toMatch(
      /^L2 norm 10\.1 is [\d.]+ robust deviations above the round's median 1\.01 .*; left out of the round's aggregate \(screening\.exclude\)$/,
    );
  });

  it('records an infinite score as null, so the audit record is canonical JSON', () => {
    // Every cosine but one equals the median and the floor is 0: that one is infinitely many deviations away.
    const statistics = [1, 1, 1, 1].map((norm, k) => ({
      norm,
      cosineToAggregate: k === 3 ? 0.2 : 0.9,
      cosineToPrevious: null,
    }));
    const view = screeningView(screenStatistics(statistics, { cosineScaleFloor: 0 }), ['a', 'b', 'c', 'd']);
    const flag = view.updates[3]!.flags[0]!;
    expect(flag.score).toBeNull();
    expect(flag.reason).toContain('infinitely many robust deviations');
    expect(() => canonicalJson(flaggedUpdates(view, { number: 1, attempt: 1 })[0]!.details)).not.toThrow();
    expect(flaggedUpdates(view, { number: 1, attempt: 1 })[0]!.details.reason).toMatch(/; kept in the aggregate$/);
  });

  it('refuses a report that does not match the silos', () => {
    expect(() => screeningView(screenStatistics([honest(1)]), ['a', 'b'])).toThrow(/1 updates for 2 silos/);
  });
});
