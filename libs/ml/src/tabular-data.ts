import { createHmac } from 'node:crypto';
import { FeatureSchema } from '@tessera/protocol';
import { TabularDataErrorCode, TabularDataException } from './ml.exception';

/**
 * A study's feature schema is the protocol's `FeatureSchema`, exactly as the steward approved it: which columns,
 * their declared encoding, the label, missing values and the per-record split. Every constant used to encode a
 * record comes from it, never from the file.
 */
export type TabularSchema = FeatureSchema;
export type FeatureColumn = FeatureSchema['features'][number];
/** Encoded as (x − center) / scale with the declared scaling, or as is without one. */
export type NumericFeature = Extract<FeatureColumn, { type: 'numeric' }>;
/** One-hot over the declared levels, first level dropped (k levels → k − 1 columns). */
export type CategoricalFeature = Extract<FeatureColumn, { type: 'categorical' }>;
/**
 * The label: binary rules (threshold, set) give 1 when the rule holds, else 0; a 'class' rule the index of the cell
 * among the declared classes; a 'value' rule the cell's number, scaled as declared.
 */
export type LabelRule = FeatureSchema['label'];

/**
 * Row-major features and labels of one split, records in file order. Labels: Uint8Array of 0/1 for binary rules,
 * Int32Array of class indices for 'class', Float32Array of (scaled) values for 'value'.
 */
export interface TabularSplit {
  readonly x: Float32Array;
  readonly y: Uint8Array | Int32Array | Float32Array;
  readonly n: number;
}

/** Why a row was left out. Each reason is decided from that row's own cells only. */
export type RowDropReason =
  | 'field-count' // the row has more or fewer fields than the header (or the schema's `columns`)
  | 'missing-label'
  | 'missing-feature' // 'drop-rows' only
  | 'not-numeric' // a numeric feature (or a threshold label) that does not read as a finite decimal number
  | 'unknown-level' // a categorical value outside the declared levels
  | 'out-of-range'; // an encoded value larger in magnitude than MAX_ENCODED_MAGNITUDE

/** How many rows were dropped for one reason (and column), and the first such data row (1-based line number). */
export interface DroppedRows {
  readonly reason: RowDropReason;
  /** The column concerned (a schema name, never a value); null for 'field-count'. */
  readonly column: string | null;
  readonly rows: number;
  readonly firstRow: number;
}

/**
 * The encoded data. `rowsRead`, `rowsKept` and `dropped` are exact counts of this file, not privatised: they are
 * for the silo's own log and must never be sent to the hub (docs/privacy.md, "From the raw file to the wire").
 */
export interface PreparedTabularData {
  /** Encoded column names: numeric names, and `name=level` for one-hot columns (declared level text). */
  readonly featureNames: string[];
  readonly train: TabularSplit;
  readonly test: TabularSplit;
  readonly rowsRead: number;
  readonly rowsKept: number;
  /** Dropped rows by reason and column, in order of first occurrence. */
  readonly dropped: readonly DroppedRows[];
}

/**
 * Largest magnitude of an encoded feature value. A row holding a larger one is dropped: it is a data-entry error or
 * a unit mismatch (declare a scaling), and values beyond float32's range would otherwise make training fail for the
 * whole file because of one record.
 */
export const MAX_ENCODED_MAGNITUDE = 1e6;

/**
 * Splits RFC 4180 CSV text into rows of trimmed fields: commas, double-quoted fields with "" escapes, LF or CRLF.
 * Blank lines are skipped. Errors give the line number, never the content.
 */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let fieldWasQuoted = false;
  let line = 1;
  let quoteLine = 1;
  const endRow = () => {
    row.push(fieldWasQuoted ? field : field.trim());
    if (!(row.length === 1 && row[0] === '' && !fieldWasQuoted)) rows.push(row);
    row = [];
    field = '';
    fieldWasQuoted = false;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          quoted = false;
        }
      } else {
        if (ch === '\n') line++;
        field += ch;
      }
    } else if (ch === '"') {
      if (field.trim() !== '') {
        throw new TabularDataException(TabularDataErrorCode.MalformedCsv, `unexpected quote on line ${line}`);
      }
      quoted = true;
      quoteLine = line;
      fieldWasQuoted = true;
      field = '';
    } else if (ch === ',') {
      row.push(fieldWasQuoted ? field : field.trim());
      field = '';
      fieldWasQuoted = false;
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      endRow();
      line++;
    } else {
      field += ch;
    }
  }
  if (quoted) {
    throw new TabularDataException(TabularDataErrorCode.MalformedCsv, `unterminated quote opened on line ${quoteLine}`);
  }
  if (field !== '' || fieldWasQuoted || row.length > 0) endRow();
  return rows;
}

