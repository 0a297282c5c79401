import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { describePlan, type SiloView, type StudyPlan } from '@tessera/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultDraft, draftToPlan, planToDraft, withPrivacyMode, type PlanDraft } from '../../lib/plan-draft.js';
import { StudyWizard } from '../study-wizard.js';
import { WIZARD_STEPS } from './wizard-steps.js';

afterEach(cleanup);

const SILOS: SiloView[] = [1, 2, 3, 4].map((n) => ({
  id: `00000000-0000-4000-8000-00000000000${n}`,
  name: `Hospital ${n}`,
  contact: 'it@example.org',
  status: 'enrolled',
  suspendedReason: null,
  lastSeenAt: null,
  createdAt: '2026-11-22T09:00:00.000Z',
  certificate: null,
  enrollmentPending: null,
}));

/** A valid draft inviting every silo, each needed in every round. */
function draftOf(): PlanDraft {
  const d = defaultDraft('test-salt-0001');
  d.name = 'Cardiac risk';
  d.purpose = 'Predict coronary artery disease from routine findings.';
  d.silos = SILOS.map((s) => s.id);
  d.participation.minSilosPerRound = String(SILOS.length);
  return d;
}

const heading = () => screen.getByRole('heading', { level: 2 }).textContent ?? '';
const index = WIZARD_STEPS.findIndex((s) => s.id === 'aggregation') + 1;

function describedBy(el: Element): string {
  const ids = (el.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean);
  return ids.map((id) => document.getElementById(id)?.textContent ?? '').join(' ');
}

function openStep(draft: PlanDraft): void {
  render(<StudyWizard initialDraft={draft} silos={SILOS} submitLabel="Create" onSubmit={() => Promise.resolve()} />);
  fireEvent.click(screen.getByRole('button', { name: /^\d?\s*Aggregation/ }));
  expect(heading()).toBe(`${index}. Aggregation`);
}

describe('study wizard: the aggregation step', () => {
  it('leaves a plan without a choice exactly as before the options (no aggregation or screening key)', () => {
    const plan = draftToPlan(draftOf()) as Record<string, unknown>;
    expect(Object.keys(plan)).not.toContain('aggregation');
    expect(Object.keys(plan)).not.toContain('screening');
  });

  it('keeps a Krum choice that its rounds cannot support, naming f, and moves on once f fits', () => {
    const draft = draftOf();
    draft.aggregation = { ...draft.aggregation, kind: 'krum', byzantine: '1' };
    openStep(draft);
    const f = screen.getByLabelText('Byzantine silos tolerated f');
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(heading()).toBe(`${index}. Aggregation`);
    expect(describedBy(f)).toMatch(/Krum tolerating f = 1 Byzantine updates needs n > 2f \+ 2 = 4 updates/);
    fireEvent.change(f, { target: { value: '0' } });
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(heading()).toBe(`${index + 1}. ${WIZARD_STEPS[index]!.title}`);
  });

  it('refuses exclusion with DP-FedAvg at the exclusion choice', () => {
    const draft = withPrivacyMode(draftOf(), 'dp-fedavg');
    draft.aggregation = { ...draft.aggregation, screening: true, exclude: true };
    openStep(draft);
    const exclude = screen.getByLabelText('Leave flagged updates out of the aggregate');
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(heading()).toBe(`${index}. Aggregation`);
    expect(describedBy(exclude)).toMatch(/with dp-fedavg, leaving flagged updates out/);
    fireEvent.click(exclude);
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(heading()).toBe(`${index + 1}. ${WIZARD_STEPS[index]!.title}`);
  });

  it('turns the choices into the plan the steward reads, and reads them back from a plan', () => {
    const draft = draftOf();
    draft.aggregation = {
      ...draft.aggregation,
      kind: 'trimmed-mean',
      trimFraction: '0.25',
      normBound: 'median-multiple',
      multiplier: '3',
      screening: true,
      threshold: '4',
      exclude: true,
    };
    const plan = draftToPlan(draft) as StudyPlan;
    expect(plan.aggregation).toEqual({
      aggregator: { kind: 'trimmed-mean', trimFraction: 0.25 },
      normBound: { mode: 'median-multiple', multiplier: 3 },
    });
    expect(plan.screening).toEqual({ threshold: 4, exclude: true });
    expect(describePlan(plan).find((l) => l.startsWith('aggregation:'))).toMatch(/trimmed mean, β = 0\.25/);
    expect(planToDraft(plan).aggregation).toEqual(draft.aggregation);
  });
});
