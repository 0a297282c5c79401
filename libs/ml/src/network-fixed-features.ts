import * as tf from '@tensorflow/tfjs';
import { NETWORK_INPUT, type NetworkSpec } from '@tessera/protocol';
import { ensureBackend } from './backend-selection';
import { TrainingInputErrorCode, TrainingInputException } from './ml.exception';
import { assertTaskLabels } from './network-loss';
import { compileNetwork, type CompiledNetwork } from './network-model';
import { scatteringTransform } from './scattering';
import type { LabelArray } from './training-input';

/**
 * A network's fixed front: its first layer when that layer is a `scattering` transform of the input and nothing after
 * it reads the input again. Such a layer has no parameters and depends on one example alone, so its output (the
 * example's "fixed features") can be computed once per example and kept; training and prediction then start from the
 * features (`rows: 'fixed-features'` of trainNetwork and predictNetwork) and run the layers after it only.
 *
 * Privacy: the features are a deterministic, data-independent function applied to each record on its own, so DP-SGD
 * on the layers after it — per-example gradients, clipping, Poisson sampling and noise exactly as before — is the same
 * mechanism on the same records (Tramèr & Boneh 2021, §3, train a private linear model on fixed ScatterNet features).
 * The parameters, their layout and every update stay those of the whole network.
 */
export interface FixedFront {
  /** Id of the fixed layer; the layers after it read its output as they did. */
  readonly layerId: string;
  /** Layers of the network that the front replaces (from the first one). */
  readonly layerCount: number;
  /** Shape of one example's features: the fixed layer's output shape. */
  readonly outputShape: readonly number[];
  /** Values per example's features. */
  readonly rowLength: number;
  /** What determines the features: the input shape and the fixed layer's parameters (not its id). */
  readonly key: string;
}

/** Which rows a training or prediction call is given: the network's input rows, or its fixed front's features. */
export type NetworkRows = 'input' | 'fixed-features';

const fronts = new WeakMap<CompiledNetwork, FixedFront | null>();

/** The network's fixed front (see FixedFront), or null when it has none. Cached per compiled network. */
export function fixedFrontOf(network: CompiledNetwork): FixedFront | null {
  const cached = fronts.get(network);
  if (cached !== undefined) return cached;
  const front = findFixedFront(network);
  fronts.set(network, front);
  return front;
}

function findFixedFront(network: CompiledNetwork): FixedFront | null {
  const first = network.spec.layers[0];
  const rows = network.table.rows;
  if (first?.kind !== 'scattering' || rows[0]!.inputs.join() !== NETWORK_INPUT || network.spec.input.kind !== 'image')
    return null;
  // A later layer that reads the input itself would need the input rows too.
  if (rows.slice(1).some((row) => row.inputs.includes(NETWORK_INPUT))) return null;
  const outputShape = rows[0]!.outputShape;
  return {
    layerId: first.id,
    layerCount: 1,
    outputShape,
    rowLength: outputShape.reduce((a, b) => a * b, 1),
    key: JSON.stringify({
      input: network.table.inputShape,
      kind: first.kind,
      scales: first.scales,
      angles: first.angles,
    }),
  };
}

/** The fixed front's output for a batch of input rows x [B, rowLength] → [B, ...outputShape]. Call inside tf.tidy. */
export function applyFixedFront(network: CompiledNetwork, front: FixedFront, x: tf.Tensor2D): tf.Tensor {
  const layer = network.spec.layers[0]!;
  if (layer.kind !== 'scattering' || layer.id !== front.layerId) throw new Error('not the fixed front of this network');
  const [h, w, c] = network.table.inputShape as [number, number, number];
  // The same ops on the same values as forwardNetwork's scattering layer: identical features, bit for bit.
  return scatteringTransform(tf.reshape(x, [x.shape[0], h, w, c]), layer.scales, layer.angles);
}

/** Input rows per pass when computing features: bounds the transform's intermediate maps. */
const FEATURE_CHUNK = 256;

/**
 * The fixed front's features of n input rows (row-major n × rowLength → n × front.rowLength), a chunk of rows at a
 * time. Throws when the network has no fixed front.
 */
export async function fixedFeatures(spec: NetworkSpec, x: Float32Array): Promise<Float32Array> {
  await ensureBackend();
  const network = compileNetwork(spec);
  const front = fixedFrontOf(network);
  if (front === null) throw new Error('this network has no fixed front (a first scattering layer)');
  const width = network.table.rowLength;
  if (x.length % width !== 0) {
    throw new TrainingInputException(TrainingInputErrorCode.Features, `x must hold n×${width} values`);
  }
  const n = x.length / width;
  const out = new Float32Array(n * front.rowLength);
  for (let start = 0; start < n; start += FEATURE_CHUNK) {
    const rows = Math.min(FEATURE_CHUNK, n - start);
    const features = tf.tidy(() =>
      applyFixedFront(network, front, tf.tensor2d(x.subarray(start * width, (start + rows) * width), [rows, width])),
    );
    out.set(features.dataSync(), start * front.rowLength);
    features.dispose();
  }
  return out;
}

/**
 * Validates fixed-feature rows (and labels when given) as checkNetworkExamples validates input rows: a non-empty
 * multiple of the front's row length, every value finite. Errors name the row and column, never a value.
 */
export function checkFixedFeatures(
  spec: NetworkSpec,
  x: Float32Array,
  y?: LabelArray,
): { network: CompiledNetwork; n: number; front: FixedFront } {
  const network = compileNetwork(spec);
  const front = requireFixedFront(network);
  const width = front.rowLength;
  if (!(x instanceof Float32Array) || x.length === 0 || x.length % width !== 0) {
    throw new TrainingInputException(
      TrainingInputErrorCode.Features,
      `fixed features must be a non-empty row-major Float32Array of n×${width} values`,
    );
  }
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) {
      throw new TrainingInputException(
        TrainingInputErrorCode.Features,
        `fixed features have a non-finite value at row ${Math.floor(i / width)}, column ${i % width}`,
      );
    }
  }
  const n = x.length / width;
  if (y !== undefined) assertTaskLabels(y, n, network.task);
  return { network, n, front };
}

/** The network's fixed front; a TrainingInputException when rows are given as features of a network without one. */
export function requireFixedFront(network: CompiledNetwork): FixedFront {
  const front = fixedFrontOf(network);
  if (front === null) {
    throw new TrainingInputException(
      TrainingInputErrorCode.Features,
      'rows are fixed features, but this network has no fixed front (a first scattering layer)',
    );
  }
  return front;
}
