import { cleanup, render, screen } from '@testing-library/react';
import { StudyPlan, type PrivacySpend, type RoundView, type StudyView } from '@tessera/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultDraft, draftToPlan, withPrivacyMode } from '../lib/plan-draft.js';
import { PrivacyBudget } from './privacy-budget.js';

afterEach(cleanup);

const SILOS = [
  { siloId: '00000000-0000-4000-8000-000000000001', siloName: 'Cleveland' },
  { siloId: '00000000-0000-4000-8000-000000000002', siloName: 'Hungary' },
  { siloId: '00000000-0000-4000-8000-000000000003', siloName: 'Basel' },
];
const TARGET = 3;
const PLANNED = 2.95;
const ROUNDS = 10;

function dpStudy(): StudyView {
  const draft = withPrivacyMode(
    { ...defaultDraft('gauge-test-salt'), name: 'Gauges', purpose: 'The gauges of a privacy budget' },
    'dp-sgd',
  );
  const plan = StudyPlan.parse({ ...(draftToPlan(draft) as object), silos: SILOS.map((s) => s.siloId) });
  expect(plan.privacy.mode === 'dp-sgd' && plan.privacy.targetEpsilon).toBe(TARGET);
  expect(plan.training.rounds).toBe(ROUNDS);
  return {
    id: '10000000-0000-4000-8000-000000000000',
    name: 'Gauges',
    status: 'running',
    planVersion: 1,
    planHash: 'c'.repeat(64),
    plan,
    privacyCost: {
      mechanism: 'dp-sgd',
      unit: 'record',
      noiseMultiplier: 1.2,
      clipNorm: 1,
      samplingRate: 0.05,
      stepsPerRound: 100,
      rounds: ROUNDS,
      epsilon: PLANNED,
      targetEpsilon: TARGET,
      delta: 1e-5,
      accountant: 'rdp',
    },
    participants: SILOS.map((s) => s.siloId),
    currentModelHash: null,
    endReason: null,
    createdAt: '2026-11-22T09:00:00.000Z',
    startedAt: '2026-11-22T09:00:00.000Z',
    endedAt: null,
    decisions: SILOS.map((s) => ({
      ...s,
      decision: 'approve',
      planHash: 'c'.repeat(64),
      decidedAt: null,
      reason: null,
    })),
  };
}

function spend(epsilonCumulative: number, trainingRounds: number): PrivacySpend {
  return {
    mechanism: 'dp-sgd',
    unit: 'record',
    noiseMultiplier: 1.2,
    clipNorm: 1,
    samplingRate: 0.05,
    steps: 100,
    delta: 1e-5,
    trainingRounds,
    evaluationReleases: 0,
    epsilonRound: 0.3,
    epsilonCumulative,
    accountant: 'rdp',
  };
}

/** One closed round in which each silo reported the given spend. */
function round(reports: PrivacySpend[]): RoundView {
  return {
    number: ROUNDS,
    attempt: 1,
    kind: 'train',
    status: 'closed',
    modelHash: 'a'.repeat(64),
    resultModelHash: 'b'.repeat(64),
    openedAt: '2026-11-22T09:00:00.000Z',
    deadlineAt: '2026-11-22T09:01:00.000Z',
    closedAt: '2026-11-22T09:00:30.000Z',
    closeReason: null,
    summary: null,
    participants: SILOS.map((s, i) => ({
      ...s,
      status: 'uploaded',
      numExamples: null,
      updateSha256: null,
      evaluation: null,
      failure: null,
      privacy: reports[i] ?? null,
    })),
  };
}

const meterOf = (silo: string) => screen.getByRole('meter', { name: `Privacy budget spent by ${silo}` });

describe('the privacy gauges of a study', () => {
  it('reads the planned budget fully spent as complete, 90 % of the target as within the plan, and only excess as red', () => {
    render(
      <PrivacyBudget
        study={dpStudy()}
        rounds={[round([spend(PLANNED, ROUNDS), spend(0.9 * TARGET, 9), spend(3.4, ROUNDS + 1)])]}
      />,
    );
    // Cleveland spent exactly its planned ε after all ten rounds: success, not an alarm.
    expect(meterOf('Cleveland').className).toContain('gauge-complete');
    expect(meterOf('Cleveland').getAttribute('aria-valuetext')).toMatch(/planned budget spent$/);
    // Hungary at 90 % of the target (the old red threshold) is still inside the plan.
    expect(meterOf('Hungary').className).toContain('gauge-spending');
    expect(meterOf('Hungary').className).not.toContain('over');
    // Basel reports beyond the target: the one red gauge, with the reason written out.
    expect(meterOf('Basel').className).toContain('gauge-over');
    expect(screen.getByText("over the study's target").className).toContain('gauge-state-over');
    expect(document.querySelectorAll('.gauge-over')).toHaveLength(1);
  });

  it('turns red when a silo reports more training rounds than the plan, even within the target', () => {
    render(<PrivacyBudget study={dpStudy()} rounds={[round([spend(2, ROUNDS + 1), spend(1, 4), spend(1, 4)])]} />);
    expect(meterOf('Cleveland').className).toContain('gauge-over');
    expect(screen.getByText('more rounds than the plan')).toBeTruthy();
    expect(meterOf('Hungary').className).toContain('gauge-spending');
  });
});
