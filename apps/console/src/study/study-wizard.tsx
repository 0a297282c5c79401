import { useId, useMemo, useRef, useState, type ReactNode } from 'react';
import { describePlan, studyPlanProblems, type SiloView, type StudyPlan } from '@tessera/protocol';
import { ApiError } from '../api/api-error.js';
import {
  ADAPTIVE_OPTIMIZERS,
  blankFeature,
  defaultReleaseDraft,
  draftToPlan,
  listOf,
  numberOf,
  randomSplitSalt,
  withPrivacyMode,
  type EvaluationReleaseMode,
  type FeatureDraft,
  type LabelOperator,
  type PlanDraft,
  type ReleaseDraft,
} from '../lib/plan-draft.js';
import {
  placeProblems,
  PLAN_PATH,
  stepOfPath,
  WIZARD_STEPS,
  wizardFieldPaths,
  type PlacedProblem,
  type WizardStepId,
} from '../lib/plan-problems.js';
import {
  evaluationNoiseFor,
  evaluationReleaseCount,
  plannedEvaluationNoise,
  type PrivacyMechanismShape,
} from '../lib/privacy-accounting.js';
import { formatSignificant } from '../lib/format.js';
import { ErrorMessage, Notice } from '../ui/feedback.js';
import { PrivacyCalculator } from './privacy-calculator.js';
import { ReleaseConsent } from './release-consent.js';

/** Props every input gets from its Field: id, label link, error link and the plan path it edits. */
interface InputProps {
  id: string;
  'data-path': string;
  'aria-invalid'?: true;
  'aria-describedby': string;
  onBlur: () => void;
  /** Editing a field counts as touching it: its problems show from the first change. */
  onChangeCapture: () => void;
}

function fieldId(path: string): string {
  return `plan-${path.replace(/\./g, '-')}`;
}

interface FieldContext {
  shown(path: string): PlacedProblem[];
  touch(path: string): void;
}

function Field({
  ctx,
  path,
  label,
  hint,
  children,
  className,
}: {
  ctx: FieldContext;
  path: string;
  label: string;
  hint?: ReactNode;
  children: (props: InputProps) => ReactNode;
  className?: string;
}) {
  const id = fieldId(path);
  const problems = ctx.shown(path);
  const describedBy = [`${id}-error`, hint ? `${id}-hint` : ''].filter(Boolean).join(' ');
  return (
    <div className={`field ${className ?? ''} ${problems.length ? 'field-invalid' : ''}`}>
      <label htmlFor={id}>{label}</label>
      {children({
        id,
        'data-path': path,
        ...(problems.length ? { 'aria-invalid': true as const } : {}),
        'aria-describedby': describedBy,
        onBlur: () => ctx.touch(path),
        onChangeCapture: () => ctx.touch(path),
      })}
      {hint ? (
        <p id={`${id}-hint`} className="hint">
          {hint}
        </p>
      ) : null}
      <div id={`${id}-error`} className="field-error" aria-live="polite">
        {problems.map((p) => (
          <p key={p.problem}>{p.text}</p>
        ))}
      </div>
    </div>
  );
}

/** A group of inputs (a list, a union) whose problems show above its members. */
function Group({
  ctx,
  path,
  legend,
  children,
}: {
  ctx: FieldContext;
  path: string;
  legend: string;
  children: ReactNode;
}) {
  const id = fieldId(path);
  const problems = ctx.shown(path);
  return (
    <fieldset className="group" data-path={path} aria-describedby={`${id}-error`} id={id}>
      <legend>{legend}</legend>
      <div id={`${id}-error`} className="field-error" aria-live="polite">
        {problems.map((p) => (
          <p key={p.problem}>{p.text}</p>
        ))}
      </div>
      {children}
    </fieldset>
  );
}

export interface StudyWizardProps {
  initialDraft: PlanDraft;
  /** Silos that can be invited. */
  silos: SiloView[];
  submitLabel: string;
  /** Sends the valid plan to the hub; a rejection (ApiError) is shown, with its problems at their fields. */
  onSubmit: (plan: StudyPlan) => Promise<void>;
  /** Rendered under the title of each step (e.g. "new version of …"). */
  intro?: ReactNode;
}

/**
 * The study plan, step by step, checked as it is typed by the same rules the hub applies (studyPlanProblems from
 * @tessera/protocol). A field shows its problems once touched, or once its step was left with problems.
 */
