import { resolve } from 'node:path';

/**
 * The UCI column names and the Fed-Heart-Disease schema (FLamby's standard preprocessing) are defined once, in
 * @tessera/protocol, and re-exported here beside the data files they describe.
 */
export { HEART_DISEASE_COLUMNS, HEART_DISEASE_SCHEMA } from '@tessera/protocol';

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
