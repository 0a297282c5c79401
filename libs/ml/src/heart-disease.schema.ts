import { resolve } from 'node:path';
import type { TabularSchema } from './tabular-data';

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
export const HEART_DISEASE_SCHEMA: TabularSchema = {
  columns: HEART_DISEASE_COLUMNS,
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

/** One of the four hospitals, with the row counts the standard preprocessing must give. */
export interface HeartDiseaseCenter {
  readonly id: 'cleveland' | 'hungarian' | 'switzerland' | 'va';
  readonly hospital: string;
  readonly file: string;
  /** Rows after cleaning, then the train/test sizes (data/heart-disease/SOURCE.md). */
  readonly rows: number;
  readonly train: number;
  readonly test: number;
}

export const HEART_DISEASE_CENTERS: readonly HeartDiseaseCenter[] = [
  {
    id: 'cleveland',
    hospital: 'Cleveland Clinic Foundation',
    file: 'processed.cleveland.data',
    rows: 303,
    train: 199,
    test: 104,
  },
  {
    id: 'hungarian',
    hospital: 'Hungarian Institute of Cardiology, Budapest',
    file: 'processed.hungarian.data',
    rows: 261,
    train: 172,
    test: 89,
  },
  {
    id: 'switzerland',
    hospital: 'University Hospitals Zurich and Basel',
    file: 'processed.switzerland.data',
    rows: 46,
    train: 30,
    test: 16,
  },
  { id: 'va', hospital: 'V.A. Medical Center, Long Beach', file: 'processed.va.data', rows: 130, train: 85, test: 45 },
];

/**
 * Directory holding the four UCI files and SOURCE.md (licence CC BY 4.0 and attribution), shipped with this
 * library: libs/ml/data/heart-disease, found from both src/ (tests) and dist/ (built code).
 */
export function heartDiseaseDataDirectory(): string {
  return resolve(__dirname, '..', 'data', 'heart-disease');
}
