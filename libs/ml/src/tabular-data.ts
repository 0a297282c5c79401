import { TabularDataErrorCode, TabularDataException } from './ml.exception';
import { seededUniform, shuffleInPlace } from './seeded-random';

/** A numeric feature, used as is (then standardised). */
export interface NumericFeature {
  readonly name: string;
  readonly type: 'numeric';
}

/**
 * A categorical feature, one-hot encoded with the first level dropped (k levels → k − 1 columns).
 * Give `levels` in federated studies: every silo must produce the same columns whatever values it happens to hold.
 * Without it the levels are the distinct values seen, in numeric order when all are numbers.
 * Numeric-looking values match numerically ("1.0" is level "1").
 */
export interface CategoricalFeature {
  readonly name: string;
  readonly type: 'categorical';
  readonly levels?: readonly string[];
}

export type FeatureColumn = NumericFeature | CategoricalFeature;

/** Binary label: 1 when the rule holds, else 0. */
export type LabelRule =
  | { readonly column: string; readonly operator: '>' | '>=' | '<' | '<=' | '==' | '!='; readonly threshold: number }
  | { readonly column: string; readonly operator: 'in'; readonly values: readonly string[] };

/** A study's feature schema: which columns, how to encode them, the label, missing values, split, scaling. */
export interface TabularSchema {
  /** Column names in file order for a headerless file; when absent the first row is the header. */
  readonly columns?: readonly string[];
  /** Cell contents that mean "missing" (after trimming). An empty cell is always missing. */
  readonly missingValues?: readonly string[];
  readonly features: readonly FeatureColumn[];
  readonly label: LabelRule;
  /**
   * 'drop-rows': drop every row with a missing feature. 'impute-mean': numeric features get the training split's
   * mean, categorical ones its most frequent level. Rows without a label are always dropped.
   */
  readonly missing: 'drop-rows' | 'impute-mean';
  /**
   * Held-out fraction: test size = ceil(testFraction·n) as in scikit-learn's train_test_split. Stratified by label
   * when `stratify` is set and both classes have more than 2 rows (the Fed-Heart-Disease rule), else a plain shuffle.
   */
  readonly split: { readonly testFraction: number; readonly seed: number; readonly stratify: boolean };
  /** Standardise every encoded column with the TRAINING split's mean and sample standard deviation. */
  readonly standardize: boolean;
}

/** Row-major features and 0/1 labels of one split. */
export interface TabularSplit {
  readonly x: Float32Array;
  readonly y: Uint8Array;
  readonly n: number;
}

export interface PreparedTabularData {
  /** Encoded column names: numeric names, and `name=level` for one-hot columns. */
  readonly featureNames: string[];
  readonly train: TabularSplit;
  readonly test: TabularSplit;
  /** Training-split statistics used for scaling (null when standardize is off). */
  readonly standardization: { readonly mean: Float64Array; readonly std: Float64Array } | null;
  readonly rowsRead: number;
  readonly rowsKept: number;
}

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
  if (quoted) throw new TabularDataException(TabularDataErrorCode.MalformedCsv, `unterminated quote on line ${line}`);
  if (field !== '' || fieldWasQuoted || row.length > 0) endRow();
  return rows;
}

/** Numeric-looking values compare as numbers: "1.0", "1" and " 1" are the same level. */
function levelKey(value: string): string {
  const trimmed = value.trim();
  const asNumber = trimmed === '' ? Number.NaN : Number(trimmed);
  return Number.isFinite(asNumber) ? String(asNumber) : trimmed;
}

function parseNumber(value: string, column: string, rowNumber: number): number {
  const parsed = value === '' ? Number.NaN : Number(value);
  if (!Number.isFinite(parsed)) {
    throw new TabularDataException(
      TabularDataErrorCode.NotNumeric,
      `column '${column}' has a non-numeric value in data row ${rowNumber}`,
      column,
    );
  }
  return parsed;
}

function labelHolds(rule: LabelRule, value: string, rowNumber: number): boolean {
  if (rule.operator === 'in') return rule.values.some((v) => levelKey(v) === levelKey(value));
  const v = parseNumber(value, rule.column, rowNumber);
  switch (rule.operator) {
    case '>':
      return v > rule.threshold;
    case '>=':
      return v >= rule.threshold;
    case '<':
      return v < rule.threshold;
    case '<=':
      return v <= rule.threshold;
    case '==':
      return v === rule.threshold;
    case '!=':
      return v !== rule.threshold;
  }
}

