// A silo's round results on the wire: the framed model update with its header and privacy spend, the evaluation-only
// and failure reports, the hub's receipt, and the frame codec.

import { sha256Hex } from '@tessera/canonical';
import { z } from 'zod';
import { Sha256Hex } from './identity';
import { EvaluationPayload } from './rounds-evaluation';

/** What a silo spent on one update, as it reports it (the hub recomputes and checks every figure). */
export const PrivacySpend = z
  .object({
    mechanism: z.enum(['dp-sgd', 'dp-fedavg']),
    unit: z.enum(['record', 'silo']),
    noiseMultiplier: z.number().positive(),
    clipNorm: z.number().positive(),
    samplingRate: z.number().gt(0).max(1),
    /** DP-SGD steps (or DP-FedAvg releases) per round. */
    steps: z.number().int().min(1),
    delta: z.number().gt(0).lt(1),
    /** Training rounds this silo has been charged for in this study, this one included. */
    trainingRounds: z.number().int().min(0),
    /** Noisy evaluation releases charged so far in this study (0 without noisy evaluation). */
    evaluationReleases: z.number().int().min(0),
    /**
     * Personalization charges so far (0 or 1): the DP-SGD steps of the final fine-tuning and of the local-only
     * baseline (plan.personalization), composed with the training rounds'. Absent: 0 (reports before this option).
     */
    personalizations: z.number().int().min(0).max(1).optional(),
    /** ε added by this round's charge. */
    epsilonRound: z.number().min(0),
    /** ε charged for the study so far: max(training, evaluation), the two parts being disjoint record sets. */
    epsilonCumulative: z.number().min(0),
    accountant: z.string(),
  })
  .strict();
export type PrivacySpend = z.infer<typeof PrivacySpend>;

/** Largest training-record count a silo may report (a silo claiming more is refused, not believed). */
export const MAX_NUM_EXAMPLES = 1_000_000_000;

/** Header of a framed model update. */
export const UpdateHeader = z
  .object({
    studyId: z.string().uuid(),
    round: z.number().int().min(1),
    attempt: z.number().int().min(1),
    planHash: Sha256Hex,
    baseModelHash: Sha256Hex,
    /**
     * Training records at the silo, only when the plan releases them ('exact', without DP): the FedAvg weight.
     * Null otherwise (equal weights). Bounded so no silo can claim an absurd weight.
     */
    numExamples: z.number().int().min(1).max(MAX_NUM_EXAMPLES).nullable(),
    /** Number of float32 values in the payload. */
    length: z.number().int().min(1),
    payloadSha256: Sha256Hex,
    /** L2 norm of the payload as the agent computed it; the hub recomputes it. */
    l2Norm: z.number().finite().min(0),
    /** The evaluation of the base model, when the plan releases it every round; else null. */
    evaluation: EvaluationPayload.nullable(),
    privacy: PrivacySpend.nullable(),
  })
  .strict();
export type UpdateHeader = z.infer<typeof UpdateHeader>;

/** An evaluation-only report (the final round), or a training round's result without an update. */
export const EvaluationReport = z
  .object({
    round: z.number().int().min(1),
    attempt: z.number().int().min(1),
    planHash: Sha256Hex,
    modelHash: Sha256Hex,
    /** Null when the plan releases no evaluation: the report only says the task is done. */
    evaluation: EvaluationPayload.nullable(),
    /**
     * With plan.personalization: the same release for the silo's personalized model (the final global model
     * fine-tuned on its own training split) and, with localBaseline, for its local-only model. The models stay at the
     * silo. Absent without personalization.
     */
    personalized: EvaluationPayload.optional(),
    localBaseline: EvaluationPayload.optional(),
    /** The silo's privacy spend after this release, for DP plans with noisy evaluation or personalization; else null. */
    privacy: PrivacySpend.nullable(),
  })
  .strict();
export type EvaluationReport = z.infer<typeof EvaluationReport>;

