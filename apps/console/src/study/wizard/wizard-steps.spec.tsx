import { cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import type { SiloView } from '@tessera/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultDraft, withPrivacyMode, type PlanDraft } from '../../lib/plan-draft.js';
import { StudyWizard } from '../study-wizard.js';
import { basicsStep } from './basics.step.js';
import { TextField } from './wizard-fields.js';
import type { WizardStep } from './wizard-step.js';
import { WIZARD_STEPS } from './wizard-steps.js';

afterEach(cleanup);

function silo(n: number): SiloView {
  return {
    id: `00000000-0000-4000-8000-00000000000${n}`,
    name: `Hospital ${n}`,
    contact: 'it@example.org',
    status: 'enrolled',
    suspendedReason: null,
    lastSeenAt: null,
    createdAt: '2026-11-22T09:00:00.000Z',
    certificate: null,
    enrollmentPending: null,
  };
}
const SILOS = [silo(1), silo(2), silo(3)];

function validDraft(): PlanDraft {
  const d = defaultDraft('test-salt-0001');
  d.name = 'Cardiac risk';
  d.purpose = 'Predict coronary artery disease from routine findings.';
  d.silos = [SILOS[0]!.id, SILOS[1]!.id];
  return d;
}

function heading(): string {
  return screen.getByRole('heading', { level: 2 }).textContent ?? '';
}

function stepButton(title: string): HTMLElement {
  const nav = screen.getByRole('navigation', { name: 'Plan steps' });
  return within(nav).getByRole('button', { name: new RegExp(`^\\d?\\s*${title}`) });
}

function next(): void {
  fireEvent.click(screen.getByRole('button', { name: 'Next' }));
}

/** The text of every element an element names in aria-describedby. */
function descriptionOf(el: Element): string {
  const ids = (el.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean);
  return ids.map((id) => document.getElementById(id)?.textContent ?? '').join(' ');
}

interface StepCase {
  step: string;
  /** The draft, valid but for the one field below. */
  draft: () => PlanDraft;
  label: string;
  bad: string;
  problem: RegExp;
  good: string;
}

// One wrong field per step, everything else valid: the step keeps the person, names the problem at the field, and
// lets them on once it is fixed.
const CASES: StepCase[] = [
  {
    step: 'Study',
    draft: validDraft,
    label: 'Study name',
    bad: 'ab',
    problem: /Study name needs at least 3 characters\./,
    good: 'Cardiac risk',
  },
  {
    step: 'Model',
    draft: () => ({ ...validDraft(), model: { kind: 'mlp', hiddenLayers: '16', activation: 'relu' } }),
    label: 'Hidden layers',
    bad: '16, 0',
    problem: /^Hidden layers, item 2, must be at least 1\./,
    good: '16, 8',
  },
  {
    step: 'Data schema',
    draft: validDraft,
    label: 'Held out for evaluation',
    bad: '1.5',
    problem: /Held out for evaluation must be less than 1\./,
    good: '0.2',
  },
  {
    step: 'Training',
    draft: validDraft,
    label: 'Rounds',
    bad: '0',
    problem: /Rounds must be at least 1\./,
    good: '10',
  },
  {
    step: 'Privacy',
    draft: () => withPrivacyMode(validDraft(), 'dp-sgd'),
    label: 'δ',
    bad: '2',
    problem: /δ must be less than 1\./,
    good: '1e-5',
  },
  {
    step: 'Aggregation',
    draft: () => {
      const d = validDraft();
      d.aggregation = { ...d.aggregation, normBound: 'fixed' };
      return d;
    },
    label: 'Largest L2 norm',
    bad: '0',
    problem: /Largest L2 norm must be greater than 0\./,
    good: '2',
  },
  {
    step: 'Releases',
    draft: validDraft,
    label: 'Training-record count',
    bad: 'exact',
    problem: /^$/,
    good: 'none',
  },
  {
    step: 'Participants',
    draft: validDraft,
    label: 'Minimum silos per round',
    bad: '3',
    problem: /3 exceeds the 2 invited silos/,
    good: '2',
  },
];

describe('study wizard: each step checks its own fields', () => {
  it.each(CASES.filter((c) => c.step !== 'Releases'))(
    '$step: stays with the problem named at its field, moves on once fixed',
    ({ step, draft, label, bad, problem, good }) => {
      render(
        <StudyWizard initialDraft={draft()} silos={SILOS} submitLabel="Create" onSubmit={() => Promise.resolve()} />,
      );
      fireEvent.click(stepButton(step));
      const index = WIZARD_STEPS.findIndex((s) => s.title === step);
      expect(heading()).toBe(`${index + 1}. ${step}`);
      const field = screen.getByLabelText(label);
      fireEvent.change(field, { target: { value: bad } });
      next();
      expect(heading()).toBe(`${index + 1}. ${step}`);
      expect(field.getAttribute('aria-invalid')).toBe('true');
      expect(descriptionOf(field)).toMatch(problem);
      expect(stepButton(step).textContent).toMatch(/1 problem\(s\)/);

      fireEvent.change(field, { target: { value: good } });
      expect(field.getAttribute('aria-invalid')).toBeNull();
      next();
      expect(heading()).toBe(`${index + 2}. ${WIZARD_STEPS[index + 1]!.title}`);
    },
  );

  it('Releases: a noisy evaluation without DP-SGD keeps the step, with the reason at the evaluation choice', () => {
    const draft = validDraft();
    draft.release = { ...draft.release, evaluation: 'noisy', chosen: true };
    render(<StudyWizard initialDraft={draft} silos={SILOS} submitLabel="Create" onSubmit={() => Promise.resolve()} />);
    fireEvent.click(stepButton('Releases'));
    const evaluation = screen.getByLabelText('Evaluation results');
    next();
    const releases = WIZARD_STEPS.findIndex((s) => s.title === 'Releases') + 1;
    expect(heading()).toBe(`${releases}. Releases`);
    expect(descriptionOf(evaluation)).toMatch(/needs a record-level \(dp-sgd\) privacy plan/);
    fireEvent.change(evaluation, { target: { value: 'exact' } });
    next();
    expect(heading()).toBe(`${releases + 1}. Participants`);
  });

  it('lets the person on past a step whose own fields are fine, whatever later steps hold', () => {
    const draft = validDraft();
    draft.training.rounds = '0';
    draft.silos = [];
    render(<StudyWizard initialDraft={draft} silos={SILOS} submitLabel="Create" onSubmit={() => Promise.resolve()} />);
    for (const s of WIZARD_STEPS.slice(1, 4)) {
      next();
      expect(heading()).toBe(`${WIZARD_STEPS.indexOf(s) + 1}. ${s.title}`);
    }
    next();
    expect(heading()).toBe('4. Training');
    expect(descriptionOf(screen.getByLabelText('Rounds'))).toMatch(/Rounds must be at least 1\./);
  });
});

describe('study wizard: steps come from the list it is given', () => {
  // The purpose moved to a step of its own, defined here in a few lines: nothing else changes.
  const purposeStep: WizardStep = {
    id: 'purpose',
    title: 'Purpose',
    owns: ['purpose'],
    fieldPaths: () => ['purpose'],
    Component: () => <TextField path="purpose" name="purpose" label="Purpose" rows={4} />,
  };
  const nameOnly: WizardStep = {
    ...basicsStep,
    owns: ['name'],
    fieldPaths: () => ['name'],
    Component: () => <TextField path="name" name="name" label="Study name" />,
  };
  const steps = [nameOnly, purposeStep, ...WIZARD_STEPS.slice(1)];

  it('shows an added step in the stepper, checks its fields there, and jumps to them from the review', () => {
    const draft = validDraft();
    draft.purpose = 'short';
    render(
      <StudyWizard
        initialDraft={draft}
        silos={SILOS}
        submitLabel="Create"
        onSubmit={() => Promise.resolve()}
        steps={steps}
      />,
    );
    expect(screen.queryByLabelText('Purpose')).toBeNull();
    next();
    expect(heading()).toBe('2. Purpose');
    next();
    expect(heading()).toBe('2. Purpose');
    expect(descriptionOf(screen.getByLabelText('Purpose'))).toMatch(/Purpose needs at least 10 characters\./);

    fireEvent.click(stepButton('Review'));
    expect(heading()).toBe(`${steps.length}. Review`);
    fireEvent.click(screen.getByRole('button', { name: /^Purpose needs at least 10 characters\./ }));
    expect(heading()).toBe('2. Purpose');
  });
});
