import {
  MAX_ENCODED_MAGNITUDE,
  prepareTabularData,
  TabularDataErrorCode,
  TabularDataException,
  type PreparedTabularData,
  type RowDropReason,
  type TabularSchema,
} from '@tessera/ml';
import { statSync } from 'node:fs';
import { dirname } from 'node:path';
import { isImageSchema, tabularSchemaOf, type FailureReport, type StudyPlan } from '@tessera/protocol';
import { ManifestError, prepareImages, type PreparedImages } from '../data/image-dataset';
import { streamTabularData } from '../data/tabular-stream';
import type { StudyData } from './study-model';

/** Why a study cannot use this silo's data, in words that name columns and rows but never a value. */
export interface DataProblem {
  code: Extract<FailureReport['code'], 'DATA_SCHEMA_MISMATCH' | 'DATA_UNREADABLE'>;
  message: string;
}

export type DatasetResult = { ok: true; data: PreparedTabularData } | { ok: false; problem: DataProblem };

/** A plan's data at this silo, tabular or images, as the models read it; or why it cannot be used. */
export type StudyDataResult =
  | { ok: true; data: StudyData; kind: 'tabular'; encodedFeatures: number }
  | { ok: true; data: StudyData; kind: 'images' }
  | { ok: false; problem: DataProblem };

const FILE_PROBLEMS: Record<PreparedImages['fileProblems'][number]['problem'], string> = {
  missing: 'missing',
  unreadable: 'unreadable (not a PNG or JPEG that decodes)',
  'wrong-size': 'of a size the plan refuses',
  'outside-folder': 'named by a path outside the data folder',
};

/**
 * What the image preparation did, for the silo's own log: rows read, images per split, rows dropped by reason, and
 * every file left out, counted per reason with its first paths (local only: never sent to the hub, like the tabular
 * counts). Never a pixel.
 */
export function describePreparedImages(data: PreparedImages): string[] {
  const lines = [
    `images prepared: ${data.rowsRead} manifest rows read, ${data.train.n} training and ${data.test.n} test images usable (${data.cached ? 'decoded once and held in memory' : 'decoded from disk batch by batch'}); these counts stay in this silo`,
  ];
  for (const d of data.dropped) {
    lines.push(`dropped ${d.rows} manifest row${d.rows === 1 ? '' : 's'}: ${d.reason} (first on line ${d.firstRow})`);
  }
  for (const p of data.fileProblems) {
    lines.push(
      `left out ${p.files} image file${p.files === 1 ? '' : 's'} ${FILE_PROBLEMS[p.problem]}: ${p.examples.join(', ')}${p.files > p.examples.length ? ', …' : ''}`,
    );
  }
  return lines;
}

/**
 * Sent when not one image is usable for training. Like NO_TRAINING_RECORD it is one bit about the folder, plus the
 * reasons (which the silo's log counts per file): the counts are not sent, since a count of bad files would tell the
 * hub, without differential privacy, about single records.
 */
