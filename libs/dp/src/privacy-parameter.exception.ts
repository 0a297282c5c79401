/** Why the privacy library refused an input; stable strings that the hub, the agent and the CLI map to their own errors. */
export enum PrivacyParameterErrorCode {
  /** Epsilon (target or budget) is not a finite number > 0. */
  InvalidEpsilon = 'INVALID_EPSILON',
  /** Delta is not a finite number in the open interval (0, 1). */
  InvalidDelta = 'INVALID_DELTA',
  /** The Poisson sampling rate q is not a finite number in [0, 1] (or is 0 where a positive rate is needed). */
  InvalidSamplingRate = 'INVALID_SAMPLING_RATE',
  /** The number of steps is not a positive safe integer. */
  InvalidSteps = 'INVALID_STEPS',
  /** The noise multiplier (sigma relative to the clipping norm) is not a finite number > 0. */
  InvalidNoiseMultiplier = 'INVALID_NOISE_MULTIPLIER',
  /** An RDP order is not a number > 1 (or +Infinity), or the order grid is empty. */
  InvalidOrder = 'INVALID_ORDER',
  /** Calibration cannot meet the target epsilon with any noise multiplier in the searched range. */
  TargetUnreachable = 'TARGET_UNREACHABLE',
  /** A noise standard deviation is not a finite number > 0. */
  InvalidStddev = 'INVALID_STDDEV',
  /** A clipping norm is not a finite number > 0. */
  InvalidClipNorm = 'INVALID_CLIP_NORM',
  /** A vector holds NaN or ±Infinity, or a value leaves the representable range after scaling to the noise lattice. */
  NonFiniteValue = 'NON_FINITE_VALUE',
  /** A length, a granularity or another option is outside its documented range. */
  InvalidOption = 'INVALID_OPTION',
}

/** The one error type this library throws on purpose; `code` is for programs, `parameter` names the culprit, `message` is for people. */
export class PrivacyParameterError extends Error {
  override readonly name = 'PrivacyParameterError';

  constructor(
    readonly code: PrivacyParameterErrorCode,
    readonly parameter: string,
    message: string,
  ) {
    super(message);
  }
}
