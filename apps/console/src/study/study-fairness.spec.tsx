import { cleanup, render, screen, within } from '@testing-library/react';
import type { EvaluationMetrics, RoundParticipantView, RoundView, StudyPlan } from '@tessera/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultDraft, draftToPlan } from '../lib/plan-draft.js';
import { StudyFairness } from './study-fairness.js';

afterEach(cleanup);

const metrics = (accuracy: number, noisy = false): EvaluationMetrics => ({
  loss: noisy ? null : 0.5,
  accuracy,
  auc: 0.8,
  n: 40,
  positives: 20,
  ...(noisy ? { noisy: true } : {}),
});

function participant(
  name: string,
  global: number,
  personalized?: number,
  localBaseline?: number,
  noisy = false,
): RoundParticipantView {
  return {
    siloId: `00000000-0000-4000-8000-0000000000${name.length.toString().padStart(2, '0')}`,
    siloName: name,
    status: 'evaluated',
    numExamples: null,
    updateSha256: null,
    evaluation: metrics(global, noisy),
    failure: null,
    ...(personalized === undefined
      ? {}
      : {
          personalization: {
            personalized: metrics(personalized, noisy),
            localBaseline: localBaseline === undefined ? null : metrics(localBaseline, noisy),
          },
        }),
  };
}

function evaluationRound(participants: RoundParticipantView[], status: RoundView['status'] = 'closed'): RoundView {
  return {
    number: 4,
    attempt: 1,
    kind: 'evaluate',
    status,
    modelHash: 'a'.repeat(64),
    resultModelHash: null,
    openedAt: '2026-11-22T09:00:00.000Z',
    deadlineAt: '2026-11-22T09:01:00.000Z',
    closedAt: status === 'closed' ? '2026-11-22T09:00:30.000Z' : null,
    closeReason: null,
    summary: null,
    participants,
  };
}

function plan(personalization?: StudyPlan['personalization']): StudyPlan {
  const p = draftToPlan(defaultDraft('test-salt-0001')) as StudyPlan;
  return {
    ...p,
    release: { evaluation: { mode: 'exact', rounds: 'final' }, trainingExamples: 'none' },
    ...(personalization ? { personalization } : {}),
  };
}

describe('the fairness view of a study', () => {
  it('shows worst, best and gap, each silo’s personalized figure and its change from its local-only model', () => {
    const rounds = [
      evaluationRound([
        participant('Zurich', 0.63, 0.88, 0.9),
        participant('Cleveland', 0.79, 0.8, 0.72),
        participant('Hungary', 0.81, 0.79, 0.83),
      ]),
    ];
    render(<StudyFairness plan={plan({ method: 'fine-tune', epochs: 5, localBaseline: true })} rounds={rounds} />);
    expect(screen.getByText('Zurich: 0.630')).toBeTruthy();
    expect(screen.getByText('Hungary: 0.810')).toBeTruthy();
    expect(screen.getByText('+18.0 points')).toBeTruthy();
    expect(screen.getByText('global 0.630 → personalized 0.790')).toBeTruthy();
    const rows = within(screen.getByRole('table')).getAllByRole('row');
    expect(rows.map((r) => r.textContent)).toEqual([
      'SiloGlobal modelPersonalizedGain (points)Local onlyGlobal vs local only (points)',
      'Cleveland0.7900.800+1.00.720+7.0',
      'Hungary0.8100.790−2.00.830−2.0',
      'Zurich0.6300.880+25.00.900−27.0',
    ]);
    expect(screen.getByText(/fine-tunes the final model .* for 5 epoch\(s\)/)).toBeTruthy();
  });

  it('says that a selecting plan chooses each silo’s model by cross-validation on its training records', () => {
    const rounds = [evaluationRound([participant('VA', 0.7, 0.8, 0.75)])];
    render(<StudyFairness plan={plan({ method: 'select', epochs: 5, localBaseline: true })} rounds={rounds} />);
    expect(
      screen.getByText(/chooses its personalized model .* by cross-validation on its own training records/),
    ).toBeTruthy();
    expect(screen.queryByText(/fine-tunes the final model/)).toBeNull();
    const rows = within(screen.getByRole('table')).getAllByRole('row');
    expect(rows.at(-1)?.textContent).toBe('VA0.7000.800+10.00.750−5.0');
  });

  it('compares the silos under the global model alone when the plan does not personalize, marking DP estimates', () => {
    const rounds = [
      evaluationRound([
        participant('Zurich', 0.6, undefined, undefined, true),
        participant('VA', 0.7, undefined, undefined, true),
      ]),
    ];
    render(<StudyFairness plan={plan()} rounds={rounds} />);
    expect(screen.getByText(/This plan does not personalize/)).toBeTruthy();
    expect(screen.getByText(/estimates from differentially private releases/)).toBeTruthy();
    const rows = within(screen.getByRole('table')).getAllByRole('row');
    expect(rows.map((r) => r.textContent)).toEqual(['SiloGlobal model', 'VA≈ 0.700', 'Zurich≈ 0.600']);
  });

  it('waits for the final evaluation to close', () => {
    render(<StudyFairness plan={plan()} rounds={[evaluationRound([participant('VA', 0.7)], 'open')]} />);
    expect(screen.getByText('No final evaluation yet')).toBeTruthy();
    expect(screen.queryByRole('table')).toBeNull();
  });
});
