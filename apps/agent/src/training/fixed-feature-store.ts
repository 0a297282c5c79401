import { compileNetwork, fixedFeatures, fixedFrontOf } from '@tessera/ml';
import type { NetworkSpec } from '@tessera/protocol';
import { DEFAULT_IMAGE_CACHE_BYTES } from '../data/image-dataset';
import type { SplitData } from './study-model';

/** Rows read and transformed at a time while the features are computed: one batch of decoded images in memory. */
const FEATURE_READ_CHUNK = 256;

/**
 * The features of a network's fixed front (@tessera/ml fixedFrontOf: a first `scattering` layer, which has no
 * parameters) for every row of a split, computed once and kept while the split lives, so that each round trains and
 * evaluates only the layers after it. The features are bit for bit what the forward pass computes from the images
 * (network-fixed-features.spec.ts in @tessera/ml), so updates, metrics and the DP-SGD mechanism are unchanged.
 *
 * Memory: one Float32Array of n × (features per row) per split and front, held by a WeakMap on the split's rows
 * object (the splits live as long as their study's prepared data, StudyDatasets), and only when it fits
 * `budgetBytes` (default: the decoded-image budget, 256 MiB); beyond it, null, and the model transforms each batch
 * as before. Features never leave the silo and are never written to disk.
 */
export class FixedFeatureStore {
  private readonly bySplit = new WeakMap<object, Map<string, Promise<Float32Array | null>>>();

  constructor(private readonly budgetBytes: number = DEFAULT_IMAGE_CACHE_BYTES) {}

  /**
   * The split's features under the network's fixed front, or null when the network has none or they would not fit
   * the budget. Computed on the first call for a split and front; a failure (an image that no longer decodes) is not
   * kept, so the next call reads the images again and reports it the same way.
   */
  featuresOf(spec: NetworkSpec, split: SplitData): Promise<Float32Array | null> {
    const network = compileNetwork(spec);
    const front = fixedFrontOf(network);
    if (front === null || split.n * front.rowLength * 4 > this.budgetBytes) return Promise.resolve(null);
    const entries = this.bySplit.get(split.x) ?? new Map<string, Promise<Float32Array | null>>();
    this.bySplit.set(split.x, entries);
    const known = entries.get(front.key);
    if (known !== undefined) return known;
    const pending = computeFeatures(spec, split, network.table.rowLength, front.rowLength);
    entries.set(front.key, pending);
    pending.catch(() => entries.delete(front.key));
    return pending;
  }
}

async function computeFeatures(
  spec: NetworkSpec,
  split: SplitData,
  inputLength: number,
  featureLength: number,
): Promise<Float32Array> {
  if (split.x instanceof Float32Array) return fixedFeatures(spec, split.x);
  const out = new Float32Array(split.n * featureLength);
  const rows = new Float32Array(FEATURE_READ_CHUNK * inputLength);
  for (let start = 0; start < split.n; start += FEATURE_READ_CHUNK) {
    const count = Math.min(FEATURE_READ_CHUNK, split.n - start);
    const indices = Int32Array.from({ length: count }, (_, k) => start + k);
    await split.x.readPlain(indices, rows);
    out.set(await fixedFeatures(spec, rows.subarray(0, count * inputLength)), start * featureLength);
  }
  return out;
}

/** The agent process's store: features live as long as the study data they come from. */
export const processFixedFeatures = new FixedFeatureStore();
