import {
  MAX_ENCODED_MAGNITUDE,
  prepareTabularData,
  TabularDataErrorCode,
  TabularDataException,
  type PreparedTabularData,
  type RowDropReason,
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
 * Maps @tessera/ml's data errors to a failure report. Only the file's structure fails a study (a column the schema
 * needs is absent, the CSV cannot be parsed, the schema cannot be applied): a single row's content never does, ml
 * drops such a row and counts it for the local log, so that the failure report (which the hub sees) cannot depend on
 * one record. The message is composed here from the error's code and the column name it carries; ml's own messages
 * are value-free by contract (line numbers only), and are used as is only for structural problems.
 */
export function dataProblemOf(err: unknown): DataProblem {
  if (err instanceof TabularDataException) {
    const column = err.column;
    switch (err.code) {
      case TabularDataErrorCode.MissingColumn:
        return {
          code: 'DATA_SCHEMA_MISMATCH',
          message: column
            ? `the silo's data has no column '${column}', which the plan's schema needs`
            : `the silo's data does not have the columns the plan's schema needs: ${err.message}`,
        };
      case TabularDataErrorCode.Schema:
      case TabularDataErrorCode.MalformedCsv:
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

const DROP_REASONS: Record<RowDropReason, string> = {
  'field-count': 'a wrong number of fields',
  'missing-label': 'no label',
  'missing-feature': 'a missing value',
  'not-numeric': 'a value that is not a number',
  'unknown-level': 'a value outside the declared levels',
  'out-of-range': `an encoded value beyond ±${MAX_ENCODED_MAGNITUDE}`,
};

/**
 * What the preparation did, for the silo's own log: exact counts of this silo's file (rows read, kept, per split,
 * dropped by reason, column and first line). They are NOT differentially private and must never be sent to the hub;
 * they let the operator see, for example, that a whole column is unreadable. Never a value.
 */
export function describePreparedData(data: PreparedTabularData): string[] {
  const lines = [
    `data prepared: ${data.rowsRead} rows read, ${data.rowsKept} kept (${data.train.n} training, ${data.test.n} held out for testing); these counts stay in this silo`,
  ];
  for (const d of data.dropped) {
    lines.push(
      `dropped ${d.rows} row${d.rows === 1 ? '' : 's'} with ${DROP_REASONS[d.reason]}${d.column === null ? '' : ` in column '${d.column}'`} (first on line ${d.firstRow})`,
    );
  }
  return lines;
}

/**
 * Sent when not one record is usable for training (every row dropped, or the few kept all held out). This is the
 * one outcome of the file's content that the hub learns beyond the DP releases: one bit, "this silo has no usable
 * training record", which its absence from the rounds would show anyway. No count is sent; the local log has them.
 */
const NO_TRAINING_RECORD: DataProblem = {
  code: 'DATA_SCHEMA_MISMATCH',
  message: "no row of the silo's data gives a training record under the plan's schema (the silo's own log lists why)",
};

/**
 * The silo's CSV prepared once per study and plan (a new plan version may change the schema). Failures are cached
 * too: a study whose schema the data cannot meet is not retried.
 */
export class StudyDatasets {
  private readonly cache = new Map<string, DatasetResult>();

  /**
   * `readText` reads the silo's data file; called at most once per study and plan. `log` receives the local summary
   * (describePreparedData) once per preparation; it must be a local sink, never the hub.
   */
  constructor(
    private readonly readText: () => string,
    private readonly log: (message: string) => void = () => undefined,
  ) {}

  forStudy(studyId: string, planHash: string, schema: TabularSchema): DatasetResult {
    const key = `${studyId}:${planHash}`;
    let result = this.cache.get(key);
    if (result === undefined) {
      try {
        const data = prepareTabularData(this.readText(), schema);
        for (const line of describePreparedData(data)) this.log(`study ${studyId}: ${line}`);
        result = data.train.n > 0 ? { ok: true, data } : { ok: false, problem: NO_TRAINING_RECORD };
      } catch (err) {
        result = { ok: false, problem: dataProblemOf(err) };
      }
      this.cache.set(key, result);
    }
    return result;
  }
}
