// The silo-facing study API: studies as a silo sees them, decisions, tasks, and its routes. Evaluation payloads
// (rounds-evaluation.ts) and update frames and reports (rounds-update.ts) are exported from here too.

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

export const SILO_STUDY_API = {
  studies: '/silo/v1/studies',
  decision: (studyId: string) => `/silo/v1/studies/${studyId}/decision`,
  tasks: '/silo/v1/tasks',
  blob: (hash: string) => `/silo/v1/blobs/${hash}`,
  update: (studyId: string, round: number) => `/silo/v1/studies/${studyId}/rounds/${round}/update`,
  evaluation: (studyId: string, round: number) => `/silo/v1/studies/${studyId}/rounds/${round}/evaluation`,
  failure: (studyId: string, round: number) => `/silo/v1/studies/${studyId}/rounds/${round}/failure`,
} as const;

export * from './rounds-evaluation';
export * from './rounds-update';
