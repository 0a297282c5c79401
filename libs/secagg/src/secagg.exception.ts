/** Why the secure-aggregation library refused an input or a step; stable strings the hub and the agent map to their own errors. */
export enum SecAggErrorCode {
  /** The round's parameters are out of range or inconsistent (roster, neighbourhood size, threshold, modulus, scale). */
  InvalidParameters = 'INVALID_PARAMETERS',
  /** n clipped, quantised inputs could wrap modulo 2^k: the sum would be silently wrong. */
  ModulusTooSmall = 'MODULUS_TOO_SMALL',
  /** A message does not parse (shape, lengths, encodings) or names a participant outside the roster. */
  MalformedMessage = 'MALFORMED_MESSAGE',
  /** A message or a state belongs to another round configuration (its configuration hash differs). */
  ConfigMismatch = 'CONFIG_MISMATCH',
  /** An identity key is of a type or size this library does not sign or verify with. */
  UnsupportedIdentityKey = 'UNSUPPORTED_IDENTITY_KEY',
  /** A participant has fewer than t usable neighbours left, so its secrets could not be recovered (or its input would be exposed). */
  TooFewNeighbours = 'TOO_FEW_NEIGHBOURS',
  /** Fewer than t participants survive a stage, or some needed secret has fewer than t reachable share holders. */
  TooFewSurvivors = 'TOO_FEW_SURVIVORS',
  /** The survivors' mask graph is disconnected: unmasking would reveal partial sums, so it is refused. */
  SurvivorGraphDisconnected = 'SURVIVOR_GRAPH_DISCONNECTED',
  /** An encrypted share does not authenticate (wrong key, wrong round, sender or receiver, or altered bytes). */
  ShareDecryptionFailed = 'SHARE_DECRYPTION_FAILED',
  /** An unmasking request classifies a participant both as survivor and as dropped, or differently from an earlier request. */
  ConflictingRevealRequest = 'CONFLICTING_REVEAL_REQUEST',
  /** Unmasking was attempted before t shares of every needed secret arrived. */
  InsufficientShares = 'INSUFFICIENT_SHARES',
  /** A reconstructed secret does not match its commitment or advertised public key (a corrupted share). */
  ReconstructionMismatch = 'RECONSTRUCTION_MISMATCH',
  /** A vector has the wrong length, a non-finite value, or a value outside [0, 2^k). */
  VectorInvalid = 'VECTOR_INVALID',
  /** A step was called out of order (e.g. the same input added twice, or an input after unmasking was planned). */
  OutOfOrder = 'OUT_OF_ORDER',
}

/** The one error type this library throws on purpose; `code` is for programs, `message` for people. */
export class SecAggException extends Error {
  override readonly name = 'SecAggException';

  constructor(
    readonly code: SecAggErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Why a participant's message was set aside at some stage (it then counts as dropped from that stage on). */
export enum ExclusionReason {
  /** The participant's key advertisement is not signed by its enrolled identity key. */
  SignatureInvalid = 'SIGNATURE_INVALID',
  /** No identity key is known for the participant. */
  IdentityKeyMissing = 'IDENTITY_KEY_MISSING',
  /** The identity key is of an unsupported type or too weak. */
  IdentityKeyUnsupported = 'IDENTITY_KEY_UNSUPPORTED',
  /** The message does not parse, or its lengths and encodings are wrong. */
  Malformed = 'MALFORMED',
  /** The message was made for another round configuration. */
  ConfigMismatch = 'CONFIG_MISMATCH',
  /** The sender is not in the round's roster. */
  NotInRoster = 'NOT_IN_ROSTER',
  /** A second message from the same participant at the same stage. */
  Duplicate = 'DUPLICATE',
  /** The sender did not complete the previous stage (e.g. shares from a participant that never advertised keys). */
  MissedPreviousStage = 'MISSED_PREVIOUS_STAGE',
  /** Shares are addressed to participants who are not the sender's advertised neighbours, or to fewer than t of them. */
  SharesMisaddressed = 'SHARES_MISADDRESSED',
  /** A masked input declares a set of mask partners other than the one the hub routed shares for. */
  MaskPartnersMismatch = 'MASK_PARTNERS_MISMATCH',
  /** An unmasking response reveals a share the plan did not ask for, or one the responder does not hold. */
  UnrequestedShare = 'UNREQUESTED_SHARE',
}

/** The protocol stage at which an exclusion happened. */
export type SecAggStage = 'advertise' | 'share' | 'upload' | 'unmask';

/** A participant set aside at one stage, with the reason (for the audit trail). */
export interface ParticipantExclusion {
  participantId: string;
  stage: SecAggStage;
  reason: ExclusionReason;
  detail: string;
}
