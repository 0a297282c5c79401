import { cleanup, fireEvent, render, screen, within } from '@testing-library/react';
import {
  releasedWithoutDp,
  studyPlanProblems,
  type SiloView,
  type StudyPlan,
  type TabularStudyPlan,
} from '@tessera/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { blankFeature, defaultDraft, draftToPlan, withPrivacyMode, type PlanDraft } from '../lib/plan-draft.js';
import { plannedEvaluationNoise } from '../lib/privacy-accounting.js';
import { ApiError } from '../api/api-error.js';
import { placeProblems, plainProblem, PLAN_PATH } from '../lib/plan-problems.js';
import { stepOfPath, WIZARD_STEPS, wizardFieldPaths } from './wizard/wizard-steps.js';
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
  d.schema.features[1]!.name = '';
  d.schema.features[2]!.scale = '0';
  d.schema.features[8]!.levels = '1';
  d.schema.label.threshold = '';
  d.schema.testFraction = '1.5';
  d.schema.splitSalt = 'a b';
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
  d.release = {
    evaluation: 'noisy',
    evaluationRounds: 'every',
    scoreBins: '50',
    trainingExamples: 'none',
    chosen: true,
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
  d.schema.features.push({ ...blankFeature(), name: 'age' }, { ...blankFeature(), name: 'num' });
  d.schema.features.push({ ...blankFeature(), name: 'bmi' });
  // Imputing: every feature needs its declared value, and a categorical one must be a level.
  d.schema.missing = 'impute';
  d.schema.features.forEach((f) => void (f.impute = f.type === 'categorical' ? '1' : '0'));
  d.schema.features[9]!.impute = '7';
  d.schema.features[12]!.impute = '';
  // Noisy evaluation without DP-SGD.
  d.release = { ...d.release, evaluation: 'noisy', chosen: true };
  d.training.algorithm = 'fedprox';
  d.training.proximalMu = '';
  d.training.serverOptimizer.tau = '';
  d.participation.minSilosPerRound = '3';
  d.silos = [SILOS[0]!.id, SILOS[1]!.id];
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
  const onSubmit = vi.fn(() => Promise.resolve());
  const { container } = render(
    <StudyWizard initialDraft={draft} silos={SILOS} submitLabel="Create the draft study" onSubmit={onSubmit} />,
  );
  fireEvent.click(stepButton('Review'));
  fireEvent.click(screen.getByRole('button', { name: 'Create the draft study' }));
  expect(onSubmit).not.toHaveBeenCalled();
  const placed = placeProblems(problems, wizardFieldPaths(draft));
  // The review step lists every problem in plain words, naming its field.
  for (const p of placed) expect(screen.getAllByRole('button', { name: p.plain }).length).toBeGreaterThan(0);
  expect(placed.filter((p) => p.field === PLAN_PATH)).toEqual([]);
  for (const step of WIZARD_STEPS.filter((s) => s.id !== 'review')) {
    fireEvent.click(stepButton(step.title));
    for (const p of placed.filter((x) => stepOfPath(x.field) === step.id)) {
      const field = container.querySelector(`[data-path="${p.field}"]`);
      expect(field, `field ${p.field} for "${p.problem}"`).not.toBeNull();
      // Under its label, in plain words (the label names the field).
      expect(descriptionOf(field as Element)).toContain(plainProblem('', p.message));
      if (field?.tagName !== 'FIELDSET') expect(field?.getAttribute('aria-invalid')).toBe('true');
    }
  }
  return problems;
}

// Rendering every step of a wizard full of problems takes seconds on a busy two-core machine.
const SLOW = 20_000;