/** A decimal number as written in a CSV: optional sign, digits with an optional fraction, optional exponent. */
const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * The canonical text of a cell: trimmed, and a decimal number rewritten as JavaScript's shortest round-trip form of
 * its float64 value ("1.0", "+1" and "1e0" are "1"; "-0" is "0"). Other text is kept as is, case included.
 * Levels, missing markers and the split hash all compare canonical texts.
 */
export function canonicalCell(cell: string): string {
  const trimmed = cell.trim();
  if (!DECIMAL.test(trimmed)) return trimmed;
  const value = Number(trimmed);
  return Number.isFinite(value) ? String(value) : trimmed;
}

/** The number a canonical cell holds, or null when it is not a finite decimal number. */
function numberOf(canonical: string): number | null {
  if (!DECIMAL.test(canonical)) return null;
  const value = Number(canonical);
  return Number.isFinite(value) ? value : null;
}

/**
 * The label of a canonical cell (canonicalCell) under a rule, or why its row is dropped: tabular rows and image
 * manifests label their records with this one function.
 */
export function labelOfCell(rule: LabelRule, canonical: string): number | RowDropReason {
  if (rule.operator === 'in') return rule.values.some((v) => canonicalCell(v) === canonical) ? 1 : 0;
  if (rule.operator === 'class') {
    const k = rule.classes.findIndex((c) => canonicalCell(c) === canonical);
    return k < 0 ? 'unknown-level' : k;
  }
  const v = numberOf(canonical);
  if (v === null) return 'not-numeric';
  if (rule.operator === 'value') {
    const y = rule.scaling === undefined ? v : (v - rule.scaling.center) / rule.scaling.scale;
    return Math.abs(y) <= MAX_ENCODED_MAGNITUDE ? y : 'out-of-range';
  }
  switch (rule.operator) {
    case '>':
      return v > rule.threshold ? 1 : 0;
    case '>=':
      return v >= rule.threshold ? 1 : 0;
    case '<':
      return v < rule.threshold ? 1 : 0;
    case '<=':
      return v <= rule.threshold ? 1 : 0;
    case '==':
      return v === rule.threshold ? 1 : 0;
    case '!=':
      return v !== rule.threshold ? 1 : 0;
  }
}

/** The protocol's shape, plus what the encoder relies on: distinct names, usable levels and imputation values. */
function validateSchema(schema: TabularSchema): void {
  const bad = (message: string, column?: string): never => {
    throw new TabularDataException(TabularDataErrorCode.Schema, message, column);
  };
  const parsed = FeatureSchema.safeParse(schema);
  if (!parsed.success) {
    bad(parsed.error.issues.map((i) => `schema.${i.path.join('.')}: ${i.message}`).join('; '));
  }
  const names = new Set<string>();
  for (const feature of schema.features) {
    if (names.has(feature.name)) bad(`feature '${feature.name}' is listed twice`, feature.name);
    names.add(feature.name);
    if (schema.missing === 'impute' && feature.impute === undefined) {
      bad(`feature '${feature.name}' needs a declared impute value when missing is 'impute'`, feature.name);
    }
    if (feature.type === 'categorical') {
      const keys = feature.levels.map(canonicalCell);
      if (new Set(keys).size !== keys.length) bad(`feature '${feature.name}' needs distinct levels`, feature.name);
      if (feature.impute !== undefined && !keys.includes(canonicalCell(feature.impute))) {
        bad(`feature '${feature.name}': the impute value is not one of its levels`, feature.name);
      }
    }
  }
  if (names.has(schema.label.column)) bad(`label column '${schema.label.column}' is also a feature`);
  if (schema.columns !== undefined) {
    for (const name of [...names, schema.label.column]) {
      if (!schema.columns.includes(name)) bad(`schema.columns does not list '${name}'`, name);
    }
  }
}

/** One column of the encoder, with everything it needs resolved from the schema and the header. */
type ColumnEncoder =
  | { readonly kind: 'numeric'; readonly feature: NumericFeature; readonly index: number }
  | {
      readonly kind: 'categorical';
      readonly feature: CategoricalFeature;
      readonly index: number;
      /** Canonical texts of the declared levels. */
      readonly keys: readonly string[];
      /** Index of the declared impute level (null when none is declared). */
      readonly impute: number | null;
    };

export interface KeptRecord {
  readonly kept: true;
  readonly values: Float64Array;
  readonly label: number;
  readonly heldOut: boolean;
}
export type RecordOutcome =
  KeptRecord | { readonly kept: false; readonly reason: RowDropReason; readonly column: string | null };