/** A silo cannot do a task: the reason, never any data value. */
export const FailureReport = z
  .object({
    round: z.number().int().min(1),
    attempt: z.number().int().min(1),
    code: z.enum([
      'DATA_SCHEMA_MISMATCH',
      'DATA_UNREADABLE',
      'PRIVACY_CAP_REACHED',
      'PRIVACY_PLAN_UNSAFE',
      'PLAN_NOT_APPROVED',
      /** The hub asked for more than the approved plan allows (rounds, evaluations or ε); the agent refused. */
      'PLAN_LIMIT_REACHED',
      'TRAINING_FAILED',
    ]),
    message: z.string().min(1).max(2000),
  })
  .strict();
export type FailureReport = z.infer<typeof FailureReport>;

export const UpdateReceipt = z.object({
  studyId: z.string().uuid(),
  siloId: z.string().uuid(),
  round: z.number().int(),
  attempt: z.number().int(),
  updateSha256: Sha256Hex,
  receivedAt: z.string(),
  /** Hub's Ed25519 signature over the canonical receipt payload, when the audit module signs receipts. */
  signature: z.unknown().optional(),
});
export type UpdateReceipt = z.infer<typeof UpdateReceipt>;

/* ---------- framed update: 'TSU1' | u32 LE header length | header JSON | float32 LE payload ---------- */

export const UPDATE_MAGIC = 'TSU1';
/** A header larger than this is refused before it is parsed. */
export const MAX_UPDATE_HEADER_BYTES = 64 * 1024;

/** SHA-256 of bytes as 64 lowercase hex digits (update payloads, frames, models): @tessera/canonical's. */
export { sha256Hex };

/** Little-endian bytes of a Float32Array (a view on the platform's little-endian memory, copied if needed). */
export function float32Bytes(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

export function encodeUpdateFrame(header: UpdateHeader, payload: Float32Array): Buffer {
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.write(UPDATE_MAGIC, 0, 'ascii');
  prefix.writeUInt32LE(headerBytes.length, 4);
  return Buffer.concat([prefix, headerBytes, Buffer.from(float32Bytes(payload))]);
}

export class UpdateFrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UpdateFrameError';
  }
}

/** Reads the 8-byte prefix; returns the header length. */
export function readFramePrefix(prefix: Uint8Array): number {
  if (prefix.length < 8) throw new UpdateFrameError('the update is shorter than its 8-byte prefix');
  const magic = Buffer.from(prefix.subarray(0, 4)).toString('ascii');
  if (magic !== UPDATE_MAGIC) throw new UpdateFrameError(`the update does not start with "${UPDATE_MAGIC}"`);
  const length = Buffer.from(prefix.subarray(4, 8)).readUInt32LE(0);
  if (length === 0 || length > MAX_UPDATE_HEADER_BYTES) {
    throw new UpdateFrameError(`the update header length ${length} is outside 1..${MAX_UPDATE_HEADER_BYTES}`);
  }
  return length;
}

export function parseUpdateHeader(bytes: Uint8Array): UpdateHeader {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    throw new UpdateFrameError('the update header is not valid JSON');
  }
  const parsed = UpdateHeader.safeParse(json);
  if (!parsed.success) {
    throw new UpdateFrameError(
      `the update header is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

/** Decodes a whole frame held in memory (agents' tests, small updates). The hub streams instead. */
export function decodeUpdateFrame(frame: Uint8Array): { header: UpdateHeader; payload: Float32Array } {
  const headerLength = readFramePrefix(frame.subarray(0, 8));
  const header = parseUpdateHeader(frame.subarray(8, 8 + headerLength));
  const body = frame.subarray(8 + headerLength);
  if (body.length !== header.length * 4) {
    throw new UpdateFrameError(`the payload has ${body.length} bytes; the header announces ${header.length * 4}`);
  }
  const payload = new Float32Array(header.length);
  new Uint8Array(payload.buffer).set(body);
  return { header, payload };
}