describe('study wizard validation', () => {
  it(
    'shows every structural problem of studyPlanProblems at the field it names, in every step',
    () => {
      const problems = expectEveryProblemAtItsField(structurallyInvalidDraft());
      // Every step has something wrong, so the check above visited fields in all six.
      const steps = new Set(
        placeProblems(problems, wizardFieldPaths(structurallyInvalidDraft())).map((p) => stepOfPath(p.field)),
      );
      expect([...steps].sort()).toEqual(['basics', 'data', 'model', 'participants', 'privacy', 'release', 'training']);
      expect(problems).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^schema\.features\.2\.scaling\.scale: /),
          expect.stringMatching(/^schema\.split\.salt: /),
          expect.stringMatching(/^release\.evaluation\.scoreBins: /),
        ]),
      );
    },
    SLOW,
  );

  it(
    'shows the cross-field problems (duplicates, label as feature, fedprox μ, τ, quorum) at their fields',
    () => {
      const problems = expectEveryProblemAtItsField(inconsistentDraft());
      expect(problems).toEqual(
        expect.arrayContaining([
          'schema.features: column "age" appears twice',
          'schema.label.column: "num" is also a feature',
          'schema.columns: does not list "bmi"',
          'training.proximalMu: is required with the fedprox algorithm',
          'training.serverOptimizer.tau: is required with fedadam',
          'participation.minSilosPerRound: 3 exceeds the 2 invited silos',
          `schema.features.9.impute: "7" is not one of the levels of "restecg"`,
          `schema.features.12.impute: "bmi" needs a declared imputation value when missing is 'impute'`,
          expect.stringMatching(
            /^release\.evaluation: noisy evaluation .* needs a record-level \(dp-sgd\) privacy plan/,
          ),
        ]),
      );
    },
    SLOW,
  );

  it('keeps a step until its problems are fixed, and shows a field problem as soon as the field is edited', () => {
    render(
      <StudyWizard
        initialDraft={defaultDraft()}
        silos={SILOS}
        submitLabel="Create"
        onSubmit={() => Promise.resolve()}
      />,
    );
    const name = screen.getByLabelText('Study name');
    expect(descriptionOf(name)).not.toContain('needs at least');
    fireEvent.change(name, { target: { value: 'ab' } });
    expect(descriptionOf(name)).toMatch(/Study name needs at least 3 characters\./);
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
    draft.schema.features[9]!.impute = '0';
    draft.release = { ...draft.release, evaluation: 'exact' };
    expect(studyPlanProblems(draftToPlan(draft))).toEqual([]);
    expect((draftToPlan(draft) as TabularStudyPlan).schema.features[9]).toEqual({
      name: 'restecg',
      type: 'categorical',
      levels: ['0', '1', '2'],
      impute: '0',
    });
    const onSubmit = vi.fn(() => Promise.resolve());
    render(<StudyWizard initialDraft={draft} silos={SILOS} submitLabel="Create" onSubmit={onSubmit} />);
    fireEvent.click(stepButton('Review'));
    expect(screen.getByText(/study: +Cardiac risk/)).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Create' }));
    await vi.waitFor(() => expect(onSubmit).toHaveBeenCalledTimes(1));
    expect(onSubmit).toHaveBeenCalledWith(draftToPlan(draft));
  });

  it('shows a refusal by the hub once: at the field and in the review list, not again in the error', async () => {
    const refusal = new ApiError(400, 'VALIDATION_FAILED', 'The plan has 1 problem.', 'corr-1', {
      problems: [`silos.1: silo "${SILOS[1]!.name}" is suspended`],
    });
    const onSubmit = vi.fn(() => Promise.reject(refusal));
    render(<StudyWizard initialDraft={validDraft()} silos={SILOS} submitLabel="Create" onSubmit={onSubmit} />);
    fireEvent.click(stepButton('Review'));
    fireEvent.click(screen.getByRole('button', { name: 'Create' }));
    const alert = await screen.findByText('The hub did not accept the plan');
    const box = alert.closest('[role="alert"]')!;
    expect(box.textContent).toContain('One problem, shown at its field and listed on the review step.');
    expect(box.textContent).toContain('corr-1');
    expect(box.textContent).not.toContain('is suspended');
    expect(screen.getAllByText(/is suspended/)).toHaveLength(1);
    expect(screen.getByRole('button', { name: /^Silos 2: silo ".*" is suspended$/ })).toBeTruthy();
  });
});