export function StudyWizard({ initialDraft, silos, submitLabel, onSubmit, intro }: StudyWizardProps) {
  const [draft, setDraft] = useState<PlanDraft>(initialDraft);
  const [step, setStep] = useState<WizardStepId>('basics');
  const [touched, setTouched] = useState<ReadonlySet<string>>(new Set());
  const [revealed, setRevealed] = useState<ReadonlySet<WizardStepId>>(new Set());
  const [busy, setBusy] = useState(false);
  const [submitError, setSubmitError] = useState<unknown>(null);
  const [hubProblems, setHubProblems] = useState<string[]>([]);
  const headingRef = useRef<HTMLHeadingElement>(null);
  const formId = useId();

  const candidate = useMemo(() => draftToPlan(draft), [draft]);
  const problems = useMemo(() => studyPlanProblems(candidate), [candidate]);
  const fields = useMemo(() => wizardFieldPaths(draft), [draft]);
  // The hub's own problems (e.g. an unknown silo, a privacy mode it does not run yet) until the plan changes.
  const placed = useMemo(() => placeProblems([...problems, ...hubProblems], fields), [problems, hubProblems, fields]);

  const ctx: FieldContext = {
    shown: (path) =>
      placed.filter(
        (p) => p.field === path && (touched.has(path) || revealed.has(stepOfPath(path)) || p.field === PLAN_PATH),
      ),
    touch: (path) => setTouched((t) => (t.has(path) ? t : new Set(t).add(path))),
  };

  function update(change: (d: PlanDraft) => void, path?: string) {
    setDraft((d) => {
      const next = structuredClone(d);
      change(next);
      return next;
    });
    setHubProblems([]);
    if (path) ctx.touch(path);
  }

  const problemsOf = (s: WizardStepId) => placed.filter((p) => p.field !== PLAN_PATH && stepOfPath(p.field) === s);

  function go(next: WizardStepId) {
    setStep(next);
    window.setTimeout(() => headingRef.current?.focus(), 0);
  }

  function focusField(path: string) {
    window.setTimeout(() => {
      const el = document.getElementById(fieldId(path));
      if (el instanceof HTMLFieldSetElement) el.querySelector<HTMLElement>('input, select, textarea, button')?.focus();
      else el?.focus();
    }, 0);
  }

  function next() {
    const index = WIZARD_STEPS.findIndex((s) => s.id === step);
    const own = problemsOf(step);
    if (own.length > 0) {
      setRevealed((r) => new Set(r).add(step));
      focusField(own[0].field);
      return;
    }
    const following = WIZARD_STEPS[index + 1];
    if (following) go(following.id);
  }

  async function submit() {
    setRevealed(new Set(WIZARD_STEPS.map((s) => s.id)));
    setSubmitError(null);
    if (problems.length > 0) return;
    setBusy(true);
    try {
      await onSubmit(candidate as StudyPlan);
    } catch (err) {
      setSubmitError(err);
      if (err instanceof ApiError) setHubProblems(err.detailLines().filter((l) => l.includes(': ')));
    } finally {
      setBusy(false);
    }
  }

  const stepIndex = WIZARD_STEPS.findIndex((s) => s.id === step);
  const current = WIZARD_STEPS[stepIndex];
  return (
    <div className="wizard">
      <nav aria-label="Plan steps" className="stepper">
        <ol>
          {WIZARD_STEPS.map((s, i) => {
            const count = s.id === 'review' ? 0 : problemsOf(s.id).length;
            const flagged = count > 0 && revealed.has(s.id);
            return (
              <li key={s.id}>
                <button
                  type="button"
                  className={`step ${s.id === step ? 'step-current' : ''} ${flagged ? 'step-invalid' : ''}`}
                  aria-current={s.id === step ? 'step' : undefined}
                  onClick={() => go(s.id)}
                >
                  <span className="step-number" aria-hidden="true">
                    {i + 1}
                  </span>
                  {s.title}
                  {flagged ? <span className="visually-hidden">, {count} problem(s)</span> : null}
                  {flagged ? (
                    <span className="step-count" aria-hidden="true">
                      {count}
                    </span>
                  ) : null}
                </button>
              </li>
            );
          })}
        </ol>
      </nav>
      <form
        id={formId}
        className="card wizard-body"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          if (step === 'review') void submit();
          else next();
        }}
      >
        <h2 ref={headingRef} tabIndex={-1}>
          {stepIndex + 1}. {current.title}
        </h2>
        {intro}
        {ctx.shown(PLAN_PATH).length > 0 ? (
          <div className="notice notice-error" role="alert">
            {ctx.shown(PLAN_PATH).map((p) => (
              <p key={p.problem}>{p.text}</p>
            ))}
          </div>
        ) : null}
        {step === 'basics' ? <BasicsStep ctx={ctx} draft={draft} update={update} /> : null}
        {step === 'model' ? <ModelStep ctx={ctx} draft={draft} update={update} /> : null}
        {step === 'data' ? <DataStep ctx={ctx} draft={draft} update={update} /> : null}
        {step === 'training' ? <TrainingStep ctx={ctx} draft={draft} update={update} /> : null}
        {step === 'privacy' ? <PrivacyStep ctx={ctx} draft={draft} update={update} /> : null}
        {step === 'release' ? <ReleaseStep ctx={ctx} draft={draft} update={update} /> : null}
        {step === 'participants' ? <ParticipantsStep ctx={ctx} draft={draft} update={update} silos={silos} /> : null}
        {step === 'review' ? (
          <ReviewStep
            problems={placed}
            plan={problems.length === 0 ? (candidate as StudyPlan) : null}
            onJump={(p) => {
              go(stepOfPath(p.field));
              focusField(p.field);
            }}
          />
        ) : null}
        {submitError ? <ErrorMessage error={submitError} title="The hub did not accept the plan" /> : null}
        <div className="row row-between wizard-actions">
          <button
            type="button"
            className="button button-secondary"
            disabled={stepIndex === 0}
            onClick={() => go(WIZARD_STEPS[Math.max(0, stepIndex - 1)].id)}
          >
            Back
          </button>
          {step === 'review' ? (
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
  );
}

