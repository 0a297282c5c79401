import { useFieldArray, useFormContext } from 'react-hook-form';
import { blankFeature, randomSplitSalt, type LabelOperator, type PlanDraft } from '../../lib/plan-draft.js';
import { FeatureRow } from './feature-row.js';
import { useWizard } from './wizard-context.js';
import { Field, Group, NumberField, TextField } from './wizard-fields.js';
import type { WizardStep } from './wizard-step.js';

const OPERATORS: LabelOperator[] = ['>', '>=', '<', '<=', '==', '!=', 'in', 'class', 'value'];
/** How an operator reads in the select: binary rules as symbols, the task-defining ones in words. */
const OPERATOR_WORDS: Partial<Record<LabelOperator, string>> = {
  in: 'is one of',
  class: 'is a class (multi-class: a network model)',
  value: 'is the value (regression: a network model)',
};

function FeatureList() {
  const { draft, touch } = useWizard();
  const features = useFieldArray<PlanDraft, 'schema.features'>({ name: 'schema.features' });
  return (
    <Group path="schema.features" legend={`Features (${draft.schema.features.length})`}>
      <p className="hint">
        A numeric feature is encoded as (x − center) / scale with the constants declared here, in the column&apos;s own
        unit (leave both empty to use the raw value); a categorical one as indicators of its fixed levels. These
        constants are part of the plan and never computed from a hospital&apos;s file: a mean, a spread or a most
        frequent value of the file would depend on every record in it, and the privacy guarantee would no longer hold.
      </p>
      <div className="features">
        {features.fields.map((f, i) => (
          <FeatureRow
            key={f.id}
            index={i}
            feature={draft.schema.features[i] ?? blankFeature()}
            imputing={draft.schema.missing === 'impute'}
            onRemove={() => {
              features.remove(i);
              touch('schema.features');
            }}
          />
        ))}
      </div>
      <button
        type="button"
        className="button button-secondary button-small"
        onClick={() => features.append(blankFeature())}
      >
        Add a feature
      </button>
    </Group>
  );
}

function LabelFields() {
  const { draft } = useWizard();
  return (
    <Group path="schema.label" legend="Label (the outcome to predict)">
      <div className="grid-3">
        <TextField path="schema.label.column" name="schema.label.column" label="Column" />
        <Field path="schema.label.operator" name="schema.label.operator" label="Positive when">
          {(p) => (
            <select {...p}>
              {OPERATORS.map((o) => (
                <option key={o} value={o}>
                  {OPERATOR_WORDS[o] ?? o}
                </option>
              ))}
            </select>
          )}
        </Field>
        {draft.schema.label.operator === 'in' ? (
          <TextField path="schema.label.values" name="schema.label.values" label="Values" hint="Comma-separated." />
        ) : draft.schema.label.operator === 'class' ? (
          <TextField
            path="schema.label.classes"
            name="schema.label.values"
            label="Classes"
            hint="Comma-separated, in class order: the first is class 0. Declared here, never read from a silo's file."
          />
        ) : draft.schema.label.operator === 'value' ? (
          <p className="hint">The label is the column's number; the network's task must be a regression.</p>
        ) : (
          <NumberField path="schema.label.threshold" name="schema.label.threshold" label="Threshold" />
        )}
      </div>
    </Group>
  );
}

function SplitFields() {
  const { setValue } = useFormContext<PlanDraft>();
  const { touch } = useWizard();
  return (
    <div className="grid-2">
      <NumberField
        path="schema.split.testFraction"
        name="schema.testFraction"
        label="Held out for evaluation"
        hint="Fraction in (0, 1). Each record is held out or not by a keyed hash of that record alone, so the test size varies slightly around this fraction."
      />
      <Field
        path="schema.split.salt"
        name="schema.splitSalt"
        label="Split salt"
        hint="Key of that hash: 8 to 128 printable characters, no spaces. Public; this browser generated a random one."
      >
        {(p) => (
          <div className="row">
            <input {...p} className="mono" spellCheck={false} autoComplete="off" />
            <button
              type="button"
              className="button button-secondary button-small"
              onClick={() => {
                setValue('schema.splitSalt', randomSplitSalt());
                touch('schema.split.salt');
              }}
            >
              New random salt
            </button>
          </div>
        )}
      </Field>
    </div>
  );
}

function DataFields() {
  const { register } = useFormContext<PlanDraft>();
  const { draft } = useWizard();
  return (
    <>
      <div className="field field-check">
        <input id="plan-schema-hasHeader" type="checkbox" {...register('schema.hasHeader')} />
        <label htmlFor="plan-schema-hasHeader">The data files start with a header row</label>
      </div>
      {!draft.schema.hasHeader ? (
        <TextField
          path="schema.columns"
          name="schema.columns"
          label="Columns, in file order"
          hint="Comma-separated names of every column of the headerless files."
          rows={2}
        />
      ) : null}
      <div className="grid-2">
        <TextField
          path="schema.missingValues"
          name="schema.missingValues"
          label="Missing-value markers"
          hint="Comma-separated, e.g. ?, NA (optional)."
        />
        <Field path="schema.missing" name="schema.missing" label="Rows with missing values">
          {(p) => (
            <select {...p}>
              <option value="drop-rows">Drop them</option>
              <option value="impute">Replace with each feature&apos;s declared value</option>
            </select>
          )}
        </Field>
      </div>
      <FeatureList />
      <LabelFields />
      <SplitFields />
    </>
  );
}

/** The plan paths of the data step's fields for this draft, in display order. */
function dataFieldPaths(d: PlanDraft): string[] {
  const paths = d.schema.hasHeader ? [] : ['schema.columns'];
  paths.push('schema.missingValues', 'schema.missing', 'schema.features');
  d.schema.features.forEach((f, i) => {
    const base = `schema.features.${i}`;
    paths.push(`${base}.name`, `${base}.type`);
    if (f.type === 'categorical') paths.push(`${base}.levels`);
    else paths.push(`${base}.scaling.center`, `${base}.scaling.scale`);
    if (d.schema.missing === 'impute') paths.push(`${base}.impute`);
  });
  paths.push('schema.label', 'schema.label.column', 'schema.label.operator');
  const operator = d.schema.label.operator;
  if (operator === 'in') paths.push('schema.label.values');
  else if (operator === 'class') paths.push('schema.label.classes');
  else if (operator !== 'value') paths.push('schema.label.threshold');
  paths.push('schema.split.testFraction', 'schema.split.salt');
  return paths;
}

export const dataStep: WizardStep = {
  id: 'data',
  title: 'Data schema',
  owns: ['schema'],
  fieldPaths: dataFieldPaths,
  Component: DataFields,
};