/**
 * The bytes the split hashes for one record: for each of the schema's feature columns in schema order, then the
 * label column, one field: 0x00 when the cell is missing (only possible for features under 'impute'), else 0x01,
 * the byte length of the cell's canonical text (canonicalCell) in UTF-8 as a 4-byte big-endian unsigned integer,
 * then those bytes. Length prefixes make the concatenation unambiguous; columns outside the schema (an id, a
 * note) are not part of the record and do not enter.
 */
function canonicalRecordBytes(fields: readonly (string | null)[]): Buffer {
  const parts: Buffer[] = [];
  for (const field of fields) {
    if (field === null) {
      parts.push(Buffer.of(0x00));
      continue;
    }
    const text = Buffer.from(field, 'utf8');
    const head = Buffer.alloc(5);
    head[0] = 0x01;
    head.writeUInt32BE(text.length, 1);
    parts.push(head, text);
  }
  return Buffer.concat(parts);
}

/**
 * Whether a record is held out for testing (tabular records, and image manifest rows as [file path, label cell]): HMAC-SHA-256 (RFC 2104; key = the salt's UTF-8 bytes, message = the
 * record's canonical bytes), its first 8 bytes read as a big-endian unsigned integer u, held out iff
 * u / 2^64 < testFraction. The comparison is exact: JavaScript compares a BigInt and a Number by value, and
 * testFraction · 2^64 is an exact double.
 */
export function isHeldOutRecord(fields: readonly (string | null)[], split: TabularSchema['split']): boolean {
  const digest = createHmac('sha256', Buffer.from(split.salt, 'utf8')).update(canonicalRecordBytes(fields)).digest();
  return digest.readBigUInt64BE(0) < split.testFraction * 2 ** 64;
}

/** Encodes one row from its own cells only: nothing here reads another row or a statistic of the file. */
function encodeRecord(
  row: readonly string[],
  width: number,
  encoders: readonly ColumnEncoder[],
  labelIndex: number,
  schema: TabularSchema,
  missing: ReadonlySet<string>,
): RecordOutcome {
  const drop = (reason: RowDropReason, column: string | null): RecordOutcome => ({ kept: false, reason, column });
  const labelCell = canonicalCell(row[labelIndex]!);
  if (missing.has(labelCell)) return drop('missing-label', schema.label.column);
  const label = labelOfCell(schema.label, labelCell);
  if (typeof label === 'string') return drop(label, schema.label.column);

  const values = new Float64Array(width);
  const fields: (string | null)[] = [];
  let j = 0;
  for (const e of encoders) {
    const name = e.feature.name;
    const cell = canonicalCell(row[e.index]!);
    const isMissing = missing.has(cell);
    if (isMissing && schema.missing === 'drop-rows') return drop('missing-feature', name);
    fields.push(isMissing ? null : cell);
    if (e.kind === 'numeric') {
      // Under 'impute' validateSchema made sure every feature declares its value.
      const x = isMissing ? e.feature.impute! : numberOf(cell);
      if (x === null) return drop('not-numeric', name);
      const scaling = e.feature.scaling;
      const encoded = scaling === undefined ? x : (x - scaling.center) / scaling.scale;
      if (!(Math.abs(encoded) <= MAX_ENCODED_MAGNITUDE)) return drop('out-of-range', name);
      values[j++] = encoded;
    } else {
      const level = isMissing ? e.impute! : e.keys.indexOf(cell);
      if (level < 0) return drop('unknown-level', name);
      const levels = e.feature.levels.length;
      for (let k = 1; k < levels; k++) values[j++] = level === k ? 1 : 0;
    }
  }
  fields.push(labelCell);
  return { kept: true, values, label, heldOut: isHeldOutRecord(fields, schema.split) };
}

/**
 * Maps a CSV text to model-ready features and labels under a study's schema, one record at a time, so that adding
 * or removing one record changes the result by exactly that record (docs/privacy.md, "From the raw file to the
 * wire"):
 * - a row with a missing label is dropped; under 'drop-rows' so is a row with any missing feature; under 'impute'
 *   a missing cell takes its feature's declared `impute` value;
 * - numeric features are encoded as (x − center) / scale with the declared scaling (as is without one);
 *   categoricals one-hot over the declared levels, first level dropped;
 * - a row whose own content cannot be encoded (wrong field count, a non-number where a number is expected, a value
 *   outside the declared levels, an encoded value beyond MAX_ENCODED_MAGNITUDE) is dropped and counted in `dropped`,
 *   rather than failing the file: a failure would be reported to the hub and would reveal, through one record, that
 *   the file holds such a record;
 * - each kept record goes to the test split iff its keyed hash says so (isHeldOut), else to training.
 * Only the file's structure fails it: a CSV that cannot be parsed, a header without a column the schema needs, an
 * invalid schema. Errors name the column or line, never a value.
 */
