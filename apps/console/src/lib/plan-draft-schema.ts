import { isImageSchema, type DataSchema, type FeatureColumn } from '@tessera/protocol';
import { listOf, numberOf, type FeatureDraft, type PlanDraft } from './plan-draft-fields.js';

// The draft's data schema: feature rows to the plan, and a plan's schema back to editable text.

/**
 * One feature as the plan declares it. Imputation values are part of the plan only when the schema imputes (the
 * wizard hides them otherwise, and a hidden value must not reach the steward). Scaling is declared when either
 * constant is typed, so a half-typed pair is reported rather than silently dropped.
 */
export function featureToPlan(f: FeatureDraft, imputing: boolean): Record<string, unknown> {
  const impute = f.impute.trim();
  if (f.type === 'categorical') {
    const out: Record<string, unknown> = { name: f.name.trim(), type: 'categorical', levels: listOf(f.levels) };
    if (imputing && impute !== '') out.impute = impute;
    return out;
  }
  const out: Record<string, unknown> = { name: f.name.trim(), type: 'numeric' };
  if (f.center.trim() !== '' || f.scale.trim() !== '') {
    out.scaling = { center: numberOf(f.center), scale: numberOf(f.scale) };
  }
  if (imputing && impute !== '') out.impute = numberOf(impute);
  return out;
}

function labelToDraft(label: DataSchema['label']): PlanDraft['schema']['label'] {
  switch (label.operator) {
    case 'in':
      return { column: label.column, operator: 'in', threshold: '', values: label.values.join(', ') };
    case 'class':
      return { column: label.column, operator: 'class', threshold: '', values: label.classes.join(', ') };
    case 'value':
      return {
        column: label.column,
        operator: 'value',
        threshold: '',
        values: '',
        ...(label.scaling ? { scaling: { ...label.scaling } } : {}),
      };
    default:
      return { column: label.column, operator: label.operator, threshold: String(label.threshold), values: '' };
  }
}

/** A plan's feature schema as the wizard's editable draft (text fields); an image schema keeps only its label. */
export function schemaToDraft(schema: DataSchema): PlanDraft['schema'] {
  const label = schema.label;
  if (isImageSchema(schema)) {
    return {
      hasHeader: true,
      columns: '',
      missingValues: (schema.missingValues ?? []).join(', '),
      features: [],
      label: labelToDraft(label),
      missing: 'drop-rows',
      testFraction: String(schema.split.testFraction),
      splitSalt: schema.split.salt,
    };
  }
  return {
    hasHeader: schema.columns === undefined,
    columns: (schema.columns ?? []).join(', '),
    missingValues: (schema.missingValues ?? []).join(', '),
    features: schema.features.map(featureToDraft),
    label: labelToDraft(label),
    missing: schema.missing,
    testFraction: String(schema.split.testFraction),
    splitSalt: schema.split.salt,
  };
}

function featureToDraft(f: FeatureColumn): FeatureDraft {
  const blank: FeatureDraft = { name: f.name, type: f.type, levels: '', center: '', scale: '', impute: '' };
  if (f.type === 'categorical') return { ...blank, levels: f.levels.join(', '), impute: f.impute ?? '' };
  return {
    ...blank,
    center: f.scaling ? String(f.scaling.center) : '',
    scale: f.scaling ? String(f.scaling.scale) : '',
    impute: f.impute === undefined ? '' : String(f.impute),
  };
}

/** An empty feature row. */
export function blankFeature(): FeatureDraft {
  return { name: '', type: 'numeric', levels: '', center: '', scale: '', impute: '' };
}