function validateSchema(schema: TabularSchema): void {
  const bad = (message: string, column?: string): never => {
    throw new TabularDataException(TabularDataErrorCode.Schema, message, column);
  };
  if (schema.features.length === 0) bad('schema needs at least one feature');
  const names = new Set<string>();
  for (const feature of schema.features) {
    if (names.has(feature.name)) bad(`feature '${feature.name}' is listed twice`, feature.name);
    names.add(feature.name);
    if (feature.type === 'categorical' && feature.levels !== undefined) {
      const keys = feature.levels.map(levelKey);
      if (keys.length < 1 || new Set(keys).size !== keys.length) {
        bad(`feature '${feature.name}' needs distinct levels`, feature.name);
      }
    }
  }
  if (names.has(schema.label.column)) bad(`label column '${schema.label.column}' is also a feature`);
  const { testFraction, seed } = schema.split;
  if (!(testFraction > 0 && testFraction < 1)) bad('split.testFraction must be in (0, 1)');
  if (!Number.isInteger(seed)) bad('split.seed must be an integer');
}

/** Train/test indices (each in ascending order) for labels, per the schema's split rule. */
function splitIndices(labels: Uint8Array, split: TabularSchema['split']): { train: number[]; test: number[] } {
  const n = labels.length;
  const nTest = Math.ceil(split.testFraction * n - 1e-9);
  if (nTest < 1 || nTest >= n) {
    throw new TabularDataException(TabularDataErrorCode.TooFewRows, 'too few rows for a train/test split');
  }
  const random = seededUniform(split.seed);
  const byClass: number[][] = [[], []];
  labels.forEach((label, i) => byClass[label]!.push(i));
  const stratify = split.stratify && byClass.every((rows) => rows.length > 2);
  const testSet = new Set<number>();
  if (stratify) {
    // Largest-remainder allocation of the test rows to classes in proportion to their sizes.
    const quotas = byClass.map((rows) => (rows.length * nTest) / n);
    const counts = quotas.map(Math.floor);
    let left = nTest - counts.reduce((a, b) => a + b, 0);
    // Ties go to the larger class, then to the lower label.
    const byRemainder = [0, 1].sort(
      (a, b) => quotas[b]! - counts[b]! - (quotas[a]! - counts[a]!) || byClass[b]!.length - byClass[a]!.length || a - b,
    );
    for (const c of byRemainder) if (left-- > 0) counts[c]!++;
    byClass.forEach((rows, c) => {
      const shuffled = Int32Array.from(rows);
      shuffleInPlace(shuffled, random);
      for (let k = 0; k < counts[c]!; k++) testSet.add(shuffled[k]!);
    });
  } else {
    const shuffled = Int32Array.from({ length: n }, (_, i) => i);
    shuffleInPlace(shuffled, random);
    for (let k = 0; k < nTest; k++) testSet.add(shuffled[k]!);
  }
  const train: number[] = [];
  const test: number[] = [];
  for (let i = 0; i < n; i++) (testSet.has(i) ? test : train).push(i);
  return { train, test };
}

/**
 * Maps a CSV text to model-ready features and labels under a study's schema: select columns, handle missing values,
 * derive the binary label, split train/test (seeded, stratified), one-hot encode categoricals dropping the first
 * level, standardise with the training split's mean and sample standard deviation (ddof = 1, as torch.std in
 * FLamby's Fed-Heart-Disease; a constant column gets std 1). Pure: text in, arrays out. Errors name the column and
 * the data row number but never a value, so hospital data cannot leak through them.
 */
