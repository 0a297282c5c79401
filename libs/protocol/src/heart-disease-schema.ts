import type { FeatureSchema } from './study-plan';

// The standard Fed-Heart-Disease schema lives here, in the shared protocol, so the ML library, the hub's demo and
// the web console's wizard all use one definition of it.

/** Column names of the headerless UCI "processed.*.data" files, in file order (data/heart-disease/SOURCE.md). */
export const HEART_DISEASE_COLUMNS = [
  'age',
  'sex',
  'cp',
  'trestbps',
  'chol',
  'fbs',
  'restecg',
  'thalach',
  'exang',
  'oldpeak',
  'slope',
  'ca',
  'thal',
  'num',
] as const;

/**
 * Fed-Heart-Disease preprocessing (FLamby, Ogier du Terrail et al., NeurIPS 2022 Datasets & Benchmarks;
 * flamby/datasets/fed_heart_disease/dataset.py): drop slope, ca and thal, drop rows still holding '?', one-hot cp
 * (levels 1–4) and restecg (levels 0–2) dropping the first level, label num > 0, per-hospital 66/34 split
 * stratified when both classes have more than 2 rows, standardisation with the hospital's training mean and std.
 * 13 features, in FLamby's order (numeric columns first, then the dummies as pandas.get_dummies appends them).
 * Levels are fixed so that every hospital yields the same 13 columns. The split seed (43, FLamby's random_state)
 * drives our own generator, so the sizes match FLamby's but not the exact rows.
 */
export const HEART_DISEASE_SCHEMA: FeatureSchema = {
  columns: [...HEART_DISEASE_COLUMNS],
  missingValues: ['?'],
  features: [
    { name: 'age', type: 'numeric' },
    { name: 'sex', type: 'numeric' },
    { name: 'trestbps', type: 'numeric' },
    { name: 'chol', type: 'numeric' },
    { name: 'fbs', type: 'numeric' },
    { name: 'thalach', type: 'numeric' },
    { name: 'exang', type: 'numeric' },
    { name: 'oldpeak', type: 'numeric' },
    { name: 'cp', type: 'categorical', levels: ['1', '2', '3', '4'] },
    { name: 'restecg', type: 'categorical', levels: ['0', '1', '2'] },
  ],
  label: { column: 'num', operator: '>', threshold: 0 },
  missing: 'drop-rows',
  split: { testFraction: 0.34, seed: 43, stratify: true },
  standardize: true,
};
