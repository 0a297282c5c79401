import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { heartDiseaseDataDirectory } from '@tessera/ml';
import {
  decodeUpdateFrame,
  float32Bytes,
  HEART_DISEASE_SCHEMA,
  HubErrorCode,
  planHash,
  sha256Hex,
  StudyPlan,
  tabularSchemaOf,
  type TabularStudyPlan,
  type DecisionRequest,
  type EvaluationReport,
  type FailureReport,
  type FeatureSchema,
  type PrivacyPlan,
  type ReleasePlan,
  type SiloStudy,
  type SiloTask,
  type UpdateReceipt,
} from '@tessera/protocol';
import { AgentError, AgentErrorCode } from '../agent.error';
import { answerInProcess, type StudyTransport } from '../hub/study-transport';

/** The Fed-Heart-Disease schema (the protocol's, with declared scaling and a keyed-hash split), as a fresh copy. */
export function heartDiseaseFeatureSchema(): FeatureSchema {
  return structuredClone<FeatureSchema>(HEART_DISEASE_SCHEMA);
}

/**
 * The release a designer would choose for each privacy mode (the hub's demo plans do the same): under DP-SGD a
 * noisy evaluation of the final model and no record count, under DP-FedAvg nothing, without DP everything exact.
 */
export function defaultReleaseFor(privacy: PrivacyPlan): ReleasePlan {
  switch (privacy.mode) {
    case 'dp-sgd':
      return { evaluation: { mode: 'noisy', rounds: 'final', scoreBins: 4 }, trainingExamples: 'none' };
    case 'dp-fedavg':
      return { evaluation: { mode: 'none' }, trainingExamples: 'none' };
    case 'none':
      return { evaluation: { mode: 'exact', rounds: 'every' }, trainingExamples: 'exact' };
  }
}

export function readHeartDisease(file = 'processed.cleveland.data'): string {
  return readFileSync(join(heartDiseaseDataDirectory(), file), 'utf8');
}

type PlanOverrides = Partial<Omit<StudyPlan, 'training'>> & { training?: Partial<StudyPlan['training']> };

/** A valid plan on the heart-disease schema (validated by the protocol's schema), with overrides. */
export function buildPlan(overrides: PlanOverrides = {}, silos: string[] = [randomUUID()]): TabularStudyPlan {
  const { training, ...rest } = overrides;
  const privacy = overrides.privacy ?? { mode: 'none' };
  const plan = StudyPlan.parse({
    name: 'Heart disease LR',
    purpose: 'Predict heart disease from routine measurements across hospitals.',
    model: { kind: 'logistic-regression' },
    schema: heartDiseaseFeatureSchema(),
    training: {
      rounds: 3,
      localEpochs: 1,
      batchSize: 32,
      learningRate: 0.1,
      algorithm: 'fedavg',
      serverOptimizer: { kind: 'fedavg', learningRate: 1 },
      initSeed: 7,
      ...training,
    },
    privacy,
    participation: { minSilosPerRound: 1, roundDeadlineSeconds: 600, maxRoundRetries: 0, onSiloFailure: 'continue' },
    release: overrides.release ?? defaultReleaseFor(privacy),
    silos,
    ...rest,
  });
  return { ...plan, schema: tabularSchemaOf(plan) };
}

export function buildStudy(plan: StudyPlan, overrides: Partial<SiloStudy> = {}): SiloStudy {
  const studyId = overrides.studyId ?? randomUUID();
  const planVersion = overrides.planVersion ?? 1;
  return {
    studyId,
    status: 'running',
    planVersion,
    planHash: planHash(studyId, planVersion, plan),
    plan,
    privacyCost: null,
    decision: null,
    ...overrides,
  };
}

export function modelBlob(parameters: Float32Array): { bytes: Uint8Array; hash: string } {
  const bytes = Uint8Array.from(float32Bytes(parameters));
  return { bytes, hash: sha256Hex(bytes) };
}

export function buildTask(study: SiloStudy, modelHash: string, overrides: Partial<SiloTask> = {}): SiloTask {
  return {
    studyId: study.studyId,
    planVersion: study.planVersion,
    planHash: study.planHash,
    kind: 'train',
    round: 1,
    attempt: 1,
    modelHash,
    deadlineAt: new Date(Date.now() + 3_600_000).toISOString(),
    deadlineInMs: 3_600_000,
    ...overrides,
  };
}