type StepProps = {
  ctx: FieldContext;
  draft: PlanDraft;
  update: (change: (d: PlanDraft) => void, path?: string) => void;
};

function BasicsStep({ ctx, draft, update }: StepProps) {
  return (
    <>
      <Field ctx={ctx} path="name" label="Study name" hint="3 to 128 characters; stewards see it at their agent.">
        {(p) => <input {...p} value={draft.name} onChange={(e) => update((d) => void (d.name = e.target.value))} />}
      </Field>
      <Field
        ctx={ctx}
        path="purpose"
        label="Purpose"
        hint="What the model is for, in words a data steward can judge (10 to 4000 characters)."
      >
        {(p) => (
          <textarea
            {...p}
            rows={4}
            value={draft.purpose}
            onChange={(e) => update((d) => void (d.purpose = e.target.value))}
          />
        )}
      </Field>
    </>
  );
}

function ModelStep({ ctx, draft, update }: StepProps) {
  return (
    <>
      <Field ctx={ctx} path="model.kind" label="Architecture">
        {(p) => (
          <select
            {...p}
            value={draft.model.kind}
            onChange={(e) => update((d) => void (d.model.kind = e.target.value as PlanDraft['model']['kind']))}
          >
            <option value="logistic-regression">Logistic regression</option>
            <option value="mlp">Multi-layer perceptron (MLP)</option>
          </select>
        )}
      </Field>
      {draft.model.kind === 'mlp' ? (
        <div className="grid-2">
          <Field
            ctx={ctx}
            path="model.hiddenLayers"
            label="Hidden layers"
            hint="Units per layer, comma-separated (1–8 layers)."
          >
            {(p) => (
              <input
                {...p}
                value={draft.model.hiddenLayers}
                onChange={(e) => update((d) => void (d.model.hiddenLayers = e.target.value))}
              />
            )}
          </Field>
          <Field ctx={ctx} path="model.activation" label="Activation">
            {(p) => (
              <select
                {...p}
                value={draft.model.activation}
                onChange={(e) => update((d) => void (d.model.activation = e.target.value as 'relu' | 'tanh'))}
              >
                <option value="relu">ReLU</option>
                <option value="tanh">tanh</option>
              </select>
            )}
          </Field>
        </div>
      ) : (
        <p className="hint">One weight per encoded feature plus a bias; binary outcome (sigmoid).</p>
      )}
    </>
  );
}

const OPERATORS: LabelOperator[] = ['>', '>=', '<', '<=', '==', '!=', 'in'];

