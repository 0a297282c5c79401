import { useEffect, useId, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { FormProvider, useForm } from 'react-hook-form';
import type { SiloView, StudyPlan } from '@tessera/protocol';
import { ApiError } from '../api/api-error.js';
import { draftToPlan, type PlanDraft } from '../lib/plan-draft.js';
import { placeProblems, PLAN_PATH, type PlacedProblem } from '../lib/plan-problems.js';
import { ErrorMessage } from '../ui/feedback.js';
import { draftProblems, studyPlanResolver } from './wizard/study-plan.resolver.js';
import { WizardProvider, type WizardState } from './wizard/wizard-context.js';
import { fieldId } from './wizard/wizard-fields.js';
import type { WizardStep } from './wizard/wizard-step.js';
import { stepOfPath, WIZARD_STEPS, wizardFieldPaths } from './wizard/wizard-steps.js';

// The shell: the form, the stepper, Back/Next and sending. What each step shows lives in ./wizard/*.step.tsx.
//
// Adding a step (say, secure-aggregation options): write ./wizard/secure-aggregation.step.tsx exporting a
// WizardStep — id, title, the plan keys it `owns`, the plan paths of its fields, and its Component (which reads the
// form with useFormContext<PlanDraft>() and binds inputs with <Field path name>) — and put it in WIZARD_STEPS
// (./wizard/wizard-steps.tsx) where it belongs. Nothing here changes: the stepper, the problem counts, "Next"
// refusing a step with problems, jumping from the review to a field and sending all follow the list. (The plan's
// new part itself is added to PlanDraft, draftToPlan and planToDraft in ../lib/plan-draft.ts.)

export interface StudyWizardProps {
  initialDraft: PlanDraft;
  /** Silos that can be invited. */
  silos: SiloView[];
  submitLabel: string;
  /** Sends the valid plan to the hub; a rejection (ApiError) is shown, with its problems at their fields. */
  onSubmit: (plan: StudyPlan) => Promise<void>;
  /** Rendered under the title of each step (e.g. "new version of …"). */
  intro?: ReactNode;
  /** The steps, in order; the last one sends the plan. */
  steps?: readonly WizardStep[];
  /** The step to open at (a resumed draft's). */
  initialStep?: number;
  /** Called on every edit and step change (not on opening): the form as typed and the step, to save the draft. */
  onDraftChange?: (draft: PlanDraft, step: number) => void;
}

/** Moves the focus once React has drawn the step it belongs to. */
function focusLater(find: () => HTMLElement | null | undefined): void {
  window.setTimeout(() => find()?.focus(), 0);
}

function stepAt(steps: readonly WizardStep[], index: number): WizardStep {
  const step = steps.at(index);
  if (!step) throw new Error(`StudyWizard: no step ${index + 1} among ${steps.length}`);
  return step;
}

/** The field of a plan path, or the first input of a field group. */
function fieldElement(path: string): HTMLElement | null | undefined {
  const el = document.getElementById(fieldId(path));
  return el instanceof HTMLFieldSetElement ? el.querySelector<HTMLElement>('input, select, textarea, button') : el;
}

/** The steps as buttons, the current one marked; a step left with problems shows how many. */
function StepNav({
  steps,
  current,
  count,
  onGo,
}: {
  steps: readonly WizardStep[];
  current: number;
  /** Problems to flag at a step (0: none shown). */
  count: (id: string) => number;
  onGo: (index: number) => void;
}) {
  return (
    <nav aria-label="Plan steps" className="stepper">
      <ol>
        {steps.map((s, i) => {
          const flagged = count(s.id);
          return (
            <li key={s.id}>
              <button
                type="button"
                className={`step ${i === current ? 'step-current' : ''} ${flagged ? 'step-invalid' : ''}`}
                aria-current={i === current ? 'step' : undefined}
                onClick={() => onGo(i)}
              >
                <span className="step-number" aria-hidden="true">
                  {i + 1}
                </span>
                {s.title}
                {flagged ? <span className="visually-hidden">, {flagged} problem(s)</span> : null}
                {flagged ? (
                  <span className="step-count" aria-hidden="true">
                    {flagged}
                  </span>
                ) : null}
              </button>
            </li>
          );
        })}
      </ol>
    </nav>
  );
}

/**
 * The study plan, step by step, in a react-hook-form form whose resolver is the hub's own check of the plan
 * (studyPlanProblems from @tessera/protocol). Problems show as they are typed, each at the field its path names, once
 * the field is touched or its step was left with problems; "Next" stays on a step until its problems are fixed.
 */
export function StudyWizard({
  initialDraft,
  silos,
  submitLabel,
  onSubmit,
  intro,
  steps = WIZARD_STEPS,
  initialStep = 0,
  onDraftChange,
}: StudyWizardProps) {
  const form = useForm<PlanDraft, unknown, StudyPlan>({
    defaultValues: initialDraft,
    resolver: studyPlanResolver,
    // Problems show from the draft on every change (below); the resolver decides only whether the plan is sent.
    mode: 'onSubmit',
    reValidateMode: 'onSubmit',
    shouldFocusError: false,
  });
  const draft = form.watch();
  const [stepIndex, setStepIndex] = useState(() => Math.min(Math.max(0, initialStep), steps.length - 1));
  const [touched, setTouched] = useState<ReadonlySet<string>>(new Set());
  const [revealed, setRevealed] = useState<ReadonlySet<string>>(new Set());
  const [submitError, setSubmitError] = useState<unknown>(null);
  // The hub's own problems (e.g. an unknown silo, a privacy mode it does not run yet), until the draft changes.
  const [hubProblems, setHubProblems] = useState<string[]>([]);
  const headingRef = useRef<HTMLHeadingElement>(null);
  const formId = useId();

  useEffect(() => {
    const subscription = form.watch(() => setHubProblems((p) => (p.length ? [] : p)));
    return () => subscription.unsubscribe();
  }, [form]);

  // The draft is reported on each edit and each step change, never merely for opening the wizard.
  const reportDraft = useRef(onDraftChange);
  reportDraft.current = onDraftChange;
  const stepRef = useRef(stepIndex);
  useEffect(() => {
    const subscription = form.watch(() => reportDraft.current?.(form.getValues(), stepRef.current));
    return () => subscription.unsubscribe();
  }, [form]);
  useEffect(() => {
    if (stepRef.current === stepIndex) return;
    stepRef.current = stepIndex;
    reportDraft.current?.(form.getValues(), stepIndex);
  }, [form, stepIndex]);

  const problems = draftProblems(draft);
  const placed = placeProblems([...problems, ...hubProblems], wizardFieldPaths(draft, steps));
  const stepOf = (path: string) => stepOfPath(path, steps);
  const problemsOf = (id: string) => placed.filter((p) => p.field !== PLAN_PATH && stepOf(p.field) === id);
  const current = stepAt(steps, stepIndex);
  const last = stepIndex === steps.length - 1;

  function go(index: number) {
    setStepIndex(index);
    focusLater(() => headingRef.current);
  }

  function jumpTo(p: PlacedProblem) {
    go(
      Math.max(
        0,
        steps.findIndex((s) => s.id === stepOf(p.field)),
      ),
    );
    focusLater(() => fieldElement(p.field));
  }

  function next() {
    const [first] = problemsOf(current.id);
    if (first) {
      setRevealed((r) => new Set(r).add(current.id));
      focusLater(() => fieldElement(first.field));
      return;
    }
    if (!last) go(stepIndex + 1);
  }

  async function send(plan: StudyPlan) {
    try {
      await onSubmit(plan);
    } catch (err) {
      setSubmitError(err);
      if (err instanceof ApiError) setHubProblems(err.detailLines().filter((l) => l.includes(': ')));
    }
  }

  function submit(event: FormEvent<HTMLFormElement>) {
    setRevealed(new Set(steps.map((s) => s.id)));
    setSubmitError(null);
    void form.handleSubmit(send)(event);
  }

  const state: WizardState = {
    draft,
    silos,
    problems: placed,
    plan: problems.length === 0 ? (draftToPlan(draft) as StudyPlan) : null,
    shown: (path) =>
      placed.filter(
        (p) => p.field === path && (touched.has(path) || revealed.has(stepOf(path)) || p.field === PLAN_PATH),
      ),
    touch: (path) => setTouched((t) => (t.has(path) ? t : new Set(t).add(path))),
    jumpTo,
  };
  const busy = form.formState.isSubmitting;
  const planWide = state.shown(PLAN_PATH);
  return (
    <FormProvider {...form}>
      <WizardProvider value={state}>
        <div className="wizard">
          <StepNav
            steps={steps}
            current={stepIndex}
            count={(id) => (revealed.has(id) ? problemsOf(id).length : 0)}
            onGo={go}
          />
          <form
            id={formId}
            className="card wizard-body"
            noValidate
            onSubmit={(e) => {
              e.preventDefault();
              if (last) submit(e);
              else next();
            }}
          >
            <h2 ref={headingRef} tabIndex={-1}>
              {stepIndex + 1}. {current.title}
            </h2>
            {intro}
            {planWide.length > 0 ? (
              <div className="notice notice-error" role="alert">
                {planWide.map((p) => (
                  <p key={p.problem}>{p.text}</p>
                ))}
              </div>
            ) : null}
            <current.Component />
            {submitError && hubProblems.length > 0 ? (
              // Each of the hub's problems already shows at its field and in the review's list: say so once here
              // rather than print every line a second time.
              <div className="notice notice-error" role="alert">
                <strong className="notice-title">The hub did not accept the plan</strong>
                <p className="notice-message">
                  {hubProblems.length === 1 ? 'One problem, shown' : `${hubProblems.length} problems, shown`} at
                  {hubProblems.length === 1 ? ' its field' : ' their fields'} and listed on the review step.
                </p>
                {submitError instanceof ApiError && submitError.correlationId ? (
                  <p className="notice-meta">Correlation id: {submitError.correlationId}</p>
                ) : null}
              </div>
            ) : submitError ? (
              <ErrorMessage error={submitError} title="The hub did not accept the plan" />
            ) : null}
            <div className="row row-between wizard-actions">
              <button
                type="button"
                className="button button-secondary"
                disabled={stepIndex === 0}
                onClick={() => go(Math.max(0, stepIndex - 1))}
              >
                Back
              </button>
              {last ? (
                <button type="submit" className="button button-primary" disabled={busy} aria-busy={busy}>
                  {busy ? 'Sending…' : submitLabel}
                </button>
              ) : (
                <button type="submit" className="button button-primary">
                  Next
                </button>
              )}
            </div>
          </form>
        </div>
      </WizardProvider>
    </FormProvider>
  );
}
