import { sha256Hex } from '@tessera/canonical';
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
  /** Set while the hub's administrator has paused the study: no new round opens; the agent waits (older hubs omit it). */
  paused: z.object({ since: z.string(), reason: z.string() }).nullable().optional(),
  /**
   * What changed in this plan version from the previous one, field by field (absent for version 1 and from hubs
   * that do not send it), so the steward reads the difference before deciding again.
   */
  changesFromPrevious: z
    .array(
      z.object({
        path: z.string(),
        kind: z.enum(['added', 'removed', 'changed']),
        before: z.unknown().optional(),
        after: z.unknown().optional(),
      }),
    )
    .optional(),
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
  /**
   * Milliseconds left until `deadlineAt` by the hub's clock when it answered (0 once it has passed). A silo judges
   * the deadline as its own receipt time plus this, so a host clock that runs ahead or behind the hub's does not
   * make it drop or overrun a task (see docs/troubleshooting.md, clock skew).
   */
  deadlineInMs: z.number().int().min(0),
  /**
   * SCAFFOLD plans' training tasks (ADR 0019): the hub's control variate c for this round, a float32 blob of the
   * model's length downloaded like the model. Absent in round 1 (c = 0) and for every other algorithm.
   */
  controlVariateHash: Sha256Hex.optional(),
});
export type SiloTask = z.infer<typeof SiloTask>;

export const TasksResponse = z.object({ tasks: z.array(SiloTask) });
export type TasksResponse = z.infer<typeof TasksResponse>;

/**
 * The global model evaluated on a silo's own held-out split, as the hub stores and shows it: counts, never records.
 * `noisy` marks figures estimated from a DP release (see NoisyEvaluation): their n and positives are noisy
 * estimates and their loss is unknown.
 */
export const EvaluationMetrics = z
  .object({
    loss: z.number().finite().nullable(),
    /** Fraction correct; null for a regression task, which has no classes. */
    accuracy: z.number().min(0).max(1).nullable(),
    /** ROC AUC: binary, or the macro one-vs-rest mean for multiclass; null when undefined or for regression. */
    auc: z.number().min(0).max(1).nullable(),
    n: z.number().int().min(0),
    /** Test records with label 1 (binary tasks); 0 for multiclass and regression tasks. */
    positives: z.number().int().min(0),
    noisy: z.boolean().optional(),
    /**
     * The task a network plan learns, and its further metrics (TaskMetricsRelease). Absent for the registry models'
     * evaluations (binary, as every evaluation before network plans).
     */
    task: z.enum(['binary', 'multiclass', 'regression']).optional(),
    balancedAccuracy: z.number().min(0).max(1).nullable().optional(),
    f1: z.number().min(0).max(1).optional(),
    confusionMatrix: z.array(z.array(z.number().int().min(0))).optional(),
    mae: z.number().finite().min(0).optional(),
    rmse: z.number().finite().min(0).optional(),
    r2: z.number().finite().optional(),
  })
  .strict();
export type EvaluationMetrics = z.infer<typeof EvaluationMetrics>;

/**
 * A silo's own models at the final evaluation of a personalizing plan (plan.personalization), as the hub stores and
 * shows them beside the global model's figures: the personalized model's and, when planned, the local-only
 * baseline's. The models stay at the silo.
 */
export const PersonalizationMetrics = z
  .object({ personalized: EvaluationMetrics, localBaseline: EvaluationMetrics.nullable() })
  .strict();
export type PersonalizationMetrics = z.infer<typeof PersonalizationMetrics>;

/**
 * A differentially private evaluation (plan release.evaluation 'noisy'): for each true label, the histogram of the
 * model's predicted probability over the silo's test records in B equal bins of [0, 1] (bin b holds scores in
 * [b/B, (b+1)/B), the last bin includes 1), each count plus independent discrete Gaussian noise of standard
 * deviation `noiseStddev` (counts, on the integers). One test record changes one count by one.
 */
export const NoisyEvaluation = z
  .object({
    kind: z.literal('noisy-histogram'),
    noiseStddev: z.number().positive(),
    negatives: z
      .array(
        z
          .number()
          .int()
          .min(-(2 ** 40))
          .max(2 ** 40),
      )
      .min(2)
      .max(20),
    positives: z
      .array(
        z
          .number()
          .int()
          .min(-(2 ** 40))
          .max(2 ** 40),
      )
      .min(2)
      .max(20),
  })
  .strict()
  .refine((e) => e.negatives.length === e.positives.length, 'negatives and positives need the same number of bins');
export type NoisyEvaluation = z.infer<typeof NoisyEvaluation>;

/** Exact metrics, released without DP (plan release.evaluation 'exact'). */
export const ExactEvaluation = z
  .object({
    kind: z.literal('exact'),
    loss: z.number().finite(),
    accuracy: z.number().min(0).max(1),
    auc: z.number().min(0).max(1).nullable(),
    n: z.number().int().min(0),
    positives: z.number().int().min(0),
  })
  .strict();
export type ExactEvaluation = z.infer<typeof ExactEvaluation>;

