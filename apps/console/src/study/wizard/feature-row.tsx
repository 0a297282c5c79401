import { listOf, type FeatureDraft } from '../../lib/plan-draft.js';
import { Field, NumberField, TextField, type InputProps } from './wizard-fields.js';

/** The declared levels to choose from; a value that is no longer a level stays visible so its problem can show. */
function ImputeLevelSelect({ props, feature }: { props: InputProps; feature: FeatureDraft }) {
  const levels = listOf(feature.levels);
  const stale = feature.impute !== '' && !levels.includes(feature.impute);
  return (
    <select {...props}>
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

/** One feature of the schema: its column, type, declared encoding and (when the schema imputes) its replacement. */
export function FeatureRow({
  index,
  feature,
  imputing,
  onRemove,
}: {
  index: number;
  feature: FeatureDraft;
  /** The schema replaces missing cells: each feature declares its replacement. */
  imputing: boolean;
  onRemove: () => void;
}) {
  const base = `schema.features.${index}`;
  const name = `schema.features.${index}` as const;
  return (
    <div className="feature-row">
      <TextField path={`${base}.name`} name={`${name}.name`} label={`Feature ${index + 1} name`} />
      <Field path={`${base}.type`} name={`${name}.type`} label="Type">
        {(p) => (
          <select {...p}>
            <option value="numeric">numeric</option>
            <option value="categorical">categorical</option>
          </select>
        )}
      </Field>
      {feature.type === 'categorical' ? (
        <TextField
          path={`${base}.levels`}
          name={`${name}.levels`}
          label="Levels"
          hint="Comma-separated, fixed for every silo."
        />
      ) : (
        <div className="feature-scaling">
          <NumberField path={`${base}.scaling.center`} name={`${name}.center`} label="Center" />
          <NumberField path={`${base}.scaling.scale`} name={`${name}.scale`} label="Scale" />
        </div>
      )}
      {imputing ? (
        <Field path={`${base}.impute`} name={`${name}.impute`} label="If missing">
          {(p) =>
            feature.type === 'categorical' ? (
              <ImputeLevelSelect props={p} feature={feature} />
            ) : (
              <input {...p} inputMode="decimal" />
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
