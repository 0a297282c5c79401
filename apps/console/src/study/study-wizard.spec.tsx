import { cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import { studyPlanProblems, type SiloView } from '@tessera/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { defaultDraft, draftToPlan, type PlanDraft } from '../lib/plan-draft.js';
import { placeProblems, PLAN_PATH, stepOfPath, WIZARD_STEPS, wizardFieldPaths } from '../lib/plan-problems.js';
import { StudyWizard } from './study-wizard.js';

afterEach(cleanup);

function silo(n: number, status: SiloView['status'] = 'enrolled'): SiloView {
  return {
    id: `00000000-0000-4000-8000-00000000000${n}`,
    name: `Hospital ${n}`,
    contact: 'it@example.org',
    status,
    suspendedReason: null,
    lastSeenAt: null,
    createdAt: '2026-11-22T09:00:00.000Z',
    certificate: null,
    enrollmentPending: null,
  };
}
const SILOS = [silo(1), silo(2), silo(3)];

/** A plan wrong in every step, structurally (zod's checks). */
function structurallyInvalidDraft(): PlanDraft {
  const d = defaultDraft();
  d.name = 'x';
  d.purpose = 'short';
  d.model = { kind: 'mlp', hiddenLayers: '0, 9000', activation: 'relu' };
  d.schema.features[1].name = '';
  d.schema.features[8].levels = '1';
  d.schema.label.threshold = '';
  d.schema.testFraction = '1.5';
  d.schema.splitSeed = '-3';
  d.training.rounds = '0';
  d.training.localEpochs = '';
  d.training.batchSize = 'abc';
  d.training.learningRate = '-1';
  d.training.serverOptimizer.learningRate = '1000';
  d.training.serverOptimizer.beta1 = '1.5';
  d.training.initSeed = '1.5';
  d.privacy = {
    ...d.privacy,
    mode: 'dp-sgd',
    targetEpsilon: '0',
    delta: '2',
    clipNorm: '-1',
    noise: 'fixed',
    noiseMultiplier: '0',
    samplingRate: '3',
  };
  d.participation.minSilosPerRound = '0';
  d.participation.roundDeadlineSeconds = '1';
  d.participation.maxRoundRetries = '11';
  d.silos = [];
  return d;
}

/** A plan the schema accepts whose parts contradict each other (the semantic checks). */
function inconsistentDraft(): PlanDraft {
  const d = defaultDraft();
  d.name = 'Cardiac risk';
  d.purpose = 'Predict coronary artery disease from routine findings.';
  d.schema.features.push({ name: 'age', type: 'numeric', levels: '' }, { name: 'num', type: 'numeric', levels: '' });
  d.schema.features.push({ name: 'bmi', type: 'numeric', levels: '' });
  d.training.algorithm = 'fedprox';
  d.training.proximalMu = '';
  d.training.serverOptimizer.tau = '';
  d.participation.minSilosPerRound = '3';
  d.silos = [SILOS[0].id, SILOS[1].id];
  return d;
}

function stepButton(title: string): HTMLElement {
  const nav = screen.getByRole('navigation', { name: 'Plan steps' });
  return within(nav).getByRole('button', { name: new RegExp(`^\\d?\\s*${title}`) });
}

/** The text of every element an element names in aria-describedby. */
function descriptionOf(el: Element): string {
  const ids = (el.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean);
  return ids.map((id) => document.getElementById(id)?.textContent ?? '').join(' ');
}

/** Renders the wizard, asks it to send the plan (which reveals every problem), and checks each one at its field. */
function expectEveryProblemAtItsField(draft: PlanDraft) {
  const problems = studyPlanProblems(draftToPlan(draft));
  expect(problems.length).toBeGreaterThan(0);
  const onSubmit = vi.fn(async () => undefined);
  const { container } = render(
    <StudyWizard initialDraft={draft} silos={SILOS} submitLabel="Create the draft study" onSubmit={onSubmit} />,
  );
  fireEvent.click(stepButton('Review'));
  fireEvent.click(screen.getByRole('button', { name: 'Create the draft study' }));
  expect(onSubmit).not.toHaveBeenCalled();
  // The review step lists every problem, verbatim.
  for (const p of problems) expect(screen.getByRole('button', { name: p })).toBeTruthy();

  const placed = placeProblems(problems, wizardFieldPaths(draft));
  expect(placed.filter((p) => p.field === PLAN_PATH)).toEqual([]);
  for (const step of WIZARD_STEPS.filter((s) => s.id !== 'review')) {
    fireEvent.click(stepButton(step.title));
    for (const p of placed.filter((x) => stepOfPath(x.field) === step.id)) {
      const field = container.querySelector(`[data-path="${p.field}"]`);
      expect(field, `field ${p.field} for "${p.problem}"`).not.toBeNull();
      expect(descriptionOf(field as Element)).toContain(p.text);
      if (field?.tagName !== 'FIELDSET') expect(field?.getAttribute('aria-invalid')).toBe('true');
    }
  }
  return problems;
}

describe('study wizard validation', () => {
  it('shows every structural problem of studyPlanProblems at the field it names, in every step', () => {
    const problems = expectEveryProblemAtItsField(structurallyInvalidDraft());
    // Every step has something wrong, so the check above visited fields in all six.
    const steps = new Set(
      placeProblems(problems, wizardFieldPaths(structurallyInvalidDraft())).map((p) => stepOfPath(p.field)),
    );
    expect([...steps].sort()).toEqual(['basics', 'data', 'model', 'participants', 'privacy', 'training']);
  });

  it('shows the cross-field problems (duplicates, label as feature, fedprox μ, τ, quorum) at their fields', () => {
    const problems = expectEveryProblemAtItsField(inconsistentDraft());
    expect(problems).toEqual(
      expect.arrayContaining([
        'schema.features: column "age" appears twice',
        'schema.label.column: "num" is also a feature',
        'schema.columns: does not list "bmi"',
        'training.proximalMu: is required with the fedprox algorithm',
        'training.serverOptimizer.tau: is required with fedadam',
        'participation.minSilosPerRound: 3 exceeds the 2 invited silos',
      ]),
    );
  });

  it('keeps a step until its problems are fixed, and shows a field problem as soon as the field is edited', () => {
    render(
      <StudyWizard initialDraft={defaultDraft()} silos={SILOS} submitLabel="Create" onSubmit={async () => undefined} />,
    );
    const name = screen.getByLabelText('Study name');
    expect(descriptionOf(name)).not.toContain('Too small');
    fireEvent.change(name, { target: { value: 'ab' } });
    expect(descriptionOf(name)).toMatch(/Too small/);
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(screen.getByRole('heading', { level: 2 }).textContent).toBe('1. Study');
    const purpose = screen.getByLabelText('Purpose');
    expect(purpose.getAttribute('aria-invalid')).toBe('true');

    fireEvent.change(name, { target: { value: 'Cardiac risk' } });
    fireEvent.change(purpose, { target: { value: 'Predict coronary artery disease.' } });
    expect(name.getAttribute('aria-invalid')).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(screen.getByRole('heading', { level: 2 }).textContent).toBe('2. Model');
  });

  it('sends a valid plan exactly as studyPlanProblems accepted it', async () => {
    const draft = inconsistentDraft();
    draft.schema.features.splice(-3, 3);
    draft.training.algorithm = 'fedavg';
    draft.training.serverOptimizer.tau = '0.001';
    draft.participation.minSilosPerRound = '2';
    expect(studyPlanProblems(draftToPlan(draft))).toEqual([]);
    const onSubmit = vi.fn(async () => undefined);
    render(<StudyWizard initialDraft={draft} silos={SILOS} submitLabel="Create" onSubmit={onSubmit} />);
    fireEvent.click(stepButton('Review'));
    expect(screen.getByText(/study: +Cardiac risk/)).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Create' }));
    await vi.waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    expect(onSubmit).toHaveBeenCalledWith(draftToPlan(draft));
  });
});