function DataStep({ ctx, draft, update }: StepProps) {
  const s = draft.schema;
  return (
    <>
      <div className="field field-check">
        <input
          id="plan-schema-hasHeader"
          type="checkbox"
          checked={s.hasHeader}
          onChange={(e) => update((d) => void (d.schema.hasHeader = e.target.checked))}
        />
        <label htmlFor="plan-schema-hasHeader">The data files start with a header row</label>
      </div>
      {!s.hasHeader ? (
        <Field
          ctx={ctx}
          path="schema.columns"
          label="Columns, in file order"
          hint="Comma-separated names of every column of the headerless files."
        >
          {(p) => (
            <textarea
              {...p}
              rows={2}
              value={s.columns}
              onChange={(e) => update((d) => void (d.schema.columns = e.target.value))}
            />
          )}
        </Field>
      ) : null}
      <div className="grid-2">
        <Field
          ctx={ctx}
          path="schema.missingValues"
          label="Missing-value markers"
          hint="Comma-separated, e.g. ?, NA (optional)."
        >
          {(p) => (
            <input
              {...p}
              value={s.missingValues}
              onChange={(e) => update((d) => void (d.schema.missingValues = e.target.value))}
            />
          )}
        </Field>
        <Field ctx={ctx} path="schema.missing" label="Rows with missing values">
          {(p) => (
            <select
              {...p}
              value={s.missing}
              onChange={(e) => update((d) => void (d.schema.missing = e.target.value as 'drop-rows' | 'impute'))}
            >
              <option value="drop-rows">Drop them</option>
              <option value="impute">Replace with each feature&apos;s declared value</option>
            </select>
          )}
        </Field>
      </div>
      <Group ctx={ctx} path="schema.features" legend={`Features (${s.features.length})`}>
        <p className="hint">
          A numeric feature is encoded as (x − center) / scale with the constants declared here, in the column&apos;s
          own unit (leave both empty to use the raw value); a categorical one as indicators of its fixed levels. These
          constants are part of the plan and never computed from a hospital&apos;s file: a mean, a spread or a most
          frequent value of the file would depend on every record in it, and the privacy guarantee would no longer hold.
        </p>
        <div className="features">
          {s.features.map((f, i) => (
            <FeatureRow
              key={i}
              ctx={ctx}
              index={i}
              feature={f}
              imputing={s.missing === 'impute'}
              onChange={(change, path) => update((d) => change(d.schema.features[i]), path)}
              onRemove={() => update((d) => void d.schema.features.splice(i, 1), 'schema.features')}
            />
          ))}
        </div>
        <button
          type="button"
          className="button button-secondary button-small"
          onClick={() => update((d) => void d.schema.features.push(blankFeature()))}
        >
          Add a feature
        </button>
      </Group>
      <Group ctx={ctx} path="schema.label" legend="Label (the outcome to predict)">
        <div className="grid-3">
          <Field ctx={ctx} path="schema.label.column" label="Column">
            {(p) => (
              <input
                {...p}
                value={s.label.column}
                onChange={(e) => update((d) => void (d.schema.label.column = e.target.value))}
              />
            )}
          </Field>
          <Field ctx={ctx} path="schema.label.operator" label="Positive when">
            {(p) => (
              <select
                {...p}
                value={s.label.operator}
                onChange={(e) => update((d) => void (d.schema.label.operator = e.target.value as LabelOperator))}
              >
                {OPERATORS.map((o) => (
                  <option key={o} value={o}>
                    {o === 'in' ? 'is one of' : o}
                  </option>
                ))}
              </select>
            )}
          </Field>
          {s.label.operator === 'in' ? (
            <Field ctx={ctx} path="schema.label.values" label="Values" hint="Comma-separated.">
              {(p) => (
                <input
                  {...p}
                  value={s.label.values}
                  onChange={(e) => update((d) => void (d.schema.label.values = e.target.value))}
                />
              )}
            </Field>
          ) : (
            <Field ctx={ctx} path="schema.label.threshold" label="Threshold">
              {(p) => (
                <input
                  {...p}
                  inputMode="decimal"
                  value={s.label.threshold}
                  onChange={(e) => update((d) => void (d.schema.label.threshold = e.target.value))}
                />
              )}
            </Field>
          )}
        </div>
      </Group>
      <div className="grid-2">
        <Field
          ctx={ctx}
          path="schema.split.testFraction"
          label="Held out for evaluation"
          hint="Fraction in (0, 1). Each record is held out or not by a keyed hash of that record alone, so the test size varies slightly around this fraction."
        >
          {(p) => (
            <input
              {...p}
              inputMode="decimal"
              value={s.testFraction}
              onChange={(e) => update((d) => void (d.schema.testFraction = e.target.value))}
            />
          )}
        </Field>
        <Field
          ctx={ctx}
          path="schema.split.salt"
          label="Split salt"
          hint="Key of that hash: 8 to 128 printable characters, no spaces. Public; this browser generated a random one."
        >
          {(p) => (
            <div className="row">
              <input
                {...p}
                className="mono"
                spellCheck={false}
                autoComplete="off"
                value={s.splitSalt}
                onChange={(e) => update((d) => void (d.schema.splitSalt = e.target.value))}
              />
              <button
                type="button"
                className="button button-secondary button-small"
                onClick={() => update((d) => void (d.schema.splitSalt = randomSplitSalt()), 'schema.split.salt')}
              >
                New random salt
              </button>
            </div>
          )}
        </Field>
      </div>
    </>
  );
}

function FeatureRow({
  ctx,
  index,
  feature,
  imputing,
  onChange,
  onRemove,
}: {
  ctx: FieldContext;
  index: number;
  feature: FeatureDraft;
  /** The schema replaces missing cells: each feature declares its replacement. */
  imputing: boolean;
  onChange: (change: (f: FeatureDraft) => void, path: string) => void;
  onRemove: () => void;
}) {
  const base = `schema.features.${index}`;
  return (
    <div className="feature-row">
      <Field ctx={ctx} path={`${base}.name`} label={`Feature ${index + 1} name`}>
        {(p) => (
          <input
            {...p}
            value={feature.name}
            onChange={(e) => onChange((f) => void (f.name = e.target.value), `${base}.name`)}
          />
        )}
      </Field>
      <Field ctx={ctx} path={`${base}.type`} label="Type">
        {(p) => (
          <select
            {...p}
            value={feature.type}
            onChange={(e) => onChange((f) => void (f.type = e.target.value as FeatureDraft['type']), `${base}.type`)}
          >
            <option value="numeric">numeric</option>
            <option value="categorical">categorical</option>
          </select>
        )}
      </Field>
      {feature.type === 'categorical' ? (
        <Field ctx={ctx} path={`${base}.levels`} label="Levels" hint="Comma-separated, fixed for every silo.">
          {(p) => (
            <input
              {...p}
              value={feature.levels}
              onChange={(e) => onChange((f) => void (f.levels = e.target.value), `${base}.levels`)}
            />
          )}
        </Field>
      ) : (
        <div className="feature-scaling">
          <Field ctx={ctx} path={`${base}.scaling.center`} label="Center">
            {(p) => (
              <input
                {...p}
                inputMode="decimal"
                value={feature.center}
                onChange={(e) => onChange((f) => void (f.center = e.target.value), `${base}.scaling.center`)}
              />
            )}
          </Field>
          <Field ctx={ctx} path={`${base}.scaling.scale`} label="Scale">
            {(p) => (
              <input
                {...p}
                inputMode="decimal"
                value={feature.scale}
                onChange={(e) => onChange((f) => void (f.scale = e.target.value), `${base}.scaling.scale`)}
              />
            )}
          </Field>
        </div>
      )}
      {imputing ? (
        <Field ctx={ctx} path={`${base}.impute`} label="If missing">
          {(p) =>
            feature.type === 'categorical' ? (
              <ImputeLevelSelect
                props={p}
                feature={feature}
                onChange={(v) => onChange((f) => void (f.impute = v), `${base}.impute`)}
              />
            ) : (
              <input
                {...p}
                inputMode="decimal"
                value={feature.impute}
                onChange={(e) => onChange((f) => void (f.impute = e.target.value), `${base}.impute`)}
              />
            )
          }
        </Field>
      ) : (
        <div className="feature-spacer" />
      )}
      <button
        type="button"
        className="button button-ghost button-small feature-remove"
        onClick={onRemove}
        aria-label={`Remove feature ${index + 1}${feature.name ? ` (${feature.name})` : ''}`}
      >
        Remove
      </button>
    </div>
  );
}

