import { cleanup, render, screen, within } from '@testing-library/react';
import type { RoundScreeningView, RoundView, StudyPlan } from '@tessera/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultDraft, draftToPlan } from '../lib/plan-draft.js';
import { UpdateScreening } from './update-screening.js';

afterEach(cleanup);

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const C = '00000000-0000-4000-8000-00000000000c';
const NAMES = new Map([
  [A, 'Cleveland'],
  [B, 'Rogue'],
  [C, 'Zurich'],
]);

const RULE: RoundScreeningView['rule'] = {
  method: 'median-absolute-deviation',
  threshold: 3.5,
  normScaleFloor: 0.05,
  cosineScaleFloor: 0.05,
  exclude: true,
  applied: true,
};

const NORM_REASON =
  "L2 norm 22.58 is 181.1 robust deviations above the round's median 2.245 (scale 0.1123, threshold 3.5)";

function update(siloId: string, flagged: boolean): RoundScreeningView['updates'][number] {
  return {
    siloId,
    norm: flagged ? 22.58 : 2.245,
    cosineToAggregate: 0.9,
    cosineToPrevious: null,
    flags: flagged
      ? [{ statistic: 'norm', value: 22.58, median: 2.245, scale: 0.1123, score: 181.1, reason: NORM_REASON }]
      : [],
    excluded: flagged,
  };
}

function round(number: number, screening: RoundScreeningView | undefined): RoundView {
  return {
    number,
    attempt: 1,
    kind: 'train',
    status: 'closed',
    modelHash: 'a'.repeat(64),
    resultModelHash: 'b'.repeat(64),
    openedAt: '2026-11-22T09:00:00.000Z',
    deadlineAt: '2026-11-22T09:01:00.000Z',
    closedAt: '2026-11-22T09:00:30.000Z',
    closeReason: null,
    summary: {
      reported: 3,
      participants: 3,
      totalExamples: null,
      evaluation: {
        accuracy: { unweighted: null, weighted: null },
        loss: { unweighted: null, weighted: null },
        auc: { unweighted: null },
      },
      ...(screening ? { screening } : {}),
    },
    participants: [],
  };
}

function plan(screening: StudyPlan['screening']): StudyPlan {
  const d = defaultDraft('test-salt-0001');
  const p = draftToPlan(d) as StudyPlan;
  return screening ? { ...p, screening } : p;
}

const grid = () => screen.getByRole('table', { name: 'Screening per silo and round' });

describe('update screening per silo and round', () => {
  it('marks each silo in each screened round, and lists every flag with its reason and what was done', () => {
    const rounds = [
      round(1, { rule: RULE, summaries: [], updates: [update(A, false), update(B, true), update(C, false)] }),
      round(2, { rule: RULE, summaries: [], updates: [update(A, false), update(B, false), update(C, false)] }),
    ];
    render(<UpdateScreening plan={plan({ threshold: 3.5, exclude: true })} rounds={rounds} siloNames={NAMES} />);
    const rows = within(grid()).getAllByRole('row');
    expect(rows.map((r) => r.textContent)).toEqual([
      'SiloRound 1Round 2',
      'Clevelandokok',
      'Rogueexcludedok',
      'Zurichokok',
    ]);
    expect(within(rows[2]!).getByText('excluded').getAttribute('title')).toBe(NORM_REASON);
    const flagged = screen.getByRole('table', { name: 'Flagged updates' });
    const row = within(flagged).getAllByRole('row')[1]!;
    expect(row.getAttribute('data-flagged')).toBe('Rogue');
    expect(row.textContent).toContain(NORM_REASON);
    expect(row.textContent).toContain('Left out of the aggregate.');
    expect(screen.getByText(/1 of 6 updates flagged in 2 screened rounds/)).toBeTruthy();
  });

  it('says when nothing was flagged, and when a round could not be aggregated after exclusion', () => {
    const notAggregated =
      'screening left out 2 of 4 updates; the 2 left are fewer than participation.minSilosPerRound = 3, so the round was not aggregated';
    const rounds = [
      round(1, { rule: RULE, summaries: [], updates: [update(A, false), update(C, false)] }),
      round(2, { rule: RULE, summaries: [], updates: [update(A, false)], notAggregated }),
    ];
    render(<UpdateScreening plan={plan({ threshold: 3.5, exclude: true })} rounds={rounds} siloNames={NAMES} />);
    expect(screen.getByText(/No update flagged in 2 screened rounds/)).toBeTruthy();
    expect(screen.queryByRole('table', { name: 'Flagged updates' })).toBeNull();
    expect(screen.getByText(`Round 2: ${notAggregated}.`)).toBeTruthy();
    expect(within(grid()).getAllByRole('row')[2]!.textContent).toBe('Zurichoknot in round');
  });

  it('says so when the plan does not screen, and before the first screened round', () => {
    const { rerender } = render(<UpdateScreening plan={plan(undefined)} rounds={[]} siloNames={NAMES} />);
    expect(screen.getByText('This plan does not screen the updates.')).toBeTruthy();
    rerender(
      <UpdateScreening
        plan={plan({ threshold: 4, exclude: false })}
        rounds={[round(1, undefined)]}
        siloNames={NAMES}
      />,
    );
    expect(screen.getByText('No round screened yet')).toBeTruthy();
  });
});
