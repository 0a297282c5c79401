import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { CsvError, parse, type Options } from 'csv-parse';
import { parse as parseSync } from 'csv-parse/sync';
import {
  RowDropTally,
  TabularDataErrorCode,
  TabularDataException,
  TabularRecordEncoder,
  type DroppedRows,
  type NetworkExampleSource,
  type TabularSchema,
} from '@tessera/ml';

/**
 * A silo's tabular CSV read from disk instead of held in memory: one streaming pass (csv-parse) encodes every row
 * with the plan's schema (@tessera/ml's TabularRecordEncoder, the rules of prepareTabularData: drops counted, the
 * keyed-hash split) and keeps, per usable record, only where its text lies in the file (two byte offsets) and its
 * label. Training and evaluation then read the rows of each batch again from the file, parse and encode them.
 *
 * Memory bound: one batch of rows plus at most 24 bytes per usable record (two offsets and the label; 17–20 once the
 * pass is over), whatever the file's size or number of columns; no encoded record is written anywhere (the CSV itself is the store). The file must not change
 * while a study uses it: each read checks its size and modification time and refuses a changed file.
 */

/** The parser's settings, the same for the pass and for each row read again (RFC 4180, trimmed, blank lines skipped). */
const CSV_OPTIONS: Options = { relax_column_count: true, skip_empty_lines: true, trim: true };

export interface StreamedTabularData {
  readonly featureNames: string[];
  readonly train: TabularFileSplit;
  readonly test: TabularFileSplit;
  readonly rowsRead: number;
  readonly rowsKept: number;
  readonly dropped: readonly DroppedRows[];
}

interface FileIdentity {
  readonly size: number;
  readonly mtimeMs: number;
}

/** Growable float64 list: byte offsets (exact integers in a double up to 2^53) and labels while the pass runs. */
class OffsetList {
  private values = new Float64Array(1024);
  length = 0;
  push(value: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = value;
  }
  toArray(): Float64Array {
    return this.values.slice(0, this.length);
  }
}

/**
 * One split of the file's usable records: `n` records of `rowLength` encoded values, `y` their labels, each record
 * read again from its byte range [start, end) of the file when a batch asks for it.
 */
export class TabularFileSplit implements NetworkExampleSource {
  readonly n: number;
  readonly rowLength: number;

  constructor(
    private readonly path: string,
    private readonly identity: FileIdentity,
    private readonly encoder: TabularRecordEncoder,
    private readonly starts: Float64Array,
    private readonly ends: Float64Array,
    readonly y: Uint8Array | Int32Array | Float32Array,
  ) {
    this.n = starts.length;
    this.rowLength = encoder.width;
  }

  /** This split as the models read it (SplitData). */
  asSplit(): { n: number; y: Uint8Array | Int32Array | Float32Array; x: TabularFileSplit } {
    return { n: this.n, y: this.y, x: this };
  }

  /** Tabular rows have no augmentation: training reads are plain reads. */
  withAugmentation(): this {
    return this;
  }

  augments(): boolean {
    return false;
  }

  readRows(indices: ArrayLike<number>, out: Float32Array): Promise<void> {
    return this.readPlain(indices, out);
  }

  private changed(): TabularDataException {
    return new TabularDataException(
      TabularDataErrorCode.MalformedCsv,
      "the silo's data file no longer reads as it did when the study began; restart the agent to read it again",
    );
  }