/** The declared levels to choose from; a value that is no longer a level stays visible so its problem can show. */
function ImputeLevelSelect({
  props,
  feature,
  onChange,
}: {
  props: InputProps;
  feature: FeatureDraft;
  onChange: (level: string) => void;
}) {
  const levels = listOf(feature.levels);
  const stale = feature.impute !== '' && !levels.includes(feature.impute);
  return (
    <select {...props} value={feature.impute} onChange={(e) => onChange(e.target.value)}>
      <option value="">(choose)</option>
      {levels.map((l) => (
        <option key={l} value={l}>
          {l}
        </option>
      ))}
      {stale ? <option value={feature.impute}>{feature.impute} (not a level)</option> : null}
    </select>
  );
}

function NumberField({
  ctx,
  path,
  label,
  value,
  onChange,
  hint,
}: {
  ctx: FieldContext;
  path: string;
  label: string;
  value: string;
  onChange: (v: string) => void;
  hint?: ReactNode;
}) {
  return (
    <Field ctx={ctx} path={path} label={label} hint={hint}>
      {(p) => <input {...p} inputMode="decimal" value={value} onChange={(e) => onChange(e.target.value)} />}
    </Field>
  );
}

function TrainingStep({ ctx, draft, update }: StepProps) {
  const t = draft.training;
  const o = t.serverOptimizer;
  return (
    <>
      <div className="grid-3">
        <NumberField
          ctx={ctx}
          path="training.rounds"
          label="Rounds"
          value={t.rounds}
          onChange={(v) => update((d) => void (d.training.rounds = v))}
        />
        <NumberField
          ctx={ctx}
          path="training.localEpochs"
          label="Local epochs per round"
          value={t.localEpochs}
          onChange={(v) => update((d) => void (d.training.localEpochs = v))}
        />
        <NumberField
          ctx={ctx}
          path="training.batchSize"
          label="Batch size"
          value={t.batchSize}
          onChange={(v) => update((d) => void (d.training.batchSize = v))}
        />
        <NumberField
          ctx={ctx}
          path="training.learningRate"
          label="Local learning rate"
          value={t.learningRate}
          onChange={(v) => update((d) => void (d.training.learningRate = v))}
        />
        <Field ctx={ctx} path="training.algorithm" label="Local algorithm">
          {(p) => (
            <select
              {...p}
              value={t.algorithm}
              onChange={(e) => update((d) => void (d.training.algorithm = e.target.value as 'fedavg' | 'fedprox'))}
            >
              <option value="fedavg">FedAvg</option>
              <option value="fedprox">FedProx</option>
            </select>
          )}
        </Field>
        {t.algorithm === 'fedprox' ? (
          <NumberField
            ctx={ctx}
            path="training.proximalMu"
            label="Proximal μ"
            value={t.proximalMu}
            onChange={(v) => update((d) => void (d.training.proximalMu = v))}
          />
        ) : null}
        <NumberField
          ctx={ctx}
          path="training.initSeed"
          label="Initial model seed"
          value={t.initSeed}
          onChange={(v) => update((d) => void (d.training.initSeed = v))}
        />
      </div>
      <h3>Server optimizer</h3>
      <div className="grid-3">
        <Field ctx={ctx} path="training.serverOptimizer.kind" label="Optimizer">
          {(p) => (
            <select
              {...p}
              value={o.kind}
              onChange={(e) => update((d) => void (d.training.serverOptimizer.kind = e.target.value as typeof o.kind))}
            >
              <option value="fedavg">FedAvg (plain average)</option>
              <option value="fedavgm">FedAvgM (momentum)</option>
              <option value="fedadam">FedAdam</option>
              <option value="fedyogi">FedYogi</option>
              <option value="fedadagrad">FedAdagrad</option>
            </select>
          )}
        </Field>
        <NumberField
          ctx={ctx}
          path="training.serverOptimizer.learningRate"
          label="Server learning rate"
          value={o.learningRate}
          onChange={(v) => update((d) => void (d.training.serverOptimizer.learningRate = v))}
        />
        {o.kind === 'fedavgm' ? (
          <NumberField
            ctx={ctx}
            path="training.serverOptimizer.momentum"
            label="Momentum"
            value={o.momentum}
            onChange={(v) => update((d) => void (d.training.serverOptimizer.momentum = v))}
          />
        ) : null}
        {ADAPTIVE_OPTIMIZERS.includes(o.kind) ? (
          <>
            <NumberField
              ctx={ctx}
              path="training.serverOptimizer.beta1"
              label="β1"
              value={o.beta1}
              onChange={(v) => update((d) => void (d.training.serverOptimizer.beta1 = v))}
            />
            <NumberField
              ctx={ctx}
              path="training.serverOptimizer.beta2"
              label="β2"
              value={o.beta2}
              onChange={(v) => update((d) => void (d.training.serverOptimizer.beta2 = v))}
            />
            <NumberField
              ctx={ctx}
              path="training.serverOptimizer.tau"
              label="τ (adaptivity)"
              value={o.tau}
              onChange={(v) => update((d) => void (d.training.serverOptimizer.tau = v))}
            />
          </>
        ) : null}
      </div>
    </>
  );
}