/** The inconsistent draft made valid: the Fed-Heart-Disease features, fedavg, two of three silos. */
function validDraft(): PlanDraft {
  const d = defaultDraft('test-salt-0001');
  d.name = 'Cardiac risk';
  d.purpose = 'Predict coronary artery disease from routine findings.';
  d.silos = [SILOS[0]!.id, SILOS[1]!.id];
  expect(studyPlanProblems(draftToPlan(d))).toEqual([]);
  return d;
}

function consentBox(): HTMLElement {
  return screen.getByRole('region', { name: 'Released without differential privacy' });
}

describe('study wizard: schema encoding and releases', () => {
  it('asks for each feature’s value when missing only when the schema imputes, levels for categorical ones', () => {
    const { container } = render(
      <StudyWizard initialDraft={validDraft()} silos={SILOS} submitLabel="Create" onSubmit={() => Promise.resolve()} />,
    );
    fireEvent.click(stepButton('Data schema'));
    expect(container.querySelector('[data-path="schema.features.0.scaling.center"]')).toHaveProperty('value', '55');
    expect(container.querySelector('[data-path="schema.features.0.scaling.scale"]')).toHaveProperty('value', '10');
    expect(container.querySelector('[data-path="schema.features.0.impute"]')).toBeNull();
    fireEvent.change(screen.getByLabelText('Rows with missing values'), { target: { value: 'impute' } });
    const cp = container.querySelector('[data-path="schema.features.8.impute"]');
    expect(cp?.tagName).toBe('SELECT');
    expect([...(cp as HTMLSelectElement).options].map((o) => o.value)).toEqual(['', '1', '2', '3', '4']);
    // Nothing declared yet: the step does not let the designer on, and says why at the field.
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(screen.getByRole('heading', { level: 2 }).textContent).toBe('3. Data schema');
    expect(descriptionOf(cp as Element)).toContain(`"cp" needs a declared imputation value when missing is 'impute'`);
  });

  it('generates a new random split salt on request, and keeps one the designer typed', () => {
    const { container } = render(
      <StudyWizard initialDraft={validDraft()} silos={SILOS} submitLabel="Create" onSubmit={() => Promise.resolve()} />,
    );
    fireEvent.click(stepButton('Data schema'));
    const salt = container.querySelector('[data-path="schema.split.salt"]') as HTMLInputElement;
    expect(salt.value).toBe('test-salt-0001');
    fireEvent.click(screen.getByRole('button', { name: 'New random salt' }));
    expect(salt.value).toMatch(/^[0-9a-f]{32}$/);
    fireEvent.change(salt, { target: { value: 'short' } });
    expect(descriptionOf(salt)).toMatch(/Split salt needs at least 8 characters\./);
  });

  it('follows the privacy choice with its default releases, and offers a noisy evaluation only with DP-SGD', () => {
    const { container } = render(
      <StudyWizard initialDraft={validDraft()} silos={SILOS} submitLabel="Create" onSubmit={() => Promise.resolve()} />,
    );
    fireEvent.click(stepButton('Releases'));
    const evaluation = () => container.querySelector('[data-path="release.evaluation.mode"]') as HTMLSelectElement;
    const counts = () => container.querySelector('[data-path="release.trainingExamples"]') as HTMLSelectElement;
    // Without DP: exact metrics every round and the counts, each labelled as released without DP.
    expect(evaluation().value).toBe('exact');
    expect(counts().value).toBe('exact');
    expect(evaluation().selectedOptions[0]?.textContent).toMatch(/released without differential privacy/);
    expect(counts().selectedOptions[0]?.textContent).toMatch(/released without differential privacy/);
    expect(evaluation().querySelector<HTMLOptionElement>('option[value="noisy"]')?.disabled).toBe(true);

    fireEvent.click(stepButton('Privacy'));
    fireEvent.change(screen.getByLabelText('Differential privacy'), { target: { value: 'dp-sgd' } });
    fireEvent.click(stepButton('Releases'));
    expect(evaluation().value).toBe('noisy');
    expect(evaluation().querySelector<HTMLOptionElement>('option[value="noisy"]')?.disabled).toBe(false);
    expect(counts().value).toBe('none');
    expect(screen.getByTestId('evaluation-noise').textContent).toMatch(/standard deviation [\d.]+ records: 1 release/);

    // A release the designer chose stays when the privacy choice changes; the contradiction shows at its field.
    fireEvent.change(counts(), { target: { value: 'exact' } });
    fireEvent.click(stepButton('Privacy'));
    fireEvent.change(screen.getByLabelText('Differential privacy'), { target: { value: 'dp-fedavg' } });
    fireEvent.click(stepButton('Releases'));
    expect(counts().value).toBe('exact');
    expect(evaluation().value).toBe('noisy');
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    expect(descriptionOf(evaluation())).toMatch(/needs a record-level \(dp-sgd\) privacy plan/);
    fireEvent.click(screen.getByRole('button', { name: 'Use the defaults for this privacy choice' }));
    expect(evaluation().value).toBe('none');
    expect(counts().value).toBe('none');
  });

  it('names the invited silos at review, not only their number', () => {
    render(<StudyWizard initialDraft={validDraft()} silos={SILOS} submitLabel="Create" onSubmit={vi.fn()} />);
    fireEvent.click(stepButton('Review'));
    const list = screen.getByRole('list', { name: 'Invited silos (2)' });
    const names = within(list)
      .getAllByRole('listitem')
      .map((li) => li.textContent ?? '');
    expect(names).toHaveLength(2);
    expect(names[0]).toContain('Hospital 1');
    expect(names[0]).toContain(SILOS[0]!.id);
    expect(names[1]).toContain('Hospital 2');
    expect(names.join(' ')).not.toContain('Hospital 3');
  });

  it('lists at review exactly what the plan releases without DP, and nothing for a DP-SGD plan', async () => {
    const onSubmit = vi.fn(() => Promise.resolve());
    const exact = validDraft();
    const { unmount } = render(
      <StudyWizard initialDraft={exact} silos={SILOS} submitLabel="Create" onSubmit={onSubmit} />,
    );
    fireEvent.click(stepButton('Review'));
    const items = within(consentBox())
      .getAllByRole('listitem')
      .map((li) => li.textContent);
    const plan = draftToPlan(exact) as StudyPlan;
    expect(items).toEqual(releasedWithoutDp(plan));
    expect(items).toHaveLength(3);
    unmount();

    const dp = withPrivacyMode(validDraft(), 'dp-sgd');
    const dpPlan = draftToPlan(dp) as StudyPlan;
    expect(releasedWithoutDp(dpPlan)).toEqual([]);
    render(<StudyWizard initialDraft={dp} silos={SILOS} submitLabel="Create" onSubmit={onSubmit} />);
    fireEvent.click(stepButton('Review'));
    const box = consentBox();
    expect(within(box).queryAllByRole('listitem')).toEqual([]);
    expect(box.textContent).toContain('Nothing: everything a hospital sends is covered by the privacy guarantee.');
    expect(box.textContent).toMatch(/noisy test-split score histograms \(4 bins per label/);
    const noise = plannedEvaluationNoise(dpPlan);
    expect(noise?.ok).toBe(true);
    expect(box.querySelector('[data-noise-stddev]')?.getAttribute('data-noise-stddev')).toBe(
      noise?.ok ? String(noise.value.noiseStddev) : 'missing',
    );
    fireEvent.click(screen.getByRole('button', { name: 'Create' }));
    await vi.waitFor(() => expect(onSubmit).toHaveBeenCalledWith(dpPlan));
  });
});
