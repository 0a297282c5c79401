import {
  evaluate,
  ModelSpecException,
  parameterLayout,
  trainLocal,
  type ModelSpec,
  type PreparedTabularData,
} from '@tessera/ml';
import { clipToNormInPlace } from '@tessera/dp';
import {
  encodeUpdateFrame,
  float32Bytes,
  planHash,
  privacyMechanismOf,
  PrivacyPlanError,
  privacySpendOf,
  sha256Hex,
  type PrivacyMechanism,
  type StudyPlan,
  type EvaluationMetrics,
  type FailureReport,
  type SiloStudy,
  type SiloTask,
  type UpdateHeader,
  type UpdateReceipt,
} from '@tessera/protocol';
import { AgentError, AgentErrorCode } from '../agent.error';
import type { StudyTransport } from '../hub/study-transport';
import type { ApprovalStore } from '../state/approval-store';
import type { SiloPrivacyLedger } from '../privacy/silo-privacy-ledger';
import type { ReceiptStore } from '../state/receipt-store';
import {
  localTrainingOptionsOf,
  modelSpecOf,
  tabularSchemaOf,
  type LocalTrainingOptions,
} from '../training/plan-mapping.util';
import type { StudyDatasets } from '../training/study-datasets';
import { Backoff } from './backoff.util';

/** One line of the daemon's log: which study and round, and what happened. Never a data value. */
export interface StepLine {
  study: string;
  round?: number;
  message: string;
}
export type StepLog = (line: StepLine) => void;

export type TaskOutcome =
  | { kind: 'uploaded'; receipt: UpdateReceipt; header: UpdateHeader; receiptFile: string }
  | { kind: 'evaluated'; evaluation: EvaluationMetrics }
  | { kind: 'failed'; report: FailureReport }
  | { kind: 'refused'; reason: string }
  | { kind: 'skipped'; reason: string };

export interface TaskExecutorDeps {
  transport: StudyTransport;
  approvals: ApprovalStore;
  receipts: ReceiptStore;
  datasets: StudyDatasets;
  /** The silo's own privacy accounting and cap (privacy/silo-privacy-ledger.ts). */
  privacy: SiloPrivacyLedger;
  log: StepLog;
  clock?: () => Date;
  /** Waits between upload retries; injectable so tests do not sleep. */
  sleep?: (ms: number) => Promise<void>;
}

/** How often an upload is retried while the hub is unreachable (within the task's deadline). */
const UPLOAD_ATTEMPTS = 6;

/** Decodes the hub's raw float32 little-endian model (explicitly little-endian, whatever the host's byte order). */
export function float32FromLittleEndian(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(Math.floor(bytes.byteLength / 4));
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** Euclidean norm, accumulated in float64. */
export function l2Norm(values: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]! * values[i]!;
  return Math.sqrt(sum);
}

function allFinite(values: Float32Array): boolean {
  // x·0 is NaN exactly when x is NaN or ±Infinity.
  let probe = 0;
  for (let i = 0; i < values.length; i++) probe += values[i]! * 0;
  return probe === 0;
}

function fmt(value: number | null, digits = 3): string {
  return value === null ? 'n/a' : value.toFixed(digits);
}

/** This task cannot be done: reported once for the task. */
class TaskFailure extends Error {
  constructor(
    readonly code: FailureReport['code'],
    message: string,
  ) {
    super(message);
  }
}

/** This silo cannot take part in this plan at all (data, model, privacy mode): reported once, never retried. */
class StudyFailure extends TaskFailure {}

/**
 * Carries out one task of the hub: checks that this silo approved exactly the plan (by hashing the plan itself),
 * prepares the local data, downloads and verifies the global model, evaluates it on the local test split, and for
 * a training task trains on the train split and uploads the framed delta. Failures are reported to the hub with a
 * code and a message that never contains a data value; each is reported once.
 */
