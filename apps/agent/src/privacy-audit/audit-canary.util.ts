// The canary records of the empirical privacy audit: the record an adversary who knows the silo's whole file tries to
// detect in the release. Each canary is a row of the silo's own CSV format, appended to the file in the "in" world;
// the "out" world is the file as it is. Add/remove of one record is exactly the neighbouring relation the accountant
// charges for (unit: one record), and because the split is a keyed hash of the record alone, the canary's split is
// decided by the canary's own cells: it is placed in the split it is meant to audit by construction, and checked.
import {
  canonicalCell,
  parseCsv,
  prepareTabularData,
  type LogisticRegressionSpec,
  type TabularSchema,
} from '@tessera/ml';
import { AgentError, AgentErrorCode } from '../agent.error';

/**
 * - `duplicate`: a copy of an existing training record (the file then holds it twice);
 * - `outlier`: a synthetic record, every numeric feature at an end of the file's own observed range and every
 *   categorical at the level, and the label, that make its gradient point against the mean gradient of the others;
 * - `mislabeled`: a copy of a training record with its label flipped;
 * - `held-out`: a copy of a test record: audits the noisy evaluation release instead of the training update.
 */
export const CANARY_KINDS = ['duplicate', 'outlier', 'mislabeled', 'held-out'] as const;
export type CanaryKind = (typeof CANARY_KINDS)[number];

export type SplitName = 'train' | 'test';

export interface Canary {
  readonly kind: CanaryKind;
  /** The row appended to the file in the "in" world, in the file's column order. */
  readonly cells: readonly string[];
  /** The canary as the plan encodes it: features and 0/1 label. */
  readonly x: Float32Array;
  readonly y: 0 | 1;
  /** Where the keyed-hash split puts it: 'train' for the training canaries, 'test' for `held-out`. */
  readonly split: SplitName;
  /** How it was made, in words that name lines and columns but never a value (the report may be shared). */
  readonly description: string;
}

/** The silo's file, parsed once: the header (when the schema does not name the columns) and the data rows. */
export interface AuditBaseFile {
  readonly header: readonly string[] | null;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly string[])[];
  /** 1-based line of the first data row, for descriptions. */
  readonly firstLine: number;
}

/** One data row encoded on its own: null when the plan drops it. */
interface EncodedRow {
  readonly index: number;
  readonly x: Float32Array;
  readonly y: 0 | 1;
  readonly split: SplitName;
}

function usage(message: string): never {
  throw new AgentError(AgentErrorCode.USAGE, message);
}