/** An in-memory hub behind the StudyTransport port: records every call; no network. */
export class FakeHub implements StudyTransport {
  studies: SiloStudy[] = [];
  readonly blobs = new Map<string, Uint8Array>();
  /** Each poll returns the next batch (then empty lists). */
  taskBatches: SiloTask[][] = [];
  readonly uploads: { studyId: string; round: number; frame: Uint8Array }[] = [];
  readonly evaluations: { studyId: string; report: EvaluationReport }[] = [];
  readonly failures: { studyId: string; report: FailureReport }[] = [];
  readonly decisions: { studyId: string; request: DecisionRequest }[] = [];
  downloads = 0;
  polls = 0;
  /** Errors thrown by the next calls of a method, in order. */
  readonly failNext: Partial<Record<keyof StudyTransport, AgentError[]>> = {};
  /**
   * Errors thrown by the next uploads AFTER the hub has read the whole frame (a hub that resets the connection once
   * it has the bytes): the frame is in `received`, not in `uploads`.
   */
  readonly failAfterReading: Error[] = [];
  /**
   * Errors thrown by the next uploads AFTER the hub accepted them (the agent killed, or the connection cut, before it
   * read the receipt): the frame is in `uploads` and a re-send of it gets the receipt.
   */
  readonly failAfterAccepting: Error[] = [];
  /**
   * Round numbers the hub has closed: like the hub, a re-sent accepted update still gets its receipt, anything else
   * is refused ROUND_CLOSED (an evaluation report always: it carries no receipt).
   */
  readonly closedRounds = new Set<number>();
  /** Every frame the hub read, accepted or not: what a curious hub could keep. */
  readonly received: { studyId: string; round: number; frame: Uint8Array }[] = [];
  /** Accepted frames by sha256 → the receipt given, so a re-sent identical frame gets the same receipt back. */
  private readonly accepted = new Map<string, UpdateReceipt>();
  siloId = randomUUID();

  private maybeFail(method: keyof StudyTransport): void {
    const err = this.failNext[method]?.shift();
    if (err) throw err;
  }

  listStudies(): Promise<SiloStudy[]> {
    return answerInProcess(() => {
      this.maybeFail('listStudies');
      return this.studies;
    });
  }

  decide(studyId: string, request: DecisionRequest): Promise<SiloStudy> {
    return answerInProcess(() => {
      this.maybeFail('decide');
      const study = this.studies.find((s) => s.studyId === studyId);
      if (!study) throw new AgentError(AgentErrorCode.HUB_REFUSED, 'The hub refused the decision: no such study', 404);
      if (study.planHash !== request.planHash) {
        throw new AgentError(
          AgentErrorCode.HUB_REFUSED,
          'The hub refused the decision: stale plan hash',
          409,
          HubErrorCode.STALE_PLAN,
        );
      }
      this.decisions.push({ studyId, request });
      study.decision = {
        planHash: request.planHash,
        planVersion: study.planVersion,
        decision: request.decision,
        decidedAt: new Date().toISOString(),
      };
      return study;
    });
  }

  pollTasks(): Promise<SiloTask[]> {
    return answerInProcess(() => {
      this.polls++;
      this.maybeFail('pollTasks');
      return this.taskBatches.shift() ?? [];
    });
  }

  downloadModel(modelHash: string): Promise<Uint8Array> {
    return answerInProcess(() => {
      this.downloads++;
      this.maybeFail('downloadModel');
      const blob = this.blobs.get(modelHash);
      if (!blob) throw new AgentError(AgentErrorCode.HUB_REFUSED, 'The hub refused the model: not found', 404);
      return blob;
    });
  }

  uploadUpdate(studyId: string, round: number, frame: Uint8Array): Promise<UpdateReceipt> {
    return answerInProcess(() => {
      this.maybeFail('uploadUpdate');
      this.received.push({ studyId, round, frame: Uint8Array.from(frame) });
      const late = this.failAfterReading.shift();
      if (late) throw late;
      const key = sha256Hex(frame);
      const again = this.accepted.get(key);
      // Like the hub: the same content gets the same receipt again, recorded once, also after the round closed.
      if (again) return again;
      if (this.closedRounds.has(round)) throw closed(round);
      this.uploads.push({ studyId, round, frame });
      const { header } = decodeUpdateFrame(frame);
      const receipt = {
        studyId,
        siloId: this.siloId,
        round,
        attempt: header.attempt,
        // The hub names the update by the SHA-256 of the whole frame it stored.
        updateSha256: key,
        receivedAt: new Date().toISOString(),
      };
      this.accepted.set(key, receipt);
      const lost = this.failAfterAccepting.shift();
      if (lost) throw lost;
      return receipt;
    });
  }

  reportEvaluation(studyId: string, report: EvaluationReport): Promise<void> {
    return answerInProcess(() => {
      this.maybeFail('reportEvaluation');
      if (this.closedRounds.has(report.round)) throw closed(report.round);
      this.evaluations.push({ studyId, report });
    });
  }

  reportFailure(studyId: string, report: FailureReport): Promise<void> {
    return answerInProcess(() => {
      this.maybeFail('reportFailure');
      this.failures.push({ studyId, report });
    });
  }
}

/** The hub's answer to a report for a round that is no longer open (409 ROUND_CLOSED). */
function closed(round: number): AgentError {
  return new AgentError(
    AgentErrorCode.HUB_REFUSED,
    `The hub refused the report for round ${round}: Round ${round} is closed.`,
    409,
    HubErrorCode.ROUND_CLOSED,
  );
}