/** The mechanism for the calculator, once the numbers it needs parse. */
function mechanismShape(d: PlanDraft): PrivacyMechanismShape | null {
  if (d.privacy.mode === 'none') return null;
  const rounds = numberOf(d.training.rounds);
  const localEpochs = numberOf(d.training.localEpochs);
  const delta = numberOf(d.privacy.delta);
  const samplingRate = numberOf(d.privacy.samplingRate);
  const ok = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x) && x > 0;
  if (!ok(rounds) || !ok(localEpochs) || !ok(delta) || delta >= 1) return null;
  if (d.privacy.mode === 'dp-sgd' && (!ok(samplingRate) || samplingRate > 1)) return null;
  return {
    mode: d.privacy.mode,
    rounds: Math.round(rounds),
    localEpochs: Math.round(localEpochs),
    ...(d.privacy.mode === 'dp-sgd' ? { samplingRate } : {}),
    delta,
  };
}

function PrivacyStep({ ctx, draft, update }: StepProps) {
  const p = draft.privacy;
  return (
    <>
      <Field ctx={ctx} path="privacy.mode" label="Differential privacy">
        {(props) => (
          <select
            {...props}
            value={p.mode}
            onChange={(e) =>
              update(
                (d) => void Object.assign(d, withPrivacyMode(d, e.target.value as PlanDraft['privacy']['mode'])),
                'privacy.mode',
              )
            }
          >
            <option value="none">None: updates are sent without noise</option>
            <option value="dp-sgd">DP-SGD: unit = one patient record</option>
            <option value="dp-fedavg">DP-FedAvg: unit = a whole silo</option>
          </select>
        )}
      </Field>
      {p.mode === 'none' ? (
        <div className="notice notice-warning">
          Without differential privacy, the model updates carry no formal guarantee. Stewards see this stated plainly
          before they approve.
        </div>
      ) : (
        <>
          <div className="grid-3">
            <NumberField
              ctx={ctx}
              path="privacy.targetEpsilon"
              label="Target ε (whole study)"
              value={p.targetEpsilon}
              onChange={(v) => update((d) => void (d.privacy.targetEpsilon = v))}
            />
            <NumberField
              ctx={ctx}
              path="privacy.delta"
              label="δ"
              value={p.delta}
              onChange={(v) => update((d) => void (d.privacy.delta = v))}
              hint="Well below 1 / records per silo."
            />
            <NumberField
              ctx={ctx}
              path="privacy.clipNorm"
              label="Clipping norm C"
              value={p.clipNorm}
              onChange={(v) => update((d) => void (d.privacy.clipNorm = v))}
            />
            {p.mode === 'dp-sgd' ? (
              <NumberField
                ctx={ctx}
                path="privacy.samplingRate"
                label="Sampling rate q"
                value={p.samplingRate}
                onChange={(v) => update((d) => void (d.privacy.samplingRate = v))}
                hint="Poisson probability per record and step."
              />
            ) : null}
          </div>
          <Field ctx={ctx} path="privacy.noiseMultiplier" label="Noise multiplier σ (relative to C)">
            {(props) => (
              <div className="row">
                <select
                  className="input-auto"
                  aria-label="How σ is chosen"
                  value={p.noise}
                  onChange={(e) => update((d) => void (d.privacy.noise = e.target.value as 'derive' | 'fixed'))}
                >
                  <option value="derive">Derived by the hub from the target ε</option>
                  <option value="fixed">Fixed value</option>
                </select>
                {p.noise === 'fixed' ? (
                  <input
                    {...props}
                    inputMode="decimal"
                    className="input-narrow"
                    value={p.noiseMultiplier}
                    onChange={(e) => update((d) => void (d.privacy.noiseMultiplier = e.target.value))}
                  />
                ) : (
                  <input {...props} className="input-narrow" value="derive" readOnly aria-readonly="true" />
                )}
              </div>
            )}
          </Field>
          <PrivacyCalculator
            shape={mechanismShape(draft)}
            targetEpsilon={p.targetEpsilon}
            noiseMultiplier={p.noiseMultiplier}
            onUseNoise={(sigma) =>
              update((d) => {
                d.privacy.noise = 'fixed';
                d.privacy.noiseMultiplier = String(sigma);
              }, 'privacy.noiseMultiplier')
            }
          />
          <div className="notice notice-info">
            The hub prices the plan when it is saved, before any steward approves it: it derives σ when asked to and
            refuses a target it cannot meet, with the reason.
          </div>
        </>
      )}
    </>
  );
}

