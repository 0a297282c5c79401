import { createHash } from 'node:crypto';
import { z } from 'zod';
import { Sha256Hex } from './identity';
import { StudyPlan } from './study-plan';

export const StudyStatus = z.enum(['draft', 'awaiting_approvals', 'running', 'completed', 'stopped', 'failed']);
export type StudyStatus = z.infer<typeof StudyStatus>;

export const Decision = z.enum(['approve', 'reject']);
export type Decision = z.infer<typeof Decision>;

/** A study as an invited silo sees it: the exact plan, its version and hash, and this silo's recorded decision. */
export const SiloStudy = z.object({
  studyId: z.string().uuid(),
  status: StudyStatus,
  planVersion: z.number().int().min(1),
  planHash: Sha256Hex,
  plan: StudyPlan,
  /** For DP plans: the mechanism the hub derived for the whole study and the ε it costs (see docs/privacy.md). */
  privacyCost: z
    .object({
      mechanism: z.enum(['dp-sgd', 'dp-fedavg']),
      unit: z.enum(['record', 'silo']),
      noiseMultiplier: z.number(),
      clipNorm: z.number(),
      samplingRate: z.number(),
      stepsPerRound: z.number().int(),
      rounds: z.number().int(),
      epsilon: z.number(),
      targetEpsilon: z.number(),
      delta: z.number(),
      accountant: z.string(),
    })
    .nullable(),
  decision: z
    .object({ planHash: Sha256Hex, planVersion: z.number().int(), decision: Decision, decidedAt: z.string() })
    .nullable(),
});
export type SiloStudy = z.infer<typeof SiloStudy>;

export const DecisionRequest = z
  .object({ planHash: Sha256Hex, decision: Decision, reason: z.string().max(1000).optional() })
  .strict();
export type DecisionRequest = z.infer<typeof DecisionRequest>;

/** Work the hub hands a silo: train on the published model, or only evaluate it (after the last round). */
export const SiloTask = z.object({
  studyId: z.string().uuid(),
  planVersion: z.number().int(),
  planHash: Sha256Hex,
  kind: z.enum(['train', 'evaluate']),
  round: z.number().int().min(1),
  attempt: z.number().int().min(1),
  modelHash: Sha256Hex,
  deadlineAt: z.string().datetime(),
});
export type SiloTask = z.infer<typeof SiloTask>;

export const TasksResponse = z.object({ tasks: z.array(SiloTask) });
export type TasksResponse = z.infer<typeof TasksResponse>;

/** The global model evaluated on a silo's own held-out split. Counts, never records. */
export const EvaluationMetrics = z
  .object({
    loss: z.number().finite(),
    accuracy: z.number().min(0).max(1),
    auc: z.number().min(0).max(1).nullable(),
    n: z.number().int().min(0),
    positives: z.number().int().min(0),
  })
  .strict();
export type EvaluationMetrics = z.infer<typeof EvaluationMetrics>;

/** What a silo says it spent on one update (recomputed and checked by the hub). */
export const PrivacySpend = z
  .object({
    mechanism: z.enum(['dp-sgd', 'dp-fedavg']),
    unit: z.enum(['record', 'silo']),
    noiseMultiplier: z.number().positive(),
    clipNorm: z.number().positive(),
    samplingRate: z.number().gt(0).max(1),
    steps: z.number().int().min(1),
    delta: z.number().gt(0).lt(1),
    epsilonRound: z.number().min(0),
    epsilonCumulative: z.number().min(0),
    accountant: z.string(),
  })
  .strict();
export type PrivacySpend = z.infer<typeof PrivacySpend>;

/** Header of a framed model update. */
export const UpdateHeader = z
  .object({
    studyId: z.string().uuid(),
    round: z.number().int().min(1),
    attempt: z.number().int().min(1),
    planHash: Sha256Hex,
    baseModelHash: Sha256Hex,
    /** Weight of this update in FedAvg: training examples at the silo. */
    numExamples: z.number().int().min(1),
    /** Number of float32 values in the payload. */
    length: z.number().int().min(1),
    payloadSha256: Sha256Hex,
    /** L2 norm of the payload as the agent computed it; the hub recomputes it. */
    l2Norm: z.number().finite().min(0),
    trainLoss: z.number().finite().nullable(),
    evaluation: EvaluationMetrics,
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
    evaluation: EvaluationMetrics,
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

export const SILO_STUDY_API = {
  studies: '/silo/v1/studies',
  decision: (studyId: string) => `/silo/v1/studies/${studyId}/decision`,
  tasks: '/silo/v1/tasks',
  blob: (hash: string) => `/silo/v1/blobs/${hash}`,
  update: (studyId: string, round: number) => `/silo/v1/studies/${studyId}/rounds/${round}/update`,
  evaluation: (studyId: string, round: number) => `/silo/v1/studies/${studyId}/rounds/${round}/evaluation`,
  failure: (studyId: string, round: number) => `/silo/v1/studies/${studyId}/rounds/${round}/failure`,
} as const;

/* ---------- framed update: 'TSU1' | u32 LE header length | header JSON | float32 LE payload ---------- */

export const UPDATE_MAGIC = 'TSU1';
/** A header larger than this is refused before it is parsed. */
export const MAX_UPDATE_HEADER_BYTES = 64 * 1024;

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

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
