// The hub's running sum of masked inputs modulo 2^k. Inputs are added one at a time as they arrive, so the hub never
// holds more than the sum and the input being added; each masked input alone is uniformly distributed and reveals
// nothing, and the hub need never write one to disk. The sum and the contributor list are plain values (Uint32Array
// and string[]) that the hub can persist between arrivals.

import { modulusMask } from './quantisation';
import { SecAggErrorCode, SecAggException } from './secagg.exception';

/** target ← target + vector mod 2^k, in place. Both must have the same length. */
export function addModulo(target: Uint32Array, vector: Uint32Array, modulusBits: number): void {
  if (target.length !== vector.length) {
    throw new SecAggException(
      SecAggErrorCode.VectorInvalid,
      `Cannot add a vector of ${vector.length} values to a sum of ${target.length}.`,
    );
  }
  const mask = modulusMask(modulusBits);
  for (let i = 0; i < target.length; i++) target[i] = (target[i]! + vector[i]!) & mask;
}

/** An incremental sum of masked inputs modulo 2^k with the ids of who contributed. */
export class MaskedSumAccumulator {
  private readonly values: Uint32Array;
  private readonly ids: string[];

  /** A new, empty sum of `vectorLength` values, or one restored from a persisted sum and contributor list. */
  constructor(
    private readonly config: { vectorLength: number; modulusBits: number },
    restored?: { sum: Uint32Array; contributors: readonly string[] },
  ) {
    if (restored !== undefined && restored.sum.length !== config.vectorLength) {
      throw new SecAggException(
        SecAggErrorCode.VectorInvalid,
        `A restored sum has ${restored.sum.length} values, expected ${config.vectorLength}.`,
      );
    }
    this.values = restored?.sum ?? new Uint32Array(config.vectorLength);
    this.ids = [...(restored?.contributors ?? [])];
  }

  /** Adds one masked input (already checked with checkMaskedInput). Refuses a second input from one participant. */
  add(participantId: string, vector: Uint32Array): void {
    if (this.ids.includes(participantId)) {
      throw new SecAggException(SecAggErrorCode.OutOfOrder, `${participantId}'s masked input is already in the sum.`);
    }
    addModulo(this.values, vector, this.config.modulusBits);
    this.ids.push(participantId);
  }

  /** The running sum (the accumulator's own array: copy it before changing it). */
  get sum(): Uint32Array {
    return this.values;
  }

  /** Who has contributed, in arrival order. */
  get contributors(): readonly string[] {
    return this.ids;
  }
}
