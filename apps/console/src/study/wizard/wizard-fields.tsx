import type { FocusEvent, ReactNode } from 'react';
import { useFormContext, type ChangeHandler, type FieldPath, type RefCallBack } from 'react-hook-form';
import type { PlanDraft } from '../../lib/plan-draft.js';
import { problemTextAt } from '../../lib/plan-problems.js';
import { useWizard } from './wizard-context.js';

// A field is identified by the plan path it edits (its problems are reported under that path) and, when it is a
// plain input, by the draft value it holds (`name`, registered with the form). The two differ where the draft keeps
// text the plan nests differently (schema.testFraction is the plan's schema.split.testFraction).

/** The element id of a plan path's field: the label, the error region and focusing a problem's field use it. */
export function fieldId(path: string): string {
  return `plan-${path.replace(/\./g, '-')}`;
}

/** Props every input gets from its Field: id, label link, error link, the plan path and, if named, its form binding. */
export interface InputProps {
  id: string;
  'data-path': string;
  'aria-invalid'?: true;
  'aria-describedby': string;
  onBlur: (event: FocusEvent<HTMLElement>) => void;
  /** Editing a field counts as touching it: its problems show from the first change. */
  onChangeCapture: () => void;
  name?: string;
  ref?: RefCallBack;
  onChange?: ChangeHandler;
}

function ProblemList({ id, path, label }: { id: string; path: string; label: string }) {
  const { shown } = useWizard();
  return (
    <div id={`${id}-error`} className="field-error" aria-live="polite">
      {shown(path).map((p) => (
        <p key={p.problem}>{problemTextAt(p, label)}</p>
      ))}
    </div>
  );
}

export interface FieldProps {
  /** The plan path whose problems this field shows. */
  path: string;
  /** The draft value the input holds (registered with the form); absent when the step binds the input itself. */
  name?: FieldPath<PlanDraft>;
  /** Runs after the form took the new value (e.g. a choice that resets another part of the draft). */
  onValueChange?: (value: string) => void;
  label: string;
  hint?: ReactNode;
  className?: string;
  children: (props: InputProps) => ReactNode;
}

export function Field({ path, name, onValueChange, label, hint, className, children }: FieldProps) {
  const { register } = useFormContext<PlanDraft>();
  const { shown, touch } = useWizard();
  const id = fieldId(path);
  const invalid = shown(path).length > 0;
  const binding = name
    ? register(
        name,
        onValueChange ? { onChange: (e: { target: { value: string } }) => onValueChange(e.target.value) } : {},
      )
    : undefined;
  const props: InputProps = {
    id,
    'data-path': path,
    ...(invalid ? { 'aria-invalid': true as const } : {}),
    'aria-describedby': [`${id}-error`, hint ? `${id}-hint` : ''].filter(Boolean).join(' '),
    onChangeCapture: () => touch(path),
    onBlur: (event) => {
      touch(path);
      void binding?.onBlur(event);
    },
    ...(binding ? { name: binding.name, ref: binding.ref, onChange: binding.onChange } : {}),
  };
  return (
    <div className={`field ${className ?? ''} ${invalid ? 'field-invalid' : ''}`}>
      <label htmlFor={id}>{label}</label>
      {children(props)}
      {hint ? (
        <p id={`${id}-hint`} className="hint">
          {hint}
        </p>
      ) : null}
      <ProblemList id={id} path={path} label={label} />
    </div>
  );
}

/** A text input for a number (kept as typed: the plan check says what is wrong with it). */
export function NumberField(props: Omit<FieldProps, 'children'>) {
  return <Field {...props}>{(p) => <input {...p} inputMode="decimal" />}</Field>;
}

/** A text input or text area bound to its draft value. */
export function TextField({ rows, ...props }: Omit<FieldProps, 'children'> & { rows?: number }) {
  return <Field {...props}>{(p) => (rows ? <textarea {...p} rows={rows} /> : <input {...p} />)}</Field>;
}

/** A group of inputs (a list, a union) whose problems show above its members. */
export function Group({ path, legend, children }: { path: string; legend: string; children: ReactNode }) {
  const id = fieldId(path);
  return (
    <fieldset className="group" data-path={path} aria-describedby={`${id}-error`} id={id}>
      <legend>{legend}</legend>
      <ProblemList id={id} path={path} label={legend} />
      {children}
    </fieldset>
  );
}
