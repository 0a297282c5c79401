// Distributed differential privacy under secure aggregation: a silo's share of the noise is added to its quantised
// input on the integer lattice, before masking, so the unmasked sum carries every surviving silo's share and nobody
// (the hub included) ever sees an un-noised input. The noise itself is drawn by @tessera/dp (exact discrete Gaussian,
// distributedNoisePlan); this library only adds integers modulo 2^k.

import { modulusMask } from './quantisation';
import { SecAggErrorCode, SecAggException } from './secagg.exception';

/** Largest |noise| accepted: integers below 2^52 are exact in float64, and so is their sum with a value below 2^32. */
const MAX_NOISE_MAGNITUDE = 2 ** 52;

/**
 * Adds integer `noise` to the quantised `vector` modulo 2^k, in place, and returns it. Refuses (VECTOR_INVALID) a
 * noise vector of the wrong length or holding a value that is not an integer of magnitude below 2^52, so nothing but
 * a lattice point is ever masked. The wrap-around of the sum is the caller's budget (distributedNoiseMaxScale).
 */
export function addNoiseShare(vector: Uint32Array, noise: Float64Array, modulusBits: number): Uint32Array {
  if (noise.length !== vector.length) {
    throw new SecAggException(
      SecAggErrorCode.VectorInvalid,
      `The noise share has ${noise.length} values, the input ${vector.length}.`,
    );
  }
  const mask = modulusMask(modulusBits);
  for (let i = 0; i < vector.length; i++) {
    const z = noise[i]!;
    if (!(Math.abs(z) < MAX_NOISE_MAGNITUDE && Math.floor(z) === z)) {
      throw new SecAggException(SecAggErrorCode.VectorInvalid, `Noise value ${i} is not an integer below 2^52.`);
    }
    // ToInt32 reduces the exact integer v + z modulo 2^32; the mask then reduces modulo 2^k (2^k divides 2^32).
    vector[i] = (vector[i]! + z) & mask;
  }
  return vector;
}
