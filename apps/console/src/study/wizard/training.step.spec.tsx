import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { describePlan, type SiloView, type StudyPlan } from '@tessera/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultDraft, draftToPlan, withPrivacyMode, type PlanDraft } from '../../lib/plan-draft.js';
import { StudyWizard } from '../study-wizard.js';
import { WIZARD_STEPS } from './wizard-steps.js';

afterEach(cleanup);

const SILOS: SiloView[] = [1, 2, 3].map((n) => ({
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

function draftOf(): PlanDraft {
  const d = defaultDraft('test-salt-0001');
  d.name = 'Cardiac risk';
  d.purpose = 'Predict coronary artery disease from routine findings.';
  d.silos = SILOS.map((s) => s.id);
  d.participation.minSilosPerRound = String(SILOS.length);
  return d;
}

const heading = () => screen.getByRole('heading', { level: 2 }).textContent ?? '';
const index = WIZARD_STEPS.findIndex((s) => s.id === 'training') + 1;

function describedBy(el: Element): string {
  const ids = (el.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean);
  return ids.map((id) => document.getElementById(id)?.textContent ?? '').join(' ');
}

function openStep(draft: PlanDraft): void {
  render(<StudyWizard initialDraft={draft} silos={SILOS} submitLabel="Create" onSubmit={() => Promise.resolve()} />);
  fireEvent.click(screen.getByRole('button', { name: new RegExp(`^\\d?\\s*${WIZARD_STEPS[index - 1]!.title}`) }));
  expect(heading()).toBe(`${index}. ${WIZARD_STEPS[index - 1]!.title}`);
}

describe('study wizard: SCAFFOLD in the training step', () => {
  it('offers SCAFFOLD as the local algorithm, and the plan the steward reads names it', () => {
    openStep(draftOf());
    const algorithm = screen.getByLabelText('Local algorithm');
    expect(Array.from((algorithm as HTMLSelectElement).options).map((o) => o.value)).toContain('scaffold');
    const draft = draftOf();
    draft.training.algorithm = 'scaffold';
    const plan = draftToPlan(draft) as StudyPlan;
    expect(plan.training.algorithm).toBe('scaffold');
    expect(describePlan(plan).find((l) => l.startsWith('training:'))).toMatch(/scaffold \(control variates/);
  });

  it('refuses SCAFFOLD with DP-FedAvg at the algorithm field', () => {
    const draft = withPrivacyMode(draftOf(), 'dp-fedavg');
    draft.training.algorithm = 'scaffold';
    openStep(draft);
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(heading()).toBe(`${index}. ${WIZARD_STEPS[index - 1]!.title}`);
    expect(describedBy(screen.getByLabelText('Local algorithm'))).toMatch(/scaffold under dp-fedavg/);
  });
});
