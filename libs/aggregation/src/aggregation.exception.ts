/** Why the aggregation library refused an input or a state; stable strings the hub maps to its own errors. */
export enum AggregationErrorCode {
  /** The update (or state, or global vector) has a different number of parameters than expected. */
  LengthMismatch = 'LENGTH_MISMATCH',
  /** The update holds NaN or ±Infinity. */
  NonFiniteValue = 'NON_FINITE_VALUE',
  /** The weight (number of examples) is not a finite number > 0. */
  InvalidWeight = 'INVALID_WEIGHT',
  /** The update's L2 norm is above the caller's limit. */
  NormExceeded = 'NORM_EXCEEDED',
  /** A result was asked for before any update was accepted. */
  EmptyAggregate = 'EMPTY_AGGREGATE',
  /** A constructor or function option is out of its documented range. */
  InvalidParameter = 'INVALID_PARAMETER',
  /** Serialized optimizer state is truncated, has a bad magic/version/checksum, or holds non-finite numbers. */
  StateCorrupt = 'STATE_CORRUPT',
  /** Serialized optimizer state is intact but was written by another algorithm, length or hyperparameters. */
  StateMismatch = 'STATE_MISMATCH',
  /** The injected noise source returned the wrong length or non-finite samples. */
  NoiseSourceInvalid = 'NOISE_SOURCE_INVALID',
  /** The aggregator's robustness guarantee needs more updates than the round has (e.g. Krum needs n > 2f + 2). */
  TooFewUpdates = 'TOO_FEW_UPDATES',
  /** The aggregation would need more working memory than the configured budget (see aggregator-memory.ts). */
  MemoryBudgetExceeded = 'MEMORY_BUDGET_EXCEEDED',
  /** Bytes read for an aggregation do not hash to the digest the caller expected (e.g. a blob's content address). */
  DigestMismatch = 'DIGEST_MISMATCH',
}

/** The one error type this library throws on purpose; `code` is for programs, `message` for people. */
export class AggregationException extends Error {
  override readonly name = 'AggregationException';

  constructor(
    readonly code: AggregationErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** An update whose bytes, as read, hashed to another digest than expected. */
export interface DigestMismatch {
  /** Its index in the source. */
  readonly update: number;
  readonly expected: string;
  /** SHA-256 (lowercase hex) of the bytes read. */
  readonly actual: string;
}

/**
 * Thrown (code DigestMismatch) instead of an aggregate when some updates' bytes, hashed as they were read, do not
 * match the digests the caller expected: the aggregate would hold bytes nobody vouched for. Names every such update;
 * the caller sets them aside and aggregates the others again.
 */
export class DigestMismatchException extends AggregationException {
  constructor(readonly mismatches: readonly DigestMismatch[]) {
    super(
      AggregationErrorCode.DigestMismatch,
      `${mismatches.length} update(s) read with other bytes than expected: ` +
        mismatches.map((m) => `#${m.update} hashes to ${m.actual}, not ${m.expected}`).join('; '),
    );
  }
}