const EVALUATION_CHOICES: Record<EvaluationReleaseMode, string> = {
  none: 'None: each hospital evaluates for its own log only',
  noisy: 'Noisy score histograms: DP estimates, charged to the privacy budget',
  exact: 'Exact metrics: released without differential privacy',
};

/** What a silo sends besides its update: each choice says plainly whether it is released without DP. */
function ReleaseStep({ ctx, draft, update }: StepProps) {
  const r = draft.release;
  const mode = draft.privacy.mode;
  const choose = (change: (release: ReleaseDraft) => void, path: string) =>
    update((d) => {
      change(d.release);
      d.release.chosen = true;
    }, path);
  return (
    <>
      <p className="hint">
        Besides its model update, a hospital sends only what this step lists. Whatever is released without differential
        privacy is outside the guarantee; each data steward sees it listed before approving.
      </p>
      {mode === 'none' ? (
        <Notice tone="warning">
          This plan uses no differential privacy: the model updates themselves are released without it too.
        </Notice>
      ) : null}
      {mode === 'dp-fedavg' ? (
        <Notice tone="warning">
          With DP-FedAvg the hub adds the noise: each hospital&apos;s clipped update reaches the hub without it.
        </Notice>
      ) : null}
      <Field
        ctx={ctx}
        path="release.evaluation.mode"
        label="Evaluation results"
        hint={
          r.evaluation === 'exact'
            ? 'Released without differential privacy: test-split loss, accuracy, AUC, and the number of test records and of positives.'
            : r.evaluation === 'noisy'
              ? 'Per true label, a histogram of the predicted probability over the test records, each count with noise; the hub shows accuracy and AUC estimated from them, and no loss.'
              : mode === 'dp-sgd'
                ? undefined
                : 'Noisy evaluation protects single records: it needs DP-SGD.'
        }
      >
        {(p) => (
          <select
            {...p}
            value={r.evaluation}
            onChange={(e) =>
              choose((x) => void (x.evaluation = e.target.value as EvaluationReleaseMode), 'release.evaluation.mode')
            }
          >
            <option value="none">{EVALUATION_CHOICES.none}</option>
            {/* Offered with DP-SGD only; a plan that already holds it keeps it visible, with its problem. */}
            <option value="noisy" disabled={mode !== 'dp-sgd' && r.evaluation !== 'noisy'}>
              {mode === 'dp-sgd' ? EVALUATION_CHOICES.noisy : 'Noisy score histograms (needs DP-SGD)'}
            </option>
            <option value="exact">{EVALUATION_CHOICES.exact}</option>
          </select>
        )}
      </Field>
      {r.evaluation !== 'none' ? (
        <div className="grid-2">
          <Field ctx={ctx} path="release.evaluation.rounds" label="Models evaluated">
            {(p) => (
              <select
                {...p}
                value={r.evaluationRounds}
                onChange={(e) =>
                  choose(
                    (x) => void (x.evaluationRounds = e.target.value as 'final' | 'every'),
                    'release.evaluation.rounds',
                  )
                }
              >
                <option value="final">The final model only</option>
                <option value="every">Every round&apos;s input model and the final model</option>
              </select>
            )}
          </Field>
          {r.evaluation === 'noisy' ? (
            <NumberField
              ctx={ctx}
              path="release.evaluation.scoreBins"
              label="Score bins"
              value={r.scoreBins}
              onChange={(v) => choose((x) => void (x.scoreBins = v), 'release.evaluation.scoreBins')}
              hint="2 to 20 equal bins of the predicted probability. Fewer bins: less noise in the totals, a coarser AUC."
            />
          ) : null}
        </div>
      ) : null}
      {r.evaluation === 'noisy' && mode === 'dp-sgd' ? <DraftEvaluationNoise draft={draft} /> : null}
      <Field
        ctx={ctx}
        path="release.trainingExamples"
        label="Training-record count"
        hint={
          r.trainingExamples === 'exact'
            ? 'Released without differential privacy: the exact number of records each hospital trained on, used to weight the average.'
            : 'The hub averages the updates with equal weights.'
        }
      >
        {(p) => (
          <select
            {...p}
            value={r.trainingExamples}
            onChange={(e) =>
              choose((x) => void (x.trainingExamples = e.target.value as 'none' | 'exact'), 'release.trainingExamples')
            }
          >
            <option value="none">None: equal weights in the average</option>
            <option value="exact">Exact count: released without differential privacy</option>
          </select>
        )}
      </Field>
      {r.chosen ? (
        <button
          type="button"
          className="button button-secondary button-small"
          onClick={() =>
            update((d) => void (d.release = defaultReleaseDraft(d.privacy.mode)), 'release.evaluation.mode')
          }
        >
          Use the defaults for this privacy choice
        </button>
      ) : (
        <p className="hint">
          These are the defaults for this privacy choice; they follow it if you change it, until you choose here.
        </p>
      )}
    </>
  );
}