/** Largest multiclass confusion matrix a report carries (K × K); for more classes the matrix stays in the silo. */
export const MAX_REPORTED_CONFUSION_CLASSES = 64;

const unit = z.number().min(0).max(1);
const count = z.number().int().min(0);

/**
 * The metrics of a network plan's task on a silo's held-out split (scikit-learn's definitions, docs/models.md):
 * binary — accuracy at P ≥ 0.5, balanced accuracy, AUC, F1 of class 1; multiclass — accuracy, balanced accuracy,
 * macro one-vs-rest AUC, macro F1 and the confusion matrix (row = true class; up to MAX_REPORTED_CONFUSION_CLASSES
 * classes); regression — MAE, RMSE (in the label column's units) and R².
 */
export const TaskMetricsRelease = z.discriminatedUnion('task', [
  z
    .object({
      task: z.literal('binary'),
      accuracy: unit,
      balancedAccuracy: unit.nullable(),
      auc: unit.nullable(),
      f1: unit,
      positives: count,
    })
    .strict(),
  z
    .object({
      task: z.literal('multiclass'),
      accuracy: unit,
      balancedAccuracy: unit.nullable(),
      auc: unit.nullable(),
      f1: unit,
      confusionMatrix: z
        .array(z.array(count).max(MAX_REPORTED_CONFUSION_CLASSES))
        .max(MAX_REPORTED_CONFUSION_CLASSES)
        .optional(),
    })
    .strict(),
  z
    .object({
      task: z.literal('regression'),
      mae: z.number().finite().min(0),
      rmse: z.number().finite().min(0),
      r2: z.number().finite(),
    })
    .strict(),
]);
export type TaskMetricsRelease = z.infer<typeof TaskMetricsRelease>;

/**
 * Exact metrics of a network plan's task (plan release.evaluation 'exact'), released without DP as the steward
 * consented: the mean task loss, the test size, and the task's metrics.
 */
export const TaskEvaluation = z
  .object({
    kind: z.literal('task-metrics'),
    loss: z.number().finite(),
    n: count,
    metrics: TaskMetricsRelease,
  })
  .strict();
export type TaskEvaluation = z.infer<typeof TaskEvaluation>;

/**
 * What a silo sends about its evaluation: exactly what its plan's release.evaluation allows ('exact' is ExactEvaluation
 * for the registry models, TaskEvaluation for network plans).
 */
export const EvaluationPayload = z.union([NoisyEvaluation, ExactEvaluation, TaskEvaluation]);
export type EvaluationPayload = z.infer<typeof EvaluationPayload>;

function metricsOfTask(payload: TaskEvaluation): EvaluationMetrics {
  const m = payload.metrics;
  const base = { loss: payload.loss, n: payload.n, task: m.task };
  switch (m.task) {
    case 'binary':
      return {
        ...base,
        accuracy: m.accuracy,
        auc: m.auc,
        positives: m.positives,
        balancedAccuracy: m.balancedAccuracy,
        f1: m.f1,
      };
    case 'multiclass':
      return {
        ...base,
        accuracy: m.accuracy,
        auc: m.auc,
        positives: 0,
        balancedAccuracy: m.balancedAccuracy,
        f1: m.f1,
        ...(m.confusionMatrix ? { confusionMatrix: m.confusionMatrix } : {}),
      };
    case 'regression':
      return { ...base, accuracy: null, auc: null, positives: 0, mae: m.mae, rmse: m.rmse, r2: m.r2 };
  }
}

/**
 * The figures the hub shows for an evaluation payload. From a noisy histogram (post-processing, no extra privacy
 * cost): counts clamped at 0, n and positives their sums, accuracy at threshold 0.5 (bins wholly above or below;
 * with an odd B the middle bin counts half), AUC from the binned scores (pairs in the same bin count 1/2).
 */
export function metricsOfEvaluation(payload: EvaluationPayload): EvaluationMetrics {
  if (payload.kind === 'task-metrics') return metricsOfTask(payload);
  if (payload.kind === 'exact') {
    const { kind: _kind, ...metrics } = payload;
    return metrics;
  }
  const neg = payload.negatives.map((c) => Math.max(0, c));
  const pos = payload.positives.map((c) => Math.max(0, c));
  const bins = neg.length;
  const nNeg = neg.reduce((a, b) => a + b, 0);
  const nPos = pos.reduce((a, b) => a + b, 0);
  const n = nNeg + nPos;
  let correct = 0;
  for (let b = 0; b < bins; b++) {
    const upper = (b + 1) / bins;
    const lower = b / bins;
    if (lower >= 0.5) correct += pos[b]!;
    else if (upper <= 0.5) correct += neg[b]!;
    else correct += (pos[b]! + neg[b]!) / 2;
  }
  let auc: number | null = null;
  if (nNeg > 0 && nPos > 0) {
    let below = 0;
    let wins = 0;
    for (let b = 0; b < bins; b++) {
      wins += pos[b]! * (below + neg[b]! / 2);
      below += neg[b]!;
    }
    auc = wins / (nNeg * nPos);
  }
  return { loss: null, accuracy: n > 0 ? correct / n : 0, auc, n, positives: nPos, noisy: true };
}

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