  /** The records `indices` (0..n−1), encoded, into `out` in that order. */
  readPlain(indices: ArrayLike<number>, out: Float32Array): Promise<void> {
    const fd = openSync(this.path, 'r');
    try {
      const stat = fstatSync(fd);
      if (stat.size !== this.identity.size || stat.mtimeMs !== this.identity.mtimeMs) {
        throw this.changed();
      }
      // The batch's byte ranges read one after the other into one buffer, each ending with a line break, and parsed
      // in one call: a parser per row would cost more than the row.
      let total = 0;
      for (let k = 0; k < indices.length; k++) total += this.ends[indices[k]!]! - this.starts[indices[k]!]! + 1;
      const buffer = Buffer.alloc(total);
      let at = 0;
      for (let k = 0; k < indices.length; k++) {
        const i = indices[k]!;
        const start = this.starts[i]!;
        const length = this.ends[i]! - start;
        readSync(fd, buffer, at, length, start);
        at += length;
        const last = buffer[at - 1];
        if (last !== 0x0a && last !== 0x0d) buffer[at++] = 0x0a;
      }
      const rows = parseSync(buffer.subarray(0, at), CSV_OPTIONS);
      if (rows.length !== indices.length) throw this.changed();
      for (let k = 0; k < indices.length; k++) {
        const outcome = this.encoder.encode(rows[k]!);
        if (!outcome.kept) throw this.changed();
        out.set(outcome.values, k * this.rowLength);
      }
    } finally {
      closeSync(fd);
    }
    return Promise.resolve();
  }
}

function labelArray(schema: TabularSchema, n: number): Uint8Array | Int32Array | Float32Array {
  const operator = schema.label.operator;
  return operator === 'value' ? new Float32Array(n) : operator === 'class' ? new Int32Array(n) : new Uint8Array(n);
}

/**
 * One streaming pass over the CSV at `path` under `schema`: the same records, splits, labels and drop counts as
 * prepareTabularData on the file's text, with the records left on disk. Structural problems fail
 * (TabularDataException: a missing column, an invalid schema, a CSV that cannot be parsed, named by line only).
 */
export async function streamTabularData(path: string, schema: TabularSchema): Promise<StreamedTabularData> {
  const identity = fstatIdentity(path);
  const parser = createReadStream(path).pipe(parse({ ...CSV_OPTIONS, info: true }));
  let encoder: TabularRecordEncoder | null = null;
  const starts = { train: new OffsetList(), test: new OffsetList() };
  const ends = { train: new OffsetList(), test: new OffsetList() };
  const labels = { train: new OffsetList(), test: new OffsetList() };
  const dropped = new RowDropTally();
  let rowsRead = 0;
  let previousEnd = 0;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { bytes: number } }>) {
      const start = previousEnd;
      previousEnd = info.bytes;
      if (encoder === null) {
        if (schema.columns === undefined) {
          encoder = new TabularRecordEncoder(schema, record);
          continue;
        }
        encoder = new TabularRecordEncoder(schema, schema.columns);
      }
      const outcome = encoder.encode(record);
      rowsRead++;
      if (!outcome.kept) {
        dropped.add(outcome, rowsRead - 1 + encoder.firstDataRow);
        continue;
      }
      const part = outcome.heldOut ? 'test' : 'train';
      starts[part].push(start);
      ends[part].push(info.bytes);
      labels[part].push(outcome.label);
    }
  } catch (err) {
    if (err instanceof CsvError) {
      // csv-parse's messages can quote the field; only the line is kept.
      const line = (err as CsvError & { lines?: number }).lines;
      throw new TabularDataException(
        TabularDataErrorCode.MalformedCsv,
        `the file is not valid CSV (${err.code}${line === undefined ? '' : ` near line ${line}`})`,
      );
    }
    throw err;
  }
  encoder ??= new TabularRecordEncoder(schema, schema.columns);
  const split = (part: 'train' | 'test'): TabularFileSplit => {
    const y = labelArray(schema, labels[part].length);
    y.set(labels[part].toArray());
    return new TabularFileSplit(path, identity, encoder, starts[part].toArray(), ends[part].toArray(), y);
  };
  const train = split('train');
  const test = split('test');
  return {
    featureNames: encoder.featureNames,
    train,
    test,
    rowsRead,
    rowsKept: train.n + test.n,
    dropped: dropped.list(),
  };
}

function fstatIdentity(path: string): FileIdentity {
  const fd = openSync(path, 'r');
  try {
    const stat = fstatSync(fd);
    return { size: stat.size, mtimeMs: stat.mtimeMs };
  } finally {
    closeSync(fd);
  }
}