function noTrainingImage(data: PreparedImages): DataProblem {
  const reasons = [
    ...data.fileProblems.map((p) => `files ${FILE_PROBLEMS[p.problem]}`),
    ...data.dropped.map((d) => `manifest rows with ${d.reason}`),
  ];
  return {
    code: 'DATA_UNREADABLE',
    message: `no image of the silo's manifest gives a training example${reasons.length ? ` (${reasons.join('; ')})` : ''}; the silo's own log lists the files`,
  };
}

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
export function describePreparedData(
  data: Pick<PreparedTabularData, 'rowsRead' | 'rowsKept' | 'dropped'> & {
    train: { n: number };
    test: { n: number };
  },
  streamed = false,
): string[] {
  const lines = [
    `data prepared: ${data.rowsRead} rows read, ${data.rowsKept} kept (${data.train.n} training, ${data.test.n} held out for testing${streamed ? '; read from disk batch by batch' : ''}); these counts stay in this silo`,
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
/**
 * Largest tabular file (bytes) a network plan reads into memory; a larger one is read from disk batch by batch
 * (data/tabular-stream.ts), which costs a parse of each batch's rows at every step.
 */
export const DEFAULT_TABULAR_MEMORY_BYTES = 64 * 1024 * 1024;

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

  /** Data read from disk batch by batch (images; tabular data of network plans), prepared once per study and plan. */
  private readonly streamed = new Map<string, Promise<StudyDataResult>>();

  /**
   * `readText` reads the silo's data file; called at most once per study and plan. `log` receives the local summary
   * (describePreparedData) once per preparation; it must be a local sink, never the hub. `dataFile` is the path
   * `readText` reads: an image study's manifest paths are relative to its folder, and a network plan's tabular CSV
   * larger than `tabularMemoryBytes` is read from it batch by batch (absent: image studies cannot run, tabular ones
   * read `readText` into memory). `imageCacheBytes` is the budget of decoded images held in memory (image-dataset.ts).
   */
  constructor(
    private readonly readText: () => string,
    private readonly log: (message: string) => void = () => undefined,
    private readonly dataFile?: string,
    private readonly imageCacheBytes?: number,
    private readonly tabularMemoryBytes: number = DEFAULT_TABULAR_MEMORY_BYTES,
  ) {}

  /** Whether a network plan's CSV is read from disk batch by batch: when the file is larger than the memory budget. */
  private streamsTabularFile(): boolean {
    if (this.dataFile === undefined) return false;
    try {
      return statSync(this.dataFile).size > this.tabularMemoryBytes;
    } catch {
      // Unreadable here: the in-memory path reads it and reports why.
      return false;
    }
  }

  /** The plan's data, tabular or images, prepared once per study and plan. */
  async forPlan(studyId: string, planHash: string, plan: StudyPlan): Promise<StudyDataResult> {
    if (!isImageSchema(plan.schema) && plan.model.kind === 'network' && this.streamsTabularFile()) {
      return this.once(`${studyId}:${planHash}`, () => this.streamTabularStudy(studyId, tabularSchemaOf(plan)));
    }
    if (!isImageSchema(plan.schema)) {
      const result = this.forStudy(studyId, planHash, tabularSchemaOf(plan));
      if (!result.ok) return result;
      const { train, test, featureNames } = result.data;
      return { ok: true, kind: 'tabular', encodedFeatures: featureNames.length, data: { train, test } };
    }
    return this.once(`${studyId}:${planHash}`, () => this.prepareImageStudy(studyId, plan));
  }

  /** A preparation run once per study and plan; later calls get the same result. */
  private once(key: string, prepare: () => Promise<StudyDataResult>): Promise<StudyDataResult> {
    let pending = this.streamed.get(key);
    if (pending === undefined) {
      pending = prepare();
      this.streamed.set(key, pending);
    }
    return pending;
  }

  /**
   * A network plan's tabular data read from disk (data/tabular-stream.ts): one streaming pass now, each batch's rows
   * read again when training asks for them, so memory does not grow with the file. Registry plans keep reading the
   * whole file into memory, as they were approved with.
   */
  private async streamTabularStudy(studyId: string, schema: TabularSchema): Promise<StudyDataResult> {
    try {
      const data = await streamTabularData(this.dataFile!, schema);
      for (const line of describePreparedData(data, true)) this.log(`study ${studyId}: ${line}`);
      if (data.train.n === 0) return { ok: false, problem: NO_TRAINING_RECORD };
      return {
        ok: true,
        kind: 'tabular',
        encodedFeatures: data.featureNames.length,
        data: { train: data.train.asSplit(), test: data.test.asSplit() },
      };
    } catch (err) {
      return { ok: false, problem: dataProblemOf(err) };
    }
  }

  private async prepareImageStudy(studyId: string, plan: StudyPlan): Promise<StudyDataResult> {
    const schema = plan.schema;
    const input = plan.model.kind === 'network' ? plan.model.network.input : null;
    if (!isImageSchema(schema) || input?.kind !== 'image') {
      return {
        ok: false,
        problem: { code: 'DATA_SCHEMA_MISMATCH', message: 'the plan reads images without an image network' },
      };
    }
    if (this.dataFile === undefined) {
      return {
        ok: false,
        problem: {
          code: 'DATA_UNREADABLE',
          message: 'this agent was started without a data file (the image manifest)',
        },
      };
    }
    try {
      const data = await prepareImages({
        manifest: this.readText(),
        folder: dirname(this.dataFile),
        schema,
        shape: { height: input.height, width: input.width, channels: input.channels },
        ...(this.imageCacheBytes === undefined ? {} : { cacheBytes: this.imageCacheBytes }),
      });
      for (const line of describePreparedImages(data)) this.log(`study ${studyId}: ${line}`);
      if (data.train.n === 0) return { ok: false, problem: noTrainingImage(data) };
      return { ok: true, kind: 'images', data: { train: data.train.asSplit(), test: data.test.asSplit() } };
    } catch (err) {
      if (err instanceof ManifestError) {
        return {
          ok: false,
          problem: {
            code: err.kind === 'missing-column' ? 'DATA_SCHEMA_MISMATCH' : 'DATA_UNREADABLE',
            message: `the silo's image manifest cannot be used: ${err.message}`,
          },
        };
      }
      return { ok: false, problem: dataProblemOf(err) };
    }
  }

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
