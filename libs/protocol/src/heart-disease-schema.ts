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
 * Fed-Heart-Disease preprocessing after FLamby (Ogier du Terrail et al., NeurIPS 2022 Datasets & Benchmarks;
 * flamby/datasets/fed_heart_disease/dataset.py): drop slope, ca and thal, drop rows still holding '?', one-hot cp
 * (levels 1–4) and restecg (levels 0–2) dropping the first level, label num > 0, 13 features in FLamby's order.
 *
 * Two departures, both for differential privacy (docs/privacy.md, "From the raw file to the wire"): FLamby splits
 * each hospital's file by a seeded stratified shuffle and standardises with the training split's mean and standard
 * deviation, and both depend on every record of the file. Here the split is a keyed hash of each record (about 34%
 * held out) and the scaling constants are declared in the plan: round clinical reference values a study designer
 * writes down without looking at any hospital's file (age in years, blood pressure in mm Hg, cholesterol in mg/dl,
 * heart rate in beats per minute, ST depression in mm; 0/1 columns mapped to −1/+1), not statistics of the data.
 */
export const HEART_DISEASE_SCHEMA: FeatureSchema = {
  columns: [...HEART_DISEASE_COLUMNS],
  missingValues: ['?'],
  features: [
    { name: 'age', type: 'numeric', scaling: { center: 55, scale: 10 } },
    { name: 'sex', type: 'numeric', scaling: { center: 0.5, scale: 0.5 } },
    { name: 'trestbps', type: 'numeric', scaling: { center: 130, scale: 20 } },
    { name: 'chol', type: 'numeric', scaling: { center: 220, scale: 60 } },
    { name: 'fbs', type: 'numeric', scaling: { center: 0.5, scale: 0.5 } },
    { name: 'thalach', type: 'numeric', scaling: { center: 140, scale: 25 } },
    { name: 'exang', type: 'numeric', scaling: { center: 0.5, scale: 0.5 } },
    { name: 'oldpeak', type: 'numeric', scaling: { center: 1, scale: 1 } },
    { name: 'cp', type: 'categorical', levels: ['1', '2', '3', '4'] },
    { name: 'restecg', type: 'categorical', levels: ['0', '1', '2'] },
  ],
  label: { column: 'num', operator: '>', threshold: 0 },
  missing: 'drop-rows',
  split: { testFraction: 0.34, salt: 'fed-heart-disease/split/v1' },
};
