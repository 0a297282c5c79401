import { statSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import {
  canonicalCell,
  isHeldOutRecord,
  labelOfCell,
  parseCsv,
  seededUniform,
  type NetworkExampleSource,
  type RowDropReason,
} from '@tessera/ml';
import type { ImageSchema, ImageTransform, LabelRule } from '@tessera/protocol';
import { decodeImage, ImageFileError, type ImageFileProblem, type ImageShape } from './image-decoder';

/**
 * An image study's data at a silo: the manifest's rows, their labels and splits, every file decoded once and checked
 * before any training (so a bad file is counted, never met in the middle of a DP-SGD step), and the decoded images
 * kept in memory when they fit the cache budget, or decoded again from disk batch by batch when they do not.
 *
 * Memory bound while training: with the cache, n × height × width × channels × 4 bytes, which the budget caps (default
 * 256 MiB); streaming, one batch of rows (the trainer's buffer) plus at most DECODE_CONCURRENCY images being decoded,
 * plus the index of the manifest (its file paths and labels, about 100 bytes per row): independent of the images'
 * number and size on disk apart from that index.
 */

/** Images decoded at once (libvips threads each decode; more only queues work on a 2-core machine). */
export const DECODE_CONCURRENCY = 4;
/** Default budget of decoded images kept in memory: 256 MiB of float32. */
export const DEFAULT_IMAGE_CACHE_BYTES = 256 * 1024 * 1024;

/** Files of one reason, for the silo's own log: how many, and the first few paths (local only, never sent). */
export interface ImageFileProblems {
  readonly problem: ImageFileProblem;
  readonly files: number;
  readonly examples: readonly string[];
}

/** Manifest rows dropped for their label (missing, not a number, not a declared class). */
export interface ManifestDrops {
  readonly reason: RowDropReason | 'missing-file-name';
  readonly rows: number;
  readonly firstRow: number;
}

export interface PreparedImages {
  readonly train: ImageSplit;
  readonly test: ImageSplit;
  readonly rowsRead: number;
  readonly dropped: readonly ManifestDrops[];
  readonly fileProblems: readonly ImageFileProblems[];
  /** True when the decoded images are held in memory; false when batches are decoded from disk. */
  readonly cached: boolean;
}

/** Why the manifest itself cannot be used (its structure, not one row). */
export class ManifestError extends Error {
  constructor(
    readonly kind: 'missing-column' | 'unreadable',
    message: string,
  ) {
    super(message);
    this.name = 'ManifestError';
  }
}

interface ManifestRecord {
  readonly path: string;
  readonly label: number;
}

/**
 * One split of the images as the trainer reads it: `n` rows of height × width × channels values, `y` the labels.
 * Training reads go through `readRows` (augmented when `augment` is set, with randomness of the training seed and the
 * step, never of the data); `readPlain` reads without augmentation (evaluation).
 */
export class ImageSplit implements NetworkExampleSource {
  readonly n: number;
  readonly rowLength: number;
  private augmentSeed = 0;
  private augment = false;

  constructor(
    private readonly records: readonly ManifestRecord[],
    readonly y: Int32Array | Float32Array | Uint8Array,
    private readonly shape: ImageShape,
    private readonly transform: ImageTransform,
    /** Decoded rows (n × rowLength) when cached; null to decode from disk. */
    private readonly cache: Float32Array | null,
  ) {
    this.n = records.length;
    this.rowLength = shape.height * shape.width * shape.channels;
  }

  /** This split as the models read it (SplitData): its size, labels and itself as the row source. */
  asSplit(): { n: number; y: Int32Array | Float32Array | Uint8Array; x: ImageSplit } {
    return { n: this.n, y: this.y, x: this };
  }

  /** Turns on the plan's augmentation for training reads, seeded by the training seed (public, data-independent). */
  withAugmentation(seed: number): this {
    this.augment = this.augments();
    this.augmentSeed = seed;
    return this;
  }

  /** Whether the plan augments training reads (a flip or a random crop), so that they differ from plain reads. */
  augments(): boolean {
    const a = this.transform.augmentation;
    return a !== undefined && (a.horizontalFlip === true || a.randomCrop !== undefined);
  }

  async readRows(indices: ArrayLike<number>, out: Float32Array, step: number): Promise<void> {
    await this.readPlain(indices, out);
    if (!this.augment) return;
    const random = seededUniform((Math.imul(this.augmentSeed ^ 0x5bd1e995, 0x9e3779b1) + step) >>> 0);
    const scratch = new Float32Array(this.rowLength);
    for (let k = 0; k < indices.length; k++) {
      augmentImage(
        out.subarray(k * this.rowLength, (k + 1) * this.rowLength),
        scratch,
        this.shape,
        this.transform,
        random,
      );
    }
  }

  /** The rows `indices` as decoded (no augmentation), in order. */
  async readPlain(indices: ArrayLike<number>, out: Float32Array): Promise<void> {
    const width = this.rowLength;
    if (this.cache !== null) {
      for (let k = 0; k < indices.length; k++) {
        const row = indices[k]!;
        out.set(this.cache.subarray(row * width, (row + 1) * width), k * width);
      }
      return;
    }
    await forEachLimited(indices.length, DECODE_CONCURRENCY, async (k) => {
      const record = this.records[indices[k]!]!;
      out.set(await decodeImage(record.path, this.transform, this.shape), k * width);
    });
  }
}

/**
 * The plan's augmentation applied to one decoded image in place: a horizontal flip with probability 1/2, then a
 * random crop of the image padded by p zeros on each side (offsets uniform in 0..2p), back to its size.
 */
export function augmentImage(
  image: Float32Array,
  scratch: Float32Array,
  shape: ImageShape,
  transform: ImageTransform,
  random: () => number,
): void {
  const { height: h, width: w, channels: c } = shape;
  const a = transform.augmentation;
  if (a?.horizontalFlip && random() < 0.5) {
    for (let r = 0; r < h; r++) {
      for (let x = 0; x < w >> 1; x++) {
        for (let ch = 0; ch < c; ch++) {
          const left = (r * w + x) * c + ch;
          const right = (r * w + (w - 1 - x)) * c + ch;
          const t = image[left]!;
          image[left] = image[right]!;
          image[right] = t;
        }
      }
    }
  }
  const crop = a?.randomCrop;
  if (crop) {
    const p = crop.padding;
    const dy = Math.floor(random() * (2 * p + 1)) - p;
    const dx = Math.floor(random() * (2 * p + 1)) - p;
    scratch.fill(0);
    for (let r = 0; r < h; r++) {
      const sr = r + dy;
      if (sr < 0 || sr >= h) continue;
      for (let x = 0; x < w; x++) {
        const sx = x + dx;
        if (sx < 0 || sx >= w) continue;
        for (let ch = 0; ch < c; ch++) scratch[(r * w + x) * c + ch] = image[(sr * w + sx) * c + ch]!;
      }
    }
    image.set(scratch);
  }
}

/** Runs `task(0..count−1)` with at most `limit` at once; the first failure rejects (the others finish first). */
async function forEachLimited(count: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async () => {
    while (next < count) {
      const i = next++;
      try {
        await task(i);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  if (errors.length > 0) throw errors[0];
}

/**
 * Whether a manifest row is held out: @tessera/ml's keyed hash of a record (isHeldOutRecord) over the row's file path
 * and label cell, in their canonical text, as tabular records are hashed. Decided by the row alone.
 */
export function isHeldOutImage(fileCell: string, labelCell: string, split: ImageSchema['split']): boolean {
  return isHeldOutRecord([canonicalCell(fileCell), canonicalCell(labelCell)], split);
}

/** The path a manifest cell names, inside `folder`; null when it would leave the folder (absolute, or through ..). */
function pathInside(folder: string, cell: string): string | null {
  if (cell === '' || isAbsolute(cell)) return null;
  const path = resolve(folder, cell);
  const rel = relative(folder, path);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) || rel.split(sep).includes('..') ? null : path;
}

export interface PrepareImagesOptions {
  /** The manifest's text (CSV with a header row). */
  readonly manifest: string;
  /** Folder the manifest's paths are relative to. */
  readonly folder: string;
  readonly schema: ImageSchema;
  readonly shape: ImageShape;
  /** Budget of decoded images kept in memory (bytes); DEFAULT_IMAGE_CACHE_BYTES when absent. */
  readonly cacheBytes?: number;
}

/**
 * Reads the manifest, labels and splits each row, and decodes every image once to check it. A row with an unusable
 * label is dropped and counted (by reason); a file that is missing, outside the folder, unreadable or of a refused
 * size is left out and counted per reason with the first paths, for the silo's own log. Only the manifest's structure
 * fails (no header, a column the plan needs absent): ManifestError.
 */
export async function prepareImages(options: PrepareImagesOptions): Promise<PreparedImages> {
  const { schema, shape, folder } = options;
  let rows: string[][];
  try {
    rows = parseCsv(options.manifest);
  } catch (err) {
    throw new ManifestError('unreadable', `the manifest is not valid CSV: ${(err as Error).message}`);
  }
  const header = rows.shift();
  if (header === undefined) throw new ManifestError('missing-column', 'the manifest is empty: it has no header row');
  const columnIndex = (name: string): number => {
    const i = header.indexOf(name);
    if (i < 0) throw new ManifestError('missing-column', `the manifest has no column '${name}'`);
    return i;
  };
  const fileIndex = columnIndex(schema.fileColumn);
  const labelIndex = columnIndex(schema.label.column);
  const missing = new Set(['', ...(schema.missingValues ?? []).map(canonicalCell)]);

  const drops = new Map<string, { reason: ManifestDrops['reason']; rows: number; firstRow: number }>();
  const drop = (reason: ManifestDrops['reason'], row: number) => {
    const entry = drops.get(reason);
    if (entry) entry.rows++;
    else drops.set(reason, { reason, rows: 1, firstRow: row });
  };
  const candidates: { record: ManifestRecord; heldOut: boolean; cell: string }[] = [];
  const problems = new Map<ImageFileProblem, { files: number; examples: string[] }>();
  const fileProblem = (problem: ImageFileProblem, cell: string) => {
    const entry = problems.get(problem) ?? { files: 0, examples: [] };
    entry.files++;
    if (entry.examples.length < 5) entry.examples.push(cell);
    problems.set(problem, entry);
  };
  rows.forEach((row, r) => {
    const line = r + 2;
    if (row.length !== header.length) return drop('field-count', line);
    const fileCell = row[fileIndex]!;
    if (fileCell === '') return drop('missing-file-name', line);
    const labelCell = canonicalCell(row[labelIndex]!);
    if (missing.has(labelCell)) return drop('missing-label', line);
    const label = labelOfCell(schema.label, labelCell);
    if (typeof label === 'string') return drop(label, line);
    const path = pathInside(folder, fileCell);
    if (path === null) return fileProblem('outside-folder', fileCell);
    candidates.push({
      record: { path, label },
      heldOut: isHeldOutImage(fileCell, labelCell, schema.split),
      cell: fileCell,
    });
  });

  const rowLength = shape.height * shape.width * shape.channels;
  const budget = options.cacheBytes ?? DEFAULT_IMAGE_CACHE_BYTES;
  const cached = candidates.length * rowLength * 4 <= budget;
  const decoded: (Float32Array | null)[] = new Array<Float32Array | null>(candidates.length).fill(null);
  const usable = new Array<boolean>(candidates.length).fill(false);
  await forEachLimited(candidates.length, DECODE_CONCURRENCY, async (i) => {
    const candidate = candidates[i]!;
    if (!isFile(candidate.record.path)) return fileProblem('missing', candidate.cell);
    try {
      const image = await decodeImage(candidate.record.path, schema.image, shape);
      usable[i] = true;
      if (cached) decoded[i] = image;
    } catch (err) {
      if (!(err instanceof ImageFileError)) throw err;
      fileProblem(err.problem, candidate.cell);
    }
  });

  const split = (heldOut: boolean): ImageSplit => {
    const chosen = candidates.flatMap((c, i) => (usable[i] && c.heldOut === heldOut ? [i] : []));
    const y = labelArray(schema.label, chosen.length);
    chosen.forEach((i, k) => (y[k] = candidates[i]!.record.label));
    let cache: Float32Array | null = null;
    if (cached) {
      cache = new Float32Array(chosen.length * rowLength);
      chosen.forEach((i, k) => cache!.set(decoded[i]!, k * rowLength));
    }
    return new ImageSplit(
      chosen.map((i) => candidates[i]!.record),
      y,
      shape,
      schema.image,
      cache,
    );
  };
  return {
    train: split(false),
    test: split(true),
    rowsRead: rows.length,
    dropped: [...drops.values()],
    fileProblems: [...problems].map(([problem, p]) => ({ problem, files: p.files, examples: p.examples })),
    cached,
  };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    // ENOENT, EACCES, ENOTDIR on a path component: the file is not there for this agent.
    return false;
  }
}

function labelArray(rule: LabelRule, n: number): Int32Array | Float32Array | Uint8Array {
  return rule.operator === 'value'
    ? new Float32Array(n)
    : rule.operator === 'class'
      ? new Int32Array(n)
      : new Uint8Array(n);
}