/** The noise the hub will derive for the draft's noisy evaluation, once target ε, δ and rounds are numbers. */
function DraftEvaluationNoise({ draft }: { draft: PlanDraft }) {
  const target = numberOf(draft.privacy.targetEpsilon);
  const delta = numberOf(draft.privacy.delta);
  const rounds = numberOf(draft.training.rounds);
  const ok = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x) && x > 0;
  const releases = ok(rounds) ? evaluationReleaseCount(Math.round(rounds), draft.release.evaluationRounds) : null;
  const noise = useMemo(
    () =>
      ok(target) && ok(delta) && delta < 1 && releases !== null ? evaluationNoiseFor(target, delta, releases) : null,
    [target, delta, releases],
  );
  return (
    <p className="hint" data-testid="evaluation-noise">
      {noise === null
        ? 'Complete the target ε, δ and the rounds to see the evaluation noise.'
        : noise.ok
          ? `Each count gets discrete Gaussian noise of standard deviation ${formatSignificant(noise.value)} records: ${releases} release${releases === 1 ? '' : 's'} within the target ε = ${target} at δ = ${delta}. Test records never train, so this spends the budget alongside training, not on top of it; the hub derives the same value when the plan is saved.`
          : `The evaluation noise cannot be derived: ${noise.message}`}
    </p>
  );
}

function ParticipantsStep({ ctx, draft, update, silos }: StepProps & { silos: SiloView[] }) {
  const known = new Set(silos.map((s) => s.id));
  const unknown = draft.silos.filter((id) => !known.has(id));
  return (
    <>
      <Group ctx={ctx} path="silos" legend={`Invited silos (${draft.silos.length} of ${silos.length})`}>
        {silos.length === 0 ? (
          <p className="muted">No silo is registered yet: register the hospitals first.</p>
        ) : (
          <ul className="checklist">
            {silos.map((s) => {
              const checked = draft.silos.includes(s.id);
              const id = `invite-${s.id}`;
              return (
                <li key={s.id}>
                  <input
                    id={id}
                    type="checkbox"
                    checked={checked}
                    disabled={s.status === 'suspended' && !checked}
                    onChange={(e) =>
                      update((d) => {
                        d.silos = e.target.checked ? [...d.silos, s.id] : d.silos.filter((x) => x !== s.id);
                      }, 'silos')
                    }
                  />
                  <label htmlFor={id}>
                    {s.name}{' '}
                    <span className="muted small">
                      {s.status}
                      {s.status === 'suspended' ? ' (cannot be invited)' : ''}
                    </span>
                  </label>
                </li>
              );
            })}
          </ul>
        )}
        {unknown.length > 0 ? <p className="muted small">Also invited, not listed: {unknown.join(', ')}</p> : null}
      </Group>
      <div className="grid-2">
        <NumberField
          ctx={ctx}
          path="participation.minSilosPerRound"
          label="Minimum silos per round"
          value={draft.participation.minSilosPerRound}
          onChange={(v) => update((d) => void (d.participation.minSilosPerRound = v))}
        />
        <NumberField
          ctx={ctx}
          path="participation.roundDeadlineSeconds"
          label="Round deadline (seconds)"
          value={draft.participation.roundDeadlineSeconds}
          onChange={(v) => update((d) => void (d.participation.roundDeadlineSeconds = v))}
        />
        <NumberField
          ctx={ctx}
          path="participation.maxRoundRetries"
          label="Retries of a round that misses its minimum"
          value={draft.participation.maxRoundRetries}
          onChange={(v) => update((d) => void (d.participation.maxRoundRetries = v))}
        />
        <Field ctx={ctx} path="participation.onSiloFailure" label="When a silo fails">
          {(p) => (
            <select
              {...p}
              value={draft.participation.onSiloFailure}
              onChange={(e) =>
                update((d) => void (d.participation.onSiloFailure = e.target.value as 'continue' | 'fail-study'))
              }
            >
              <option value="continue">Continue without it</option>
              <option value="fail-study">Fail the study</option>
            </select>
          )}
        </Field>
      </div>
    </>
  );
}

function ReviewStep({
  problems,
  plan,
  onJump,
}: {
  problems: PlacedProblem[];
  plan: StudyPlan | null;
  onJump: (p: PlacedProblem) => void;
}) {
  if (!plan) {
    return (
      <div className="notice notice-error" role="alert">
        <p>
          <strong>The plan has {problems.length} problem(s).</strong> Fix them before sending it:
        </p>
        <ul className="problem-list">
          {problems.map((p) => (
            <li key={p.problem}>
              <button type="button" className="link-button" onClick={() => onJump(p)}>
                {p.problem}
              </button>
            </li>
          ))}
        </ul>
      </div>
    );
  }
  return (
    <>
      <ReleaseConsent plan={plan} evaluationNoise={plannedEvaluationNoise(plan)} />
      <p>This is what each invited silo&apos;s data steward will read and approve, byte for byte:</p>
      <pre className="code plan-text" tabIndex={0}>
        {describePlan(plan).join('\n')}
      </pre>
      {problems.length > 0 ? (
        <div className="notice notice-error" role="alert">
          <ul className="problem-list">
            {problems.map((p) => (
              <li key={p.problem}>
                <button type="button" className="link-button" onClick={() => onJump(p)}>
                  {p.problem}
                </button>
              </li>
            ))}
          </ul>
        </div>
      ) : null}
    </>
  );
}