export class TaskExecutor {
  private readonly handled = new Set<string>();
  /** studyId:planHash → the failure already reported for it; later tasks of that plan are skipped. */
  private readonly abandoned = new Map<string, FailureReport['code']>();
  private readonly failed = new Set<string>();
  /** studyId:planHash for which PLAN_NOT_APPROVED was reported; approval is re-checked on every task. */
  private readonly notApprovedReported = new Set<string>();
  private readonly clock: () => Date;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly deps: TaskExecutorDeps) {
    this.clock = deps.clock ?? (() => new Date());
    this.sleep = deps.sleep ?? ((ms) => new Promise((done) => setTimeout(done, ms)));
  }

  /** Studies for which this silo reported a failure during this run. */
  get failedStudies(): ReadonlySet<string> {
    return this.failed;
  }

  /** True when executing this task now would do nothing (handled, abandoned, past its deadline). */
  isSettled(task: SiloTask): boolean {
    return (
      this.handled.has(taskKey(task)) ||
      this.abandoned.has(`${task.studyId}:${task.planHash}`) ||
      (task.kind === 'train' && this.deps.receipts.has(task.studyId, task.round, task.attempt)) ||
      Date.parse(task.deadlineAt) <= this.clock().getTime()
    );
  }

  async execute(task: SiloTask, study: SiloStudy | undefined): Promise<TaskOutcome> {
    const name = study?.plan.name ?? task.studyId;
    const key = taskKey(task);
    if (this.handled.has(key)) return { kind: 'skipped', reason: 'already handled' };
    if (this.abandoned.has(`${task.studyId}:${task.planHash}`)) {
      this.handled.add(key);
      return this.skip(
        name,
        task,
        `skipped: this silo already reported ${this.abandoned.get(`${task.studyId}:${task.planHash}`)} for this plan`,
      );
    }
    if (task.kind === 'train' && this.deps.receipts.has(task.studyId, task.round, task.attempt)) {
      this.handled.add(key);
      return this.skip(name, task, 'skipped: an update for this round was already accepted (receipt on file)');
    }
    if (Date.parse(task.deadlineAt) <= this.clock().getTime()) {
      this.handled.add(key);
      return this.skip(name, task, `skipped: the round's deadline ${task.deadlineAt} has passed`);
    }
    try {
      const outcome = await this.run(task, study, name);
      this.handled.add(key);
      return outcome;
    } catch (err) {
      if (!(err instanceof TaskFailure)) throw err;
      this.handled.add(key);
      if (err instanceof StudyFailure) this.abandoned.set(`${task.studyId}:${task.planHash}`, err.code);
      return this.fail(name, task, err.code, err.message);
    }
  }

  private async run(task: SiloTask, study: SiloStudy | undefined, name: string): Promise<TaskOutcome> {
    const refusal = this.approvalRefusal(task, study);
    if (refusal !== null) {
      const reportKey = `${task.studyId}:${task.planHash}`;
      if (this.notApprovedReported.has(reportKey)) return this.skip(name, task, `skipped, not approved: ${refusal}`);
      this.notApprovedReported.add(reportKey);
      throw new TaskFailure('PLAN_NOT_APPROVED', refusal);
    }
    const plan = study!.plan;
    const { spec, options } = this.planModel(study!);
    const data = this.dataFor(task, study!, spec);

    const mechanism = task.kind === 'train' ? this.privacyCheck(plan, data.train.n) : null;
    const parameters = await this.downloadModel(task, spec, name);
    const evaluation = await this.evaluate(spec, parameters, data);
    this.deps.log({
      study: name,
      round: task.round,
      message: `evaluated global model on the local test split: loss ${fmt(evaluation.loss)}, accuracy ${fmt(evaluation.accuracy)}, AUC ${fmt(evaluation.auc)}, n ${evaluation.n} (${evaluation.positives} positive)`,
    });

    if (task.kind === 'evaluate') {
      await this.deps.transport.reportEvaluation(task.studyId, {
        round: task.round,
        attempt: task.attempt,
        planHash: task.planHash,
        modelHash: task.modelHash,
        evaluation,
      });
      this.deps.log({ study: name, round: task.round, message: 'evaluation reported to the hub' });
      return { kind: 'evaluated', evaluation };
    }

    let result;
    try {
      result = await trainLocal({
        spec,
        parameters,
        x: data.train.x,
        y: data.train.y,
        ...options,
        // Shuffling differs per round and attempt, reproducibly from the plan's seed.
        seed: (plan.training.initSeed + task.round * 1000 + task.attempt) % 2 ** 31,
      });
    } catch (err) {
      // @tessera/ml's messages name fields, rows and columns, never values.
      throw new StudyFailure('TRAINING_FAILED', `local training failed: ${(err as Error).message}`);
    }
    if (!allFinite(result.delta)) {
      return this.fail(name, task, 'TRAINING_FAILED', 'local training diverged: the update has non-finite values');
    }
    if (mechanism?.mechanism === 'dp-fedavg') {
      // Silo-level DP: the whole update is clipped to C here; the hub adds the noise to the sum of clipped updates.
      clipToNormInPlace(result.delta, mechanism.clipNorm);
    }
    const lastLoss = result.lossHistory[result.lossHistory.length - 1];
    const trainLoss = lastLoss !== undefined && Number.isFinite(lastLoss) ? lastLoss : null;
    const payloadSha256 = sha256Hex(float32Bytes(result.delta));
    const header: UpdateHeader = {
      studyId: task.studyId,
      round: task.round,
      attempt: task.attempt,
      planHash: task.planHash,
      baseModelHash: task.modelHash,
      numExamples: data.train.n,
      length: result.delta.length,
      payloadSha256,
      l2Norm: l2Norm(result.delta),
      trainLoss,
      evaluation,
      privacy: mechanism
        ? privacySpendOf(
            mechanism,
            this.deps.privacy.roundsSpent(task.studyId) +
              (this.deps.privacy.has(task.studyId, task.round, task.attempt) ? 0 : 1),
          )
        : null,
    };
    if (mechanism && header.privacy) {
      // Spent once the noisy update exists; recorded before it leaves (a refused upload still counts).
      this.deps.privacy.record(
        { studyId: task.studyId, studyName: plan.name, round: task.round, attempt: task.attempt },
        header.privacy,
      );
      this.deps.log({
        study: name,
        round: task.round,
        message: `privacy: ${header.privacy.mechanism} (unit ${header.privacy.unit}) σ ${fmt(header.privacy.noiseMultiplier, 4)}, C ${header.privacy.clipNorm}, q ${header.privacy.samplingRate}, ${header.privacy.steps} steps: ε ${fmt(header.privacy.epsilonCumulative, 4)} of ${mechanism.targetEpsilon} at δ ${mechanism.delta}`,
      });
    }
    this.deps.log({
      study: name,
      round: task.round,
      message: `trained ${options.epochs} local epoch(s), ${result.steps} steps on ${data.train.n} records: train loss ${fmt(trainLoss)}, update norm ${fmt(header.l2Norm, 4)} (${result.backend})`,
    });
    const frame = encodeUpdateFrame(header, result.delta);
    const receipt = await this.upload(task, frame, name);
    if (receipt === null) {
      return { kind: 'refused', reason: 'the hub refused the update' };
    }
    if (receipt.studyId !== task.studyId || receipt.round !== task.round || receipt.attempt !== task.attempt) {
      this.deps.log({
        study: name,
        round: task.round,
        message: `WARNING: the hub's receipt names study ${receipt.studyId} round ${receipt.round} attempt ${receipt.attempt}`,
      });
    }
    if (receipt.updateSha256 !== payloadSha256 && receipt.updateSha256 !== sha256Hex(frame)) {
      this.deps.log({
        study: name,
        round: task.round,
        message: `WARNING: the receipt's hash ${receipt.updateSha256.slice(0, 12)}… matches neither the payload nor the frame sent`,
      });
    }
    const receiptFile = this.deps.receipts.save(receipt);
    this.deps.log({
      study: name,
      round: task.round,
      message: `update accepted (${frame.length} bytes, payload sha256 ${payloadSha256.slice(0, 12)}…); receipt saved`,
    });
    return { kind: 'uploaded', receipt, header, receiptFile };
  }

  /**
   * Null when this silo approved exactly the plan the task is for. The hash is recomputed here from the plan the
   * hub sent, and compared with the task's hash and with this silo's own approval record, never the hub's.
   */
  private approvalRefusal(task: SiloTask, study: SiloStudy | undefined): string | null {
    if (study === undefined) return 'the hub does not list this study for this silo';
    if (task.planVersion !== study.planVersion) {
      return `the task is for plan version ${task.planVersion}, but the hub lists version ${study.planVersion}`;
    }
    const computed = planHash(study.studyId, study.planVersion, study.plan);
    if (computed !== task.planHash) {
      return `the plan the hub sent hashes to ${computed.slice(0, 12)}…, not to the task's plan hash ${task.planHash.slice(0, 12)}…`;
    }
    return this.deps.approvals.refusalFor(task.studyId, computed);
  }

  /**
   * The plan's privacy mechanism as this agent computes it, after the silo's own checks: δ must be below 1/n of
   * this silo's training records, and one more round must stay within the silo's own cap across all studies.
   */
  private privacyCheck(plan: StudyPlan, n: number): PrivacyMechanism | null {
    let mechanism: PrivacyMechanism | null;
    try {
      mechanism = privacyMechanismOf(plan);
    } catch (err) {
      if (err instanceof PrivacyPlanError) throw new StudyFailure('PRIVACY_PLAN_UNSAFE', err.message);
      throw err;
    }
    if (mechanism && mechanism.delta >= 1 / n) {
      throw new StudyFailure(
        'PRIVACY_PLAN_UNSAFE',
        `δ = ${mechanism.delta} is not below 1/n for this silo's ${n} training records: the guarantee would be meaningless`,
      );
    }
    const refusal = this.deps.privacy.refusal(mechanism);
    if (refusal) throw new StudyFailure('PRIVACY_CAP_REACHED', refusal);
    return mechanism;
  }

  private planModel(study: SiloStudy): { spec: ModelSpec; options: LocalTrainingOptions } {
    try {
      return { spec: modelSpecOf(study.plan), options: localTrainingOptionsOf(study.plan) };
    } catch (err) {
      if (err instanceof PrivacyPlanError || err instanceof ModelSpecException) {
        throw new StudyFailure('TRAINING_FAILED', err.message);
      }
      throw err;
    }
  }

  private dataFor(task: SiloTask, study: SiloStudy, spec: ModelSpec): PreparedTabularData {
    const result = this.deps.datasets.forStudy(task.studyId, task.planHash, tabularSchemaOf(study.plan));
    if (!result.ok) throw new StudyFailure(result.problem.code, result.problem.message);
    if (result.data.featureNames.length !== spec.inputDim) {
      throw new StudyFailure(
        'DATA_SCHEMA_MISMATCH',
        `the schema encodes to ${result.data.featureNames.length} columns, the model expects ${spec.inputDim}`,
      );
    }
    return result.data;
  }

  private async downloadModel(task: SiloTask, spec: ModelSpec, name: string): Promise<Float32Array> {
    const expectedBytes = parameterLayout(spec).size * 4;
    const bytes = await this.deps.transport.downloadModel(task.modelHash, expectedBytes);
    const actual = sha256Hex(bytes);
    if (actual !== task.modelHash) {
      throw new TaskFailure(
        'TRAINING_FAILED',
        `the model downloaded for ${task.modelHash.slice(0, 12)}… hashes to ${actual.slice(0, 12)}…; refused`,
      );
    }
    if (bytes.byteLength !== expectedBytes) {
      throw new TaskFailure(
        'TRAINING_FAILED',
        `the model has ${bytes.byteLength} bytes; this plan's model needs ${expectedBytes}`,
      );
    }
    const parameters = float32FromLittleEndian(bytes);
    if (!allFinite(parameters)) throw new TaskFailure('TRAINING_FAILED', 'the model has non-finite parameters');
    this.deps.log({
      study: name,
      round: task.round,
      message: `${task.kind} task (attempt ${task.attempt}): model ${task.modelHash.slice(0, 12)}… downloaded and verified (${parameters.length} parameters)`,
    });
    return parameters;
  }

  private async evaluate(
    spec: ModelSpec,
    parameters: Float32Array,
    data: PreparedTabularData,
  ): Promise<EvaluationMetrics> {
    const m = await evaluate(spec, parameters, data.test.x, data.test.y);
    if (!Number.isFinite(m.loss))
      throw new TaskFailure('TRAINING_FAILED', 'the global model gives a non-finite test loss');
    return { loss: m.loss, accuracy: m.accuracy, auc: m.auc, n: m.n, positives: m.positives };
  }

  /** Uploads the frame, retrying the identical bytes while the hub is unreachable (the hub deduplicates). */
  private async upload(task: SiloTask, frame: Uint8Array, name: string): Promise<UpdateReceipt | null> {
    const backoff = new Backoff();
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.deps.transport.uploadUpdate(task.studyId, task.round, frame);
      } catch (err) {
        if (!(err instanceof AgentError)) throw err;
        if (err.code === AgentErrorCode.HUB_REFUSED) {
          this.deps.log({ study: name, round: task.round, message: `update refused: ${err.message}` });
          return null;
        }
        const delay = backoff.next();
        const late = this.clock().getTime() + delay >= Date.parse(task.deadlineAt);
        if (err.code !== AgentErrorCode.HUB_UNREACHABLE || attempt >= UPLOAD_ATTEMPTS || late) throw err;
        this.deps.log({
          study: name,
          round: task.round,
          message: `upload failed (${err.message}); retrying in ${delay / 1000} s`,
        });
        await this.sleep(delay);
      }
    }
  }

  private async fail(name: string, task: SiloTask, code: FailureReport['code'], message: string): Promise<TaskOutcome> {
    const report: FailureReport = { round: task.round, attempt: task.attempt, code, message: message.slice(0, 2000) };
    this.failed.add(task.studyId);
    this.deps.log({ study: name, round: task.round, message: `cannot do this task: ${code}: ${message}` });
    try {
      await this.deps.transport.reportFailure(task.studyId, report);
      this.deps.log({ study: name, round: task.round, message: `reported ${code} to the hub` });
    } catch (err) {
      if (!(err instanceof AgentError) || err.code !== AgentErrorCode.HUB_REFUSED) throw err;
      this.deps.log({ study: name, round: task.round, message: `the hub refused the failure report: ${err.message}` });
    }
    return { kind: 'failed', report };
  }

  private skip(name: string, task: SiloTask, reason: string): TaskOutcome {
    this.deps.log({ study: name, round: task.round, message: reason });
    return { kind: 'skipped', reason };
  }
}

function taskKey(task: SiloTask): string {
  return `${task.studyId}/${task.round}/${task.attempt}/${task.kind}`;
}