export function prepareTabularData(text: string, schema: TabularSchema): PreparedTabularData {
  validateSchema(schema);
  const rows = parseCsv(text);
  const header = schema.columns ?? rows.shift();
  if (header === undefined) throw new TabularDataException(TabularDataErrorCode.TooFewRows, 'the file is empty');
  const position = new Map(header.map((name, i) => [name, i]));
  const columnIndex = (name: string): number => {
    const index = position.get(name);
    if (index === undefined) {
      throw new TabularDataException(TabularDataErrorCode.MissingColumn, `column '${name}' is missing`, name);
    }
    return index;
  };
  const featureIdx = schema.features.map((f) => columnIndex(f.name));
  const labelIdx = columnIndex(schema.label.column);
  const missing = new Set(['', ...(schema.missingValues ?? [])]);
  const firstDataRow = schema.columns === undefined ? 2 : 1; // 1-based line numbers for messages

  // 1. Keep rows with a label (and, for 'drop-rows', with every feature).
  const kept: string[][] = [];
  const keptRowNumbers: number[] = [];
  rows.forEach((row, r) => {
    if (row.length !== header.length) {
      throw new TabularDataException(
        TabularDataErrorCode.RowLength,
        `data row ${r + firstDataRow} has ${row.length} fields, expected ${header.length}`,
      );
    }
    if (missing.has(row[labelIdx]!)) return;
    if (schema.missing === 'drop-rows' && featureIdx.some((i) => missing.has(row[i]!))) return;
    kept.push(row);
    keptRowNumbers.push(r + firstDataRow);
  });
  const labels = Uint8Array.from(kept, (row, k) =>
    labelHolds(schema.label, row[labelIdx]!, keptRowNumbers[k]!) ? 1 : 0,
  );

  // 2. Split before any statistic is computed, so that nothing from the test rows leaks into training.
  const { train, test } = splitIndices(labels, schema.split);

  // 3. Encoding plan: levels per categorical, imputation values from the training split.
  const encoders = schema.features.map((feature, f) => {
    const col = featureIdx[f]!;
    if (feature.type === 'numeric') {
      let sum = 0;
      let count = 0;
      for (const i of train) {
        const cell = kept[i]![col]!;
        if (!missing.has(cell)) {
          sum += parseNumber(cell, feature.name, keptRowNumbers[i]!);
          count++;
        }
      }
      return { feature, col, levels: [] as string[], fill: count > 0 ? String(sum / count) : '' };
    }
    const observed = kept.map((row) => row[col]!).filter((cell) => !missing.has(cell));
    const levels =
      feature.levels !== undefined
        ? feature.levels.map(levelKey)
        : [...new Set(observed.map(levelKey))].sort((a, b) => {
            const na = Number(a);
            const nb = Number(b);
            return Number.isFinite(na) && Number.isFinite(nb) ? na - nb : a < b ? -1 : a > b ? 1 : 0;
          });
    const counts = new Map<string, number>();
    for (const i of train) {
      const cell = kept[i]![col]!;
      if (!missing.has(cell)) counts.set(levelKey(cell), (counts.get(levelKey(cell)) ?? 0) + 1);
    }
    let fill = '';
    let best = 0;
    for (const level of levels) {
      if ((counts.get(level) ?? 0) > best) {
        best = counts.get(level)!;
        fill = level;
      }
    }
    return { feature, col, levels, fill };
  });
  const featureNames = encoders.flatMap((e) =>
    e.feature.type === 'numeric' ? [e.feature.name] : e.levels.slice(1).map((level) => `${e.feature.name}=${level}`),
  );
  const width = featureNames.length;
  if (width === 0) throw new TabularDataException(TabularDataErrorCode.Schema, 'the schema encodes to zero columns');

  const encode = (indices: number[]): Float64Array => {
    const out = new Float64Array(indices.length * width);
    indices.forEach((i, r) => {
      const row = kept[i]!;
      let j = r * width;
      for (const e of encoders) {
        let cell = row[e.col]!;
        if (missing.has(cell)) {
          if (e.fill === '') {
            throw new TabularDataException(
              TabularDataErrorCode.TooFewRows,
              `column '${e.feature.name}' has no training value to impute from`,
              e.feature.name,
            );
          }
          cell = e.fill;
        }
        if (e.feature.type === 'numeric') {
          out[j++] = parseNumber(cell, e.feature.name, keptRowNumbers[i]!);
        } else {
          const level = e.levels.indexOf(levelKey(cell));
          if (level < 0) {
            throw new TabularDataException(
              TabularDataErrorCode.UnknownLevel,
              `column '${e.feature.name}' has a value outside its levels in data row ${keptRowNumbers[i]}`,
              e.feature.name,
            );
          }
          for (let k = 1; k < e.levels.length; k++) out[j++] = level === k ? 1 : 0;
        }
      }
    });
    return out;
  };
  const trainX = encode(train);
  const testX = encode(test);

  // 4. Standardise with training statistics only.
  let standardization: PreparedTabularData['standardization'] = null;
  if (schema.standardize) {
    const mean = new Float64Array(width);
    const std = new Float64Array(width);
    const m = train.length;
    for (let c = 0; c < width; c++) {
      let sum = 0;
      for (let r = 0; r < m; r++) sum += trainX[r * width + c]!;
      mean[c] = sum / m;
      let squares = 0;
      for (let r = 0; r < m; r++) squares += (trainX[r * width + c]! - mean[c]!) ** 2;
      const sd = m > 1 ? Math.sqrt(squares / (m - 1)) : 0;
      std[c] = sd > 1e-12 ? sd : 1;
    }
    for (const matrix of [trainX, testX]) {
      for (let k = 0; k < matrix.length; k++) matrix[k] = (matrix[k]! - mean[k % width]!) / std[k % width]!;
    }
    standardization = { mean, std };
  }
  const toSplit = (x: Float64Array, indices: number[]): TabularSplit => ({
    x: Float32Array.from(x),
    y: Uint8Array.from(indices, (i) => labels[i]!),
    n: indices.length,
  });
  return {
    featureNames,
    train: toSplit(trainX, train),
    test: toSplit(testX, test),
    standardization,
    rowsRead: rows.length,
    rowsKept: kept.length,
  };
}