/** RFC 4180 quoting where a cell needs it, so a row re-serialised reads back as the same cells. */
function csvCell(cell: string): string {
  return /[",\r\n]/.test(cell) ? `"${cell.replace(/"/g, '""')}"` : cell;
}

export function csvLine(cells: readonly string[]): string {
  return cells.map(csvCell).join(',');
}

/** The "in" world's file: the base text with the canary's row appended as one more line. */
export function withCanary(text: string, canary: Canary): string {
  const sep = text.length === 0 || text.endsWith('\n') ? '' : '\n';
  return `${text}${sep}${csvLine(canary.cells)}\n`;
}

export function parseAuditBase(text: string, schema: TabularSchema): AuditBaseFile {
  const rows = parseCsv(text);
  const header = schema.columns === undefined ? (rows.shift() ?? null) : null;
  const columns = schema.columns ?? header;
  if (columns === null || rows.length === 0) usage('the data file has no data rows');
  return { header, columns, rows, firstLine: header === null ? 1 : 2 };
}

/** Encodes one row exactly as the agent will (prepareTabularData on a file of that row alone). */
export function encodeRow(base: AuditBaseFile, cells: readonly string[], schema: TabularSchema): EncodedRow | null {
  const text = [...(base.header === null ? [] : [base.header]), cells].map(csvLine).join('\n') + '\n';
  const data = prepareTabularData(text, schema);
  if (data.rowsKept !== 1) return null;
  const split = data.train.n === 1 ? 'train' : 'test';
  const part = data[split];
  return { index: -1, x: part.x, y: part.y[0] === 1 ? 1 : 0, split };
}

/**
 * Logistic regression's loss gradient at `parameters` for one record, in the flat layout (kernel [d, 1] then bias
 * [1]): (p − y)·(x, 1) with p = sigmoid(w·x + b), the gradient of the binary cross-entropy. Float64.
 */
export function logisticGradient(
  spec: LogisticRegressionSpec,
  parameters: Float32Array,
  x: Float32Array,
  y: 0 | 1,
): Float64Array {
  const d = spec.inputDim;
  let z = parameters[d]!;
  for (let j = 0; j < d; j++) z += parameters[j]! * x[j]!;
  const p = 1 / (1 + Math.exp(-z));
  const g = new Float64Array(d + 1);
  for (let j = 0; j < d; j++) g[j] = (p - y) * x[j]!;
  g[d] = p - y;
  return g;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function norm(a: ArrayLike<number>): number {
  return Math.sqrt(dot(a, a));
}

/** What canary construction needs about the file under the plan: every row encoded, and the mean gradient. */
interface AuditedFile {
  readonly base: AuditBaseFile;
  readonly encoded: readonly (EncodedRow | null)[];
  readonly meanTrainingGradient: Float64Array;
}

function audited(
  base: AuditBaseFile,
  schema: TabularSchema,
  spec: LogisticRegressionSpec,
  parameters: Float32Array,
): AuditedFile {
  const encoded = base.rows.map((row, index) => {
    const e = encodeRow(base, row, schema);
    return e === null ? null : { ...e, index };
  });
  const mean = new Float64Array(spec.inputDim + 1);
  let n = 0;
  for (const e of encoded) {
    if (e === null || e.split !== 'train') continue;
    const g = logisticGradient(spec, parameters, e.x, e.y);
    for (let i = 0; i < g.length; i++) mean[i]! += g[i]!;
    n++;
  }
  if (n === 0) usage('no row of the data file is a training record under the plan: nothing to audit');
  for (let i = 0; i < mean.length; i++) mean[i]! /= n;
  return { base, encoded, meanTrainingGradient: mean };
}

/** The label cells the file uses for each label value (the first seen), so a canary's label is one the file has. */
function labelCells(file: AuditedFile, schema: TabularSchema): Record<0 | 1, string | null> {
  const labelIndex = file.base.columns.indexOf(schema.label.column);
  const cells: Record<0 | 1, string | null> = { 0: null, 1: null };
  for (const e of file.encoded) {
    if (e !== null && cells[e.y] === null) cells[e.y] = file.base.rows[e.index]![labelIndex]!;
  }
  return cells;
}

function decimals(cell: string): number {
  const dot = cell.indexOf('.');
  return dot < 0 || /e/i.test(cell) ? 0 : cell.length - dot - 1;
}

/**
 * Moves a synthetic canary into the split it must audit: the split is a keyed hash of the record's cells, so the
 * first numeric feature is nudged by its last written digit, step by step towards the inside of the file's range,
 * until the hash says `target` (each step has about a 66% (train) or 34% (test) chance). Returns the row and the
 * number of nudges.
 */
function placeInSplit(
  file: AuditedFile,
  schema: TabularSchema,
  cells: readonly string[],
  target: SplitName,
  range: ReadonlyMap<string, { min: number; max: number }>,
): { cells: string[]; encoded: EncodedRow; nudges: number } {
  const feature = schema.features.find((f) => f.type === 'numeric');
  const column = feature === undefined ? -1 : file.base.columns.indexOf(feature.name);
  const start = column < 0 ? NaN : Number(canonicalCell(cells[column]!));
  for (let k = 0; k < 64; k++) {
    const row = [...cells];
    if (k > 0) {
      if (!Number.isFinite(start)) break;
      const places = decimals(canonicalCell(cells[column]!));
      const step = 10 ** -places;
      const r = range.get(feature!.name);
      const inward = r !== undefined && start > (r.min + r.max) / 2 ? -1 : 1;
      row[column] = (start + inward * k * step).toFixed(places);
    }
    const encoded = encodeRow(file.base, row, schema);
    if (encoded !== null && encoded.split === target) return { cells: row, encoded, nudges: k };
  }
  usage(`no canary landing in the ${target} split could be made from this file under the plan`);
}

function numericRanges(file: AuditedFile, schema: TabularSchema): Map<string, { min: number; max: number }> {
  const ranges = new Map<string, { min: number; max: number }>();
  for (const f of schema.features) {
    if (f.type !== 'numeric') continue;
    const column = file.base.columns.indexOf(f.name);
    let min = Infinity;
    let max = -Infinity;
    for (const e of file.encoded) {
      if (e === null) continue;
      const v = Number(canonicalCell(file.base.rows[e.index]![column]!));
      if (!Number.isFinite(v)) continue;
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    if (Number.isFinite(min)) ranges.set(f.name, { min, max });
  }
  return ranges;
}

/** The kept record of `split` maximising `score` (first in the file on ties). */
function bestRecord(file: AuditedFile, split: SplitName, score: (e: EncodedRow) => number): EncodedRow {
  let best: EncodedRow | null = null;
  let bestScore = -Infinity;
  for (const e of file.encoded) {
    if (e === null || e.split !== split) continue;
    const s = score(e);
    if (s > bestScore) {
      best = e;
      bestScore = s;
    }
  }
  if (best === null) usage(`no row of the data file lands in the ${split} split under the plan`);
  return best;
}

function outlierCanary(
  file: AuditedFile,
  schema: TabularSchema,
  spec: LogisticRegressionSpec,
  parameters: Float32Array,
): Canary {
  const ranges = numericRanges(file, schema);
  const labels = labelCells(file, schema);
  const mean = file.meanTrainingGradient;
  const template = file.base.rows[file.encoded.find((e) => e !== null)!.index]!;
  let best: { cells: string[]; cosine: number; y: 0 | 1 } | null = null;
  for (const y of [0, 1] as const) {
    const labelCell = labels[y];
    if (labelCell === null) continue;
    // The gradient (p − y)(x, 1) has the sign of (p − y): + for label 0, − for label 1, whatever x is. Each coordinate
    // of x is chosen to make sign·x_j·ḡ_j as negative as the file's range or levels allow.
    const sign = y === 0 ? 1 : -1;
    const cells = [...template];
    cells[file.base.columns.indexOf(schema.label.column)] = labelCell;
    let j = 0;
    for (const f of schema.features) {
      const column = file.base.columns.indexOf(f.name);
      if (f.type === 'numeric') {
        const r = ranges.get(f.name);
        if (r === undefined) usage(`column '${f.name}' holds no usable number: no outlier can be made`);
        const encode = (v: number) => (f.scaling === undefined ? v : (v - f.scaling.center) / f.scaling.scale);
        const pick = sign * encode(r.min) * mean[j]! <= sign * encode(r.max) * mean[j]! ? r.min : r.max;
        cells[column] = String(pick);
        j++;
      } else {
        // Level 0 is all zeros in the one-hot encoding; level k sets coordinate j + k − 1.
        let level = 0;
        let value = 0;
        for (let k = 1; k < f.levels.length; k++) {
          const v = sign * mean[j + k - 1]!;
          if (v < value) {
            level = k;
            value = v;
          }
        }
        cells[column] = f.levels[level]!;
        j += f.levels.length - 1;
      }
    }
    const encoded = encodeRow(file.base, cells, schema);
    if (encoded === null) continue;
    const g = logisticGradient(spec, parameters, encoded.x, y);
    const cosine = dot(g, mean) / (norm(g) * norm(mean) || 1);
    if (best === null || cosine < best.cosine) best = { cells, cosine, y };
  }
  if (best === null) usage('no outlier canary could be encoded under the plan');
  const placed = placeInSplit(file, schema, best.cells, 'train', ranges);
  return {
    kind: 'outlier',
    cells: placed.cells,
    x: placed.encoded.x,
    y: placed.encoded.y,
    split: 'train',
    description:
      `a synthetic record: each numeric feature at the end of this file's observed range, and each categorical at ` +
      `the level, that turn its gradient against the others' mean gradient at the base model; label ${best.y}; ` +
      `cosine with the mean gradient ${best.cosine.toFixed(3)}; nudged ${placed.nudges} time(s) to land in the training split`,
  };
}

/**
 * The canary of `kind` for this file under the plan (logistic regression), at the model the round starts from. The
 * training canaries ('duplicate', 'outlier', 'mislabeled') land in the training split, 'held-out' in the test split:
 * checked by encoding the canary exactly as the agent will.
 */
export function makeCanary(
  kind: CanaryKind,
  text: string,
  schema: TabularSchema,
  spec: LogisticRegressionSpec,
  parameters: Float32Array,
): Canary {
  const base = parseAuditBase(text, schema);
  const file = audited(base, schema, spec, parameters);
  const line = (e: EncodedRow) => e.index + base.firstLine;
  switch (kind) {
    case 'duplicate': {
      // The training record with the largest gradient at the base model: the one whose copy moves the update most
      // before clipping (after clipping every record moves it by at most C).
      const e = bestRecord(file, 'train', (r) => norm(logisticGradient(spec, parameters, r.x, r.y)));
      return {
        kind,
        cells: base.rows[e.index]!,
        x: e.x,
        y: e.y,
        split: 'train',
        description: `a copy of line ${line(e)} of the file, a training record (the one with the largest gradient at the base model); identical cells hash to the same split`,
      };
    }
    case 'mislabeled': {
      const labels = labelCells(file, schema);
      if (labels[0] === null || labels[1] === null) usage('the file holds one label only: no record can be mislabeled');
      const e = bestRecord(file, 'train', (r) => norm(logisticGradient(spec, parameters, r.x, r.y === 1 ? 0 : 1)));
      const flippedLabel = e.y === 1 ? 0 : 1;
      const cells = [...base.rows[e.index]!];
      cells[base.columns.indexOf(schema.label.column)] = labels[flippedLabel]!;
      const placed = placeInSplit(file, schema, cells, 'train', numericRanges(file, schema));
      return {
        kind,
        cells: placed.cells,
        x: placed.encoded.x,
        y: placed.encoded.y,
        split: 'train',
        description: `a copy of line ${line(e)} with its label flipped to ${flippedLabel} (the training record whose flipped gradient is largest at the base model), nudged ${placed.nudges} time(s) to land in the training split`,
      };
    }
    case 'outlier':
      return outlierCanary(file, schema, spec, parameters);
    case 'held-out': {
      const e = bestRecord(file, 'test', () => 0);
      return {
        kind,
        cells: base.rows[e.index]!,
        x: e.x,
        y: e.y,
        split: 'test',
        description: `a copy of line ${line(e)} of the file, a held-out test record: it never trains, so only the evaluation release can reveal it`,
      };
    }
    default: {
      const unknown: never = kind;
      return usage(`unknown canary kind ${String(unknown)}`);
    }
  }
}
