import { resolve } from 'node:path';

/**
 * The UCI column names and the Fed-Heart-Disease schema (FLamby's preprocessing, with the split and the scaling
 * declared in the plan rather than computed from each hospital's file) are defined once, in @tessera/protocol, and
 * re-exported here beside the data files they describe.
 */
export { HEART_DISEASE_COLUMNS, HEART_DISEASE_SCHEMA } from '@tessera/protocol';

/** One of the four hospitals, with the number of rows the preprocessing must keep. */
export interface HeartDiseaseCenter {
  readonly id: 'cleveland' | 'hungarian' | 'switzerland' | 'va';
  readonly hospital: string;
  readonly file: string;
  /**
   * Rows left after cleaning (data/heart-disease/SOURCE.md). How many of them are held out for testing is not a
   * constant: each record is held out by its own keyed hash, about 34% of them (FLamby's 66/34).
   */
  readonly rows: number;
}

export const HEART_DISEASE_CENTERS: readonly HeartDiseaseCenter[] = [
  { id: 'cleveland', hospital: 'Cleveland Clinic Foundation', file: 'processed.cleveland.data', rows: 303 },
  {
    id: 'hungarian',
    hospital: 'Hungarian Institute of Cardiology, Budapest',
    file: 'processed.hungarian.data',
    rows: 261,
  },
  {
    id: 'switzerland',
    hospital: 'University Hospitals Zurich and Basel',
    file: 'processed.switzerland.data',
    rows: 46,
  },
  { id: 'va', hospital: 'V.A. Medical Center, Long Beach', file: 'processed.va.data', rows: 130 },
];

/**
 * Directory holding the four UCI files and SOURCE.md (licence CC BY 4.0 and attribution), shipped with this
 * library: libs/ml/data/heart-disease, found from both src/ (tests) and dist/ (built code).
 */
export function heartDiseaseDataDirectory(): string {
  return resolve(__dirname, '..', 'data', 'heart-disease');
}
