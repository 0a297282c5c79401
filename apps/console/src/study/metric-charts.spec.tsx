import { cleanup, render, screen, within } from '@testing-library/react';
import type { EvaluationMetrics, ReleasePlan, RoundView } from '@tessera/protocol';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MetricCharts } from './metric-charts.js';

afterEach(cleanup);

beforeAll(() => {
  // jsdom has no layout, hence no ResizeObserver; the charts' container only needs one to exist.
  globalThis.ResizeObserver ??= class {
    observe(): void {}
    unobserve(): void {}
    disconnect(): void {}
  };
});

const SILOS = [
  { siloId: '00000000-0000-4000-8000-000000000001', siloName: 'Cleveland' },
  { siloId: '00000000-0000-4000-8000-000000000002', siloName: 'Hungary' },
];

/** A closed round in which each silo reported the given evaluation (null: none). */
function round(number: number, kind: RoundView['kind'], evaluations: (EvaluationMetrics | null)[]): RoundView {
  return {
    number,
    attempt: 1,
    kind,
    status: 'closed',
    modelHash: 'a'.repeat(64),
    resultModelHash: kind === 'train' ? 'b'.repeat(64) : null,
    openedAt: '2026-11-22T09:00:00.000Z',
    deadlineAt: '2026-11-22T09:01:00.000Z',
    closedAt: '2026-11-22T09:00:30.000Z',
    closeReason: null,
    summary: null,
    participants: SILOS.map((s, i) => ({
      ...s,
      status: 'evaluated',
      numExamples: null,
      updateSha256: null,
      evaluation: evaluations[i] ?? null,
      failure: null,
    })),
  };
}

const exact = (accuracy: number, loss: number | null = 0.5): EvaluationMetrics => ({
  loss,
  accuracy,
  auc: 0.8,
  n: 100,
  positives: 40,
});
const noisy = (accuracy: number): EvaluationMetrics => ({ ...exact(accuracy, null), noisy: true });

const NOISY_FINAL: ReleasePlan = {
  evaluation: { mode: 'noisy', rounds: 'final', scoreBins: 4 },
  trainingExamples: 'none',
};
const EXACT_EVERY: ReleasePlan = { evaluation: { mode: 'exact', rounds: 'every' }, trainingExamples: 'exact' };

function chart(metric: string): HTMLElement | null {
  return document.querySelector(`figure[data-metric="${metric}"]`);
}

describe('metric charts', () => {
  it('show DP estimates as such, with no loss chart, for a noisy evaluation', () => {
    render(
      <MetricCharts
        release={NOISY_FINAL}
        rounds={[round(1, 'train', [null, null]), round(2, 'evaluate', [noisy(0.75), noisy(0.7)])]}
      />,
    );
    expect(chart('loss')).toBeNull();
    const accuracy = chart('accuracy') as HTMLElement;
    expect(within(accuracy).getByText('DP estimate', { selector: '.badge' })).toBeTruthy();
    expect(within(accuracy).getByRole('rowheader', { name: 'final (DP estimate)' })).toBeTruthy();
    expect(within(accuracy).getByText('0.725')).toBeTruthy();
    expect(screen.getByText(/estimated from noisy score histograms \(4 bins per true label\)/)).toBeTruthy();
  });

  it('draw the loss of exact evaluations, unmarked, and say so when no evaluation carries a loss', () => {
    const { unmount } = render(
      <MetricCharts release={EXACT_EVERY} rounds={[round(1, 'train', [exact(0.6, 0.7), exact(0.8, 0.5)])]} />,
    );
    const loss = chart('loss') as HTMLElement;
    expect(within(loss).getByRole('rowheader', { name: '1' })).toBeTruthy();
    expect(within(loss).getByText('0.600')).toBeTruthy();
    expect(screen.queryByText('DP estimate')).toBeNull();
    unmount();

    render(<MetricCharts release={EXACT_EVERY} rounds={[round(1, 'train', [exact(0.6, null), null])]} />);
    expect(within(chart('loss') as HTMLElement).getByText(/No loss in the evaluations reported/)).toBeTruthy();
    expect(within(chart('accuracy') as HTMLElement).getByRole('rowheader', { name: '1' })).toBeTruthy();
  });

  it('say that nothing is released when the plan releases no evaluation', () => {
    render(<MetricCharts release={{ evaluation: { mode: 'none' }, trainingExamples: 'none' }} rounds={[]} />);
    expect(screen.getByText('No evaluation is released')).toBeTruthy();
    expect(document.querySelectorAll('figure')).toHaveLength(0);
  });
});
