import { cleanup, fireEvent, render, screen } from '@testing-library/react';
import { type SiloView, type StudyPlan } from '@tessera/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultDraft, draftToPlan, planToDraft, type PlanDraft } from '../../lib/plan-draft.js';
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

/** A valid draft inviting the four silos, each needed in every round (no DP: exact releases every round). */
function draftOf(): PlanDraft {
  const d = defaultDraft('test-salt-0001');
  d.name = 'Cardiac risk';
  d.purpose = 'Predict coronary artery disease from routine findings.';
  d.silos = SILOS.map((s) => s.id);
  d.participation.minSilosPerRound = String(SILOS.length);
  return d;
}

/** draftOf with the releases secure aggregation can run with: the final evaluation only, no record counts. */
function compatibleDraft(): PlanDraft {
  const d = draftOf();
  d.release = { ...d.release, evaluationRounds: 'final', trainingExamples: 'none', chosen: true };
  return d;
}

const heading = () => screen.getByRole('heading', { level: 2 }).textContent ?? '';
const index = WIZARD_STEPS.findIndex((s) => s.id === 'aggregation') + 1;
const optIn = () => screen.getByLabelText('Secure aggregation (the hub sees only the sum)');
const conflicts = () =>
  screen.queryByRole('list', { name: 'What secure aggregation cannot run with' })?.textContent ?? null;

function describedBy(el: Element): string {
  const ids = (el.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean);
  return ids.map((id) => document.getElementById(id)?.textContent ?? '').join(' ');
}

function openStep(draft: PlanDraft): void {
  render(<StudyWizard initialDraft={draft} silos={SILOS} submitLabel="Create" onSubmit={() => Promise.resolve()} />);
  fireEvent.click(screen.getByRole('button', { name: /^\d?\s*Aggregation/ }));
  expect(heading()).toBe(`${index}. Aggregation`);
}

describe('study wizard: secure aggregation at the aggregation step', () => {
  it('leaves the plan without a secureAggregation key until opted in, and shows no field for it', () => {
    expect(Object.keys(draftToPlan(draftOf()) as Record<string, unknown>)).not.toContain('secureAggregation');
    openStep(draftOf());
    expect((optIn() as HTMLInputElement).checked).toBe(false);
    expect(screen.queryByLabelText('Threshold t')).toBeNull();
  });

  it('opting in shows the four fields with their defaults: complete graph, proposed t, 32 bits, clip norm 1', () => {
    openStep(compatibleDraft());
    fireEvent.click(optIn());
    // Four silos, complete graph: k = 3 neighbours, proposed t = ⌊3/2⌋ + 1 = 2.
    expect(screen.getByLabelText<HTMLInputElement>('Neighbours per silo k').value).toBe('');
    expect(screen.getByLabelText<HTMLInputElement>('Threshold t').value).toBe('2');
    expect(screen.getByLabelText<HTMLInputElement>('Modulus bits').value).toBe('32');
    expect(screen.getByLabelText<HTMLInputElement>('Clip norm C').value).toBe('1');
    expect(screen.getByText(/the hub learns the sum of the updates and never one silo's/)).toBeTruthy();
    expect(conflicts()).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(heading()).toBe(`${index + 1}. ${WIZARD_STEPS[index]!.title}`);
  });

  it("lists, in plain words, what the plan's other choices cannot do under secure aggregation", () => {
    const draft = draftOf(); // exact evaluation every round and exact record counts: both need individual uploads
    draft.aggregation = { ...draft.aggregation, kind: 'coordinate-median', screening: true };
    openStep(draft);
    fireEvent.click(optIn());
    const text = conflicts() ?? '';
    expect(text).toMatch(/Aggregation aggregator kind: coordinate-median needs every individual update/);
    expect(text).toMatch(/Screening: screening reads every individual update/);
    expect(text).toMatch(/Release evaluation rounds: the evaluation of every round travels with the silo's update/);
    expect(text).toMatch(/Release training examples: a secure sum is unweighted/);
    // The aggregator is this step's own field: its problem keeps "Next" here and shows at the field.
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(heading()).toBe(`${index}. Aggregation`);
    expect(describedBy(screen.getByLabelText('Aggregator'))).toMatch(/coordinate-median needs every individual update/);
    fireEvent.change(screen.getByLabelText('Aggregator'), { target: { value: 'fedavg' } });
    fireEvent.click(screen.getByLabelText(/^Screen every update/));
    expect(conflicts()).not.toMatch(/Aggregation aggregator kind|Screening/);
    expect(conflicts()).toMatch(/Release training examples/);
  });

  it('shows a threshold above the neighbours at the threshold field and keeps the step until it fits', () => {
    openStep(compatibleDraft());
    fireEvent.click(optIn());
    fireEvent.change(screen.getByLabelText('Neighbours per silo k'), { target: { value: '2' } });
    const t = screen.getByLabelText('Threshold t');
    fireEvent.change(t, { target: { value: '3' } });
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(heading()).toBe(`${index}. Aggregation`);
    expect(describedBy(t)).toMatch(/t = 3 exceeds the 2 neighbours a silo shares its secrets with/);
    fireEvent.change(t, { target: { value: '2' } });
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(heading()).toBe(`${index + 1}. ${WIZARD_STEPS[index]!.title}`);
  });

  it('refuses secure aggregation with two silos at the opt-in', () => {
    const draft = compatibleDraft();
    draft.silos = draft.silos.slice(0, 2);
    draft.participation.minSilosPerRound = '2';
    openStep(draft);
    fireEvent.click(optIn());
    fireEvent.change(screen.getByLabelText('Threshold t'), { target: { value: '2' } });
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(heading()).toBe(`${index}. Aggregation`);
    expect(describedBy(optIn())).toMatch(/needs at least 3 invited silos/);
  });

  it('puts the block in the plan, lists it at the review, and reads it back from a plan', () => {
    const draft = compatibleDraft();
    draft.secureAggregation = {
      enabled: true,
      threshold: '3',
      neighbourCount: '3',
      modulusBits: '24',
      clipNorm: '0.5',
    };
    const plan = draftToPlan(draft) as StudyPlan;
    expect(plan.secureAggregation).toEqual({ threshold: 3, neighbourCount: 3, modulusBits: 24, clipNorm: 0.5 });
    expect(planToDraft(plan).secureAggregation).toEqual(draft.secureAggregation);

    render(<StudyWizard initialDraft={draft} silos={SILOS} submitLabel="Create" onSubmit={() => Promise.resolve()} />);
    fireEvent.click(screen.getByRole('button', { name: /^\d*\s*Review/ }));
    const review = document.querySelector('pre.plan-text')?.textContent ?? '';
    expect(review).toMatch(
      /secure agg\.: +SecAgg\+ — the hub sees only the sum of the updates, never one silo's; each silo pairs with 3 neighbours \(SecAgg\+\); threshold t = 3/,
    );
    expect(review).toMatch(/clipped to L2 norm 0\.5 and quantised to integers mod 2\^24/);
  });
});