export function prepareTabularData(text: string, schema: TabularSchema): PreparedTabularData {
  validateSchema(schema);
  const rows = parseCsv(text);
  const encoder = new TabularRecordEncoder(schema, schema.columns ?? rows.shift());
  const { width, featureNames } = encoder;
  const train: KeptRecord[] = [];
  const test: KeptRecord[] = [];
  const dropped = new RowDropTally();
  rows.forEach((row, r) => {
    const outcome = encoder.encode(row);
    if (outcome.kept) (outcome.heldOut ? test : train).push(outcome);
    else dropped.add(outcome, r + encoder.firstDataRow);
  });
  const toSplit = (records: KeptRecord[]): TabularSplit => {
    const x = new Float32Array(records.length * width);
    const operator = schema.label.operator;
    const y =
      operator === 'value'
        ? new Float32Array(records.length)
        : operator === 'class'
          ? new Int32Array(records.length)
          : new Uint8Array(records.length);
    records.forEach((record, i) => {
      x.set(record.values, i * width);
      y[i] = record.label;
    });
    return { x, y, n: records.length };
  };
  return {
    featureNames,
    train: toSplit(train),
    test: toSplit(test),
    rowsRead: rows.length,
    rowsKept: train.length + test.length,
    dropped: dropped.list(),
  };
}

/**
 * The schema's encoding of one record at a time for a file with this header (or the schema's declared `columns`):
 * what prepareTabularData applies to each row, for readers that stream a file row by row instead of holding it.
 * The constructor checks the schema and that the header has every column the schema needs (TabularDataException).
 */
export class TabularRecordEncoder {
  /** Encoded column names: numeric names, and `name=level` for one-hot columns. */
  readonly featureNames: string[];
  /** Values per encoded record. */
  readonly width: number;
  /** 1-based line number of the first data row (2 after a header row, 1 when the schema declares the columns). */
  readonly firstDataRow: number;
  private readonly header: readonly string[];
  private readonly encoders: ColumnEncoder[];
  private readonly labelIndex: number;
  private readonly missing: ReadonlySet<string>;

  constructor(
    private readonly schema: TabularSchema,
    header: readonly string[] | undefined,
  ) {
    validateSchema(schema);
    if (header === undefined) {
      throw new TabularDataException(TabularDataErrorCode.MissingColumn, 'the file is empty: it has no header row');
    }
    this.header = header;
    const position = new Map(header.map((name, i) => [name, i]));
    const columnIndex = (name: string): number => {
      const index = position.get(name);
      if (index === undefined) {
        throw new TabularDataException(TabularDataErrorCode.MissingColumn, `column '${name}' is missing`, name);
      }
      return index;
    };
    this.encoders = schema.features.map((feature): ColumnEncoder => {
      const index = columnIndex(feature.name);
      if (feature.type === 'numeric') return { kind: 'numeric', feature, index };
      const keys = feature.levels.map(canonicalCell);
      const impute = feature.impute === undefined ? null : keys.indexOf(canonicalCell(feature.impute));
      return { kind: 'categorical', feature, index, keys, impute };
    });
    this.labelIndex = columnIndex(schema.label.column);
    this.featureNames = schema.features.flatMap((f) =>
      f.type === 'numeric' ? [f.name] : f.levels.slice(1).map((level) => `${f.name}=${level}`),
    );
    this.width = this.featureNames.length;
    this.missing = new Set(['', ...(schema.missingValues ?? []).map(canonicalCell)]);
    this.firstDataRow = schema.columns === undefined ? 2 : 1;
  }

  /** One row's record (features, label, split), or why the row is dropped: from this row's own cells only. */
  encode(row: readonly string[]): RecordOutcome {
    if (row.length !== this.header.length) return { kept: false, reason: 'field-count', column: null };
    return encodeRecord(row, this.width, this.encoders, this.labelIndex, this.schema, this.missing);
  }
}

/** Dropped rows counted by reason and column, with the first line of each, in order of first occurrence. */
export class RowDropTally {
  private readonly entries = new Map<string, DroppedRows & { rows: number }>();

  add(outcome: { readonly reason: RowDropReason; readonly column: string | null }, line: number): void {
    const key = `${outcome.reason}\u0000${outcome.column ?? ''}`;
    const entry = this.entries.get(key);
    if (entry) entry.rows++;
    else this.entries.set(key, { reason: outcome.reason, column: outcome.column, rows: 1, firstRow: line });
  }

  list(): DroppedRows[] {
    return [...this.entries.values()].map((e) => ({ ...e }));
  }
}
