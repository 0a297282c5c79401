import {
  prepareTabularData,
  TabularDataErrorCode,
  TabularDataException,
  type PreparedTabularData,
  type TabularSchema,
} from '@tessera/ml';
import type { FailureReport } from '@tessera/protocol';

/** Why a study cannot use this silo's data, in words that name columns and rows but never a value. */
export interface DataProblem {
  code: Extract<FailureReport['code'], 'DATA_SCHEMA_MISMATCH' | 'DATA_UNREADABLE'>;
  message: string;
}

export type DatasetResult = { ok: true; data: PreparedTabularData } | { ok: false; problem: DataProblem };

/**
 * Maps @tessera/ml's data errors to a failure report. The message is composed here from the error's code and the
 * column name it carries; ml's own messages are value-free by contract (row numbers only), and are used as is only
 * for structural problems.
 */
export function dataProblemOf(err: unknown): DataProblem {
  if (err instanceof TabularDataException) {
    const column = err.column;
    switch (err.code) {
      case TabularDataErrorCode.MissingColumn:
        return {
          code: 'DATA_SCHEMA_MISMATCH',
          message: `the silo's data has no column '${column ?? '?'}', which the plan's schema needs`,
        };
      case TabularDataErrorCode.NotNumeric:
        return {
          code: 'DATA_SCHEMA_MISMATCH',
          message: `column '${column ?? '?'}' holds non-numeric values where the plan's schema expects numbers`,
        };
      case TabularDataErrorCode.UnknownLevel:
        return {
          code: 'DATA_SCHEMA_MISMATCH',
          message: `column '${column ?? '?'}' holds values outside the levels the plan's schema lists`,
        };
      case TabularDataErrorCode.RowLength:
        // In a headerless file the schema's `columns` list is the layout: too few fields means a missing column.
        return {
          code: 'DATA_SCHEMA_MISMATCH',
          message: `the silo's data does not have the columns the plan's schema lists: ${err.message}`,
        };
      case TabularDataErrorCode.Schema:
      case TabularDataErrorCode.MalformedCsv:
      case TabularDataErrorCode.TooFewRows:
        return { code: 'DATA_UNREADABLE', message: `the silo's data cannot be used: ${err.message}` };
      default: {
        const unmapped: never = err.code;
        return { code: 'DATA_UNREADABLE', message: `the silo's data cannot be used (${String(unmapped)})` };
      }
    }
  }
  // Anything else (a file system error): its code only, since a message might quote file content.
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return { code: 'DATA_UNREADABLE', message: `the silo's data file cannot be read${code ? ` (${code})` : ''}` };
}

/**
 * The silo's CSV prepared once per study and plan (a new plan version may change the schema). Failures are cached
 * too: a study whose schema the data cannot meet is not retried.
 */
export class StudyDatasets {
  private readonly cache = new Map<string, DatasetResult>();

  /** `readText` reads the silo's data file; called at most once per study and plan. */
  constructor(private readonly readText: () => string) {}

  forStudy(studyId: string, planHash: string, schema: TabularSchema): DatasetResult {
    const key = `${studyId}:${planHash}`;
    let result = this.cache.get(key);
    if (result === undefined) {
      try {
        result = { ok: true, data: prepareTabularData(this.readText(), schema) };
      } catch (err) {
        result = { ok: false, problem: dataProblemOf(err) };
      }
      this.cache.set(key, result);
    }
    return result;
  }
}
