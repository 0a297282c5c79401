import { dirname } from 'node:path';
import {
  controlCorrection,
  ModelSpecException,
  scaffoldControlUpdate,
  TrainingInputException,
  type LocalTrainingResult,
} from '@tessera/ml';
import {
  clipToNormInPlace,
  defaultRandomSource,
  finalEvaluationReleases,
  type RandomSource,
  plannedEvaluationReleases,
  privacyMechanismOf,
  PrivacyPlanError,
  type PrivacyMechanism,
} from '@tessera/dp';
import {
  decodeUpdateFrame,
  encodeUpdateFrame,
  NetworkSpecError,
  float32Bytes,
  planHash,
  sha256Hex,
  type EvaluationPayload,
  type EvaluationReport,
  type FailureReport,
  type PrivacySpend,
  type SiloStudy,
  type SiloTask,
  type StudyPlan,
  type UpdateHeader,
  type UpdateReceipt,
} from '@tessera/protocol';
import { AgentError, AgentErrorCode } from '../agent.error';
import { localDeadlineMs } from '../hub/hub-clock';
import type { StudyTransport } from '../hub/study-transport';
import { ChargeRefusedError, type ChargeRequest, type SiloPrivacyLedger } from '../privacy/silo-privacy-ledger';
import { SecAggDropout, type SecAggParticipant } from '../secagg/secagg-participant';
import type { ApprovalStore } from '../state/approval-store';
import type { ReceiptStore } from '../state/receipt-store';
import {
  reframeForAttempt,
  type EvaluationRelease,
  type ReleaseStore,
  type TrainingRelease,
} from '../state/release-store';
import { ImageFileError } from '../data/image-decoder';
import { PersonalModelStore } from '../personalization/personal-model.store';
import { trainPersonalModels, type PersonalModels } from '../personalization/personal-models';
import { ControlVariateStore } from '../training/control-variate.store';
import { localTrainingOptionsOf, studyModelOf, type LocalTrainingOptions } from '../training/plan-mapping.util';
import type { StudyDatasets } from '../training/study-datasets';
import type { LocalEvaluation, StudyData, StudyModel } from '../training/study-model';
import { deliver, describeSettlement, settlementOfRefusal, type Delivery } from './hub-delivery';
import { noisyHistogramEvaluation } from './evaluation-release';

/** One line of the daemon's log: which study and round, and what happened. Never a data value. */
export interface StepLine {
  study: string;
  round?: number;
  message: string;
}
export type StepLog = (line: StepLine) => void;

export type TaskOutcome =
  | { kind: 'uploaded'; receipt: UpdateReceipt; header: UpdateHeader; receiptFile: string }
  | { kind: 'evaluated'; report: EvaluationReport }
  | { kind: 'failed'; report: FailureReport }
  | { kind: 'refused'; reason: string }
  | { kind: 'skipped'; reason: string }
  /** Under secure aggregation: the masked update went into the round's sum and the unmasking request was answered. */
  | { kind: 'summed'; reason: string };

export interface TaskExecutorDeps {
  transport: StudyTransport;
  approvals: ApprovalStore;
  receipts: ReceiptStore;
  /** What this silo released (or is about to): re-sent as is, never re-made (state/release-store.ts). */
  releases: ReleaseStore;
  datasets: StudyDatasets;
  /** The silo's own privacy accounting, plan limits and cap (privacy/silo-privacy-ledger.ts). */
  privacy: SiloPrivacyLedger;
  log: StepLog;
  clock?: () => Date;
  /** Waits between delivery retries; injectable so tests do not sleep. */
  sleep?: (ms: number) => Promise<void>;
  /** Randomness of the noisy evaluation: the CSPRNG (defaultRandomSource) unless a test injects a seeded one. */
  random?: RandomSource;
  /** This silo's participant in a training round under secure aggregation (its state in the agent's state dir). */
  secureAggregation?: (task: SiloTask) => SecAggParticipant;
  /** Where personalized models are kept (default: `personalized/` in the state directory of `releases`). */
  personalModels?: PersonalModelStore;
  /** SCAFFOLD's control variates (default: `control-variates/` in the state directory of `releases`). */
  controlVariates?: ControlVariateStore;
}

/** A SCAFFOLD round's control variates: the hub's c and this silo's c_i, as the round starts (ADR 0019). */
interface ScaffoldRound {
  server: Float32Array;
  client: Float32Array;
}

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

/** Everything a task needs from its plan. */
interface PlanContext {
  task: SiloTask;
  /** The hub's deadline on this host's clock (ms): receipt time plus the time the hub said was left. */
  deadlineMs: number;
  study: SiloStudy;
  plan: StudyPlan;
  mechanism: PrivacyMechanism | null;
  name: string;
}

/**
 * Carries out one task of the hub: checks that this silo approved exactly the plan (by hashing the plan itself),
 * and releases only what that plan allows (plan.release): a training task sends the framed update, with the exact
 * record count and the base model's evaluation only when the plan releases them; an evaluation task reports the
 * final model's evaluation as the plan says (none, noisy histograms, or exact metrics).
 *
 * One charge, one release: before anything leaves, a DP release is charged to the silo's ledger (flushed) and then
 * persisted (flushed); every retry, restart and later attempt of the same round on the same model re-sends those
 * bytes. A charge whose release file is missing after a crash stays counted: the release may have left. Before any
 * charge the approved plan's limits (rounds, evaluation releases, target ε) and the silo's cap are checked, whatever
 * the hub asks; a refusal is reported as PLAN_LIMIT_REACHED or PRIVACY_CAP_REACHED. Failure messages never
 * contain a data value; each is reported once.
 */
export class TaskExecutor {
  private readonly handled = new Set<string>();
  /** studyId:planHash → the failure already reported for it; later tasks of that plan are skipped. */
  private readonly abandoned = new Map<string, FailureReport['code']>();
  private readonly failed = new Set<string>();
  /** studyId:planHash for which PLAN_NOT_APPROVED was reported; approval is re-checked on every task. */
  private readonly notApprovedReported = new Set<string>();
  private readonly clock: () => Date;
  private readonly delivery: Delivery;
  private readonly personalModels: PersonalModelStore;
  private readonly controlVariates: ControlVariateStore;

  constructor(private readonly deps: TaskExecutorDeps) {
    this.clock = deps.clock ?? (() => new Date());
    this.personalModels = deps.personalModels ?? new PersonalModelStore(dirname(deps.releases.root));
    this.controlVariates = deps.controlVariates ?? new ControlVariateStore(dirname(deps.releases.root));
    this.delivery = {
      clock: this.clock,
      sleep: deps.sleep ?? ((ms) => new Promise((done) => setTimeout(done, ms))),
      log: deps.log,
    };
  }

  /** Studies for which this silo reported a failure during this run. */
  get failedStudies(): ReadonlySet<string> {
    return this.failed;
  }

  /**
   * True when executing this task now would do nothing (handled, abandoned, receipt on file). The deadline is not
   * judged here but in execute(), which says so in the log: a task is never dropped silently.
   */
  isSettled(task: SiloTask): boolean {
    return (
      this.handled.has(taskKey(task)) ||
      this.abandoned.has(`${task.studyId}:${task.planHash}`) ||
      (task.kind === 'train' && this.deps.receipts.has(task.studyId, task.round, task.attempt))
    );
  }

  /**
   * `receivedAt` is when this host received the task (this host's clock; default now): the deadline is that plus the
   * time the hub said was left (task.deadlineInMs), so it is the hub's clock that decides, never deadlineAt read
   * against a host clock that may run ahead or behind.
   */
  async execute(task: SiloTask, study: SiloStudy | undefined, receivedAt?: Date): Promise<TaskOutcome> {
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
    const deadlineMs = localDeadlineMs(task, (receivedAt ?? this.clock()).getTime());
    const lateByMs = this.clock().getTime() - deadlineMs;
    if (lateByMs >= 0) {
      // The hub refuses a late release: training, charging and sending it would be wasted.
      this.handled.add(key);
      return this.skip(
        name,
        task,
        `skipped: the deadline of round ${task.round} (attempt ${task.attempt}) passed ${Math.round(lateByMs / 1000)} s ago by the hub's clock; the hub refuses late releases`,
      );
    }
    try {
      const outcome = await this.run(task, study, name, deadlineMs);
      this.handled.add(key);
      return outcome;
    } catch (err) {
      if (!(err instanceof TaskFailure)) throw err;
      this.handled.add(key);
      if (err instanceof StudyFailure) this.abandoned.set(`${task.studyId}:${task.planHash}`, err.code);
      return this.fail(name, task, err.code, err.message);
    }
  }

  private async run(
    task: SiloTask,
    study: SiloStudy | undefined,
    name: string,
    deadlineMs: number,
  ): Promise<TaskOutcome> {
    const refusal = this.approvalRefusal(task, study);
    if (refusal !== null) {
      const reportKey = `${task.studyId}:${task.planHash}`;
      if (this.notApprovedReported.has(reportKey)) return this.skip(name, task, `skipped, not approved: ${refusal}`);
      this.notApprovedReported.add(reportKey);
      throw new TaskFailure('PLAN_NOT_APPROVED', refusal);
    }
    const ctx: PlanContext = {
      task,
      deadlineMs,
      study: study!,
      plan: study!.plan,
      mechanism: this.mechanismOf(study!.plan),
      name,
    };
    return task.kind === 'train' ? this.train(ctx) : this.evaluateFinal(ctx);
  }

  private async train(ctx: PlanContext): Promise<TaskOutcome> {
    if (ctx.plan.secureAggregation) return this.trainSecurely(ctx);
    const { task, plan, mechanism, name } = ctx;
    const existing = this.deps.releases.training(task.studyId, task.round, task.modelHash);
    if (existing !== null && existing.header.planHash === task.planHash) return this.resendUpdate(ctx, existing);
    if (existing !== null) {
      this.deps.log({
        study: name,
        round: task.round,
        message: 'the update on file for this round and model was made for another plan version: not re-sent',
      });
    }
    const release = plan.release.evaluation;
    const evaluationEveryRound = release.mode !== 'none' && release.rounds === 'every';
    const request: ChargeRequest = {
      trainingRounds: 1,
      evaluationReleases: evaluationEveryRound && release.mode === 'noisy' ? 1 : 0,
    };
    const { model, options } = this.planModel(ctx.study);
    const data = await this.dataFor(task, ctx.study, model);
    if (mechanism && mechanism.delta >= 1 / data.train.n) {
      throw new StudyFailure(
        'PRIVACY_PLAN_UNSAFE',
        `δ = ${mechanism.delta} is not below 1/n for this silo's ${data.train.n} training records: the guarantee would be meaningless`,
      );
    }
    this.checkLimits(ctx, request, evaluationEveryRound && release.mode === 'exact');

    const parameters = await this.downloadModel(task, model, name);
    const scaffold = plan.training.algorithm === 'scaffold' ? await this.scaffoldRound(ctx, parameters.length) : null;
    const local = await this.evaluateLocally(ctx, model, parameters, data);
    // The base model's evaluation, before training touches anything (released only 'every' round).
    const evaluation = evaluationEveryRound ? await this.evaluationPayload(ctx, model, parameters, data, local) : null;
    let result: LocalTrainingResult;
    try {
      // Shuffling (and image augmentation) differs per round and attempt, reproducibly from the plan's seed.
      const seed = (plan.training.initSeed + task.round * 1000 + task.attempt) % 2 ** 31;
      const trainOptions = scaffold
        ? { ...options, controlCorrection: controlCorrection(scaffold.server, scaffold.client) }
        : options;
      result = await model.train(parameters, data.train, trainOptions, seed);
    } catch (err) {
      if (err instanceof ImageFileError) {
        throw new StudyFailure('DATA_UNREADABLE', `an image became unusable during training: ${err.message}`);
      }
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
    // Training loss stays in the silo: this log only.
    this.deps.log({
      study: name,
      round: task.round,
      message: `trained ${options.epochs} local epoch(s), ${result.steps} steps on ${data.train.n} records: train loss ${fmt(lastLoss !== undefined && Number.isFinite(lastLoss) ? lastLoss : null)} (kept in the silo), update norm ${fmt(l2Norm(result.delta), 4)} (${result.backend})`,
    });
    const payload = scaffold ? this.scaffoldPayload(ctx, scaffold, result, options.learningRate) : result.delta;
    if (!allFinite(payload)) {
      return this.fail(
        name,
        task,
        'TRAINING_FAILED',
        'local training diverged: the control delta has non-finite values',
      );
    }
    const privacy = this.charge(ctx, request, task.modelHash);
    const payloadSha256 = sha256Hex(float32Bytes(payload));
    const header: UpdateHeader = {
      studyId: task.studyId,
      round: task.round,
      attempt: task.attempt,
      planHash: task.planHash,
      baseModelHash: task.modelHash,
      // The exact record count leaves only when the plan releases it (without DP); else the hub weights equally.
      numExamples: plan.release.trainingExamples === 'exact' ? data.train.n : null,
      length: payload.length,
      payloadSha256,
      l2Norm: l2Norm(payload),
      evaluation,
      privacy,
    };
    const frame = encodeUpdateFrame(header, payload);
    const saved = this.deps.releases.saveTraining(frame);
    this.deps.log({
      study: name,
      round: task.round,
      message: `update persisted before upload (${saved.file}); retries and later attempts on this model re-send it`,
    });
    return this.deliverUpdate(ctx, saved, frame);
  }

  /**
   * SCAFFOLD (ADR 0019): the hub's control variate c for this round (zeros in round 1, when the task names none),
   * downloaded and checked against its hash like the model, and this silo's c_i from the state directory.
   */
  private async scaffoldRound(ctx: PlanContext, length: number): Promise<ScaffoldRound> {
    const { task, name } = ctx;
    const client = this.controlVariates.controlFor(task.studyId, task.planHash, task.modelHash, length);
    if (task.controlVariateHash === undefined) return { server: new Float32Array(length), client };
    const hash = task.controlVariateHash;
    const bytes = await this.deps.transport.downloadModel(hash, length * 4);
    if (sha256Hex(bytes) !== hash || bytes.byteLength !== length * 4) {
      throw new TaskFailure(
        'TRAINING_FAILED',
        `the control variate downloaded for ${hash.slice(0, 12)}… does not match its hash or the model's ${length} values; refused`,
      );
    }
    const server = float32FromLittleEndian(bytes);
    if (!allFinite(server)) throw new TaskFailure('TRAINING_FAILED', 'the control variate has non-finite values');
    this.deps.log({
      study: name,
      round: task.round,
      message: `SCAFFOLD: control variate ${hash.slice(0, 12)}… downloaded and verified`,
    });
    return { server, client };
  }

  /**
   * SCAFFOLD's upload: the model delta, then the control delta Δc_i = c_i⁺ − c_i (option II). c_i⁺ is kept in the
   * state directory before the update is persisted, so it is on file whenever the update can leave. Under DP-SGD c_i⁺
   * is the mean of the noisy gradients the silo stepped on: post-processing of the charged releases, no extra charge.
   */
  private scaffoldPayload(
    ctx: PlanContext,
    scaffold: ScaffoldRound,
    result: LocalTrainingResult,
    learningRate: number,
  ): Float32Array {
    const { task } = ctx;
    const update = scaffoldControlUpdate({
      clientControl: scaffold.client,
      serverControl: scaffold.server,
      delta: result.delta,
      steps: result.steps,
      learningRate,
    });
    const m = result.delta.length;
    if (allFinite(update.control)) {
      this.controlVariates.save({
        studyId: task.studyId,
        planHash: task.planHash,
        baseModelHash: task.modelHash,
        round: task.round,
        length: m,
        before: scaffold.client,
        after: update.control,
      });
    }
    const payload = new Float32Array(2 * m);
    payload.set(result.delta, 0);
    payload.set(update.controlDelta, m);
    this.deps.log({
      study: ctx.name,
      round: task.round,
      message: `SCAFFOLD: control variate kept in the state directory; control delta norm ${fmt(l2Norm(update.controlDelta), 4)} uploaded after the model delta`,
    });
    return payload;
  }

  /**
   * A training round under secure aggregation (docs/secure-aggregation.md, "In the agent"): keys are advertised and
   * shares sent before training (so no neighbour waits on this silo's training), the update is clipped to the plan's
   * clipNorm, quantised, masked and uploaded instead of the update in the clear, and the unmasking request answered.
   * Under DP-SGD the update is private before it is quantised and masked; under distributed DP-FedAvg this silo adds
   * its share of the noise to the quantised update before masking. The plan check allows no per-round evaluation here,
   * so nothing else leaves the silo.
   * A restart resumes from the participant's state file; a round that went on without this silo ends the task.
   */
  private async trainSecurely(ctx: PlanContext): Promise<TaskOutcome> {
    const { task, name } = ctx;
    const make = this.deps.secureAggregation;
    if (!make) {
      throw new StudyFailure('TRAINING_FAILED', 'this agent run cannot take part in secure aggregation');
    }
    const participant = make(task);
    const request: ChargeRequest = { trainingRounds: 1, evaluationReleases: 0 };
    const { model, options } = this.planModel(ctx.study);
    const data = await this.dataFor(task, ctx.study, model);
    const { mechanism } = ctx;
    if (mechanism && mechanism.delta >= 1 / data.train.n) {
      throw new StudyFailure(
        'PRIVACY_PLAN_UNSAFE',
        `δ = ${mechanism.delta} is not below 1/n for this silo's ${data.train.n} training records: the guarantee would be meaningless`,
      );
    }
    this.checkLimits(ctx, request, false);
    // Distributed DP: this silo's share of the noise, sized from the approved plan (never from the hub's numbers).
    const privacy = ctx.plan.privacy;
    const noise =
      privacy.mode === 'dp-fedavg' && privacy.noise === 'distributed' && mechanism && ctx.plan.secureAggregation
        ? {
            noiseMultiplier: mechanism.noiseMultiplier,
            clipNorm: mechanism.clipNorm,
            shares: ctx.plan.secureAggregation.threshold,
          }
        : null;
    try {
      await participant.prepare();
      this.deps.log({ study: name, round: task.round, message: 'secure aggregation: keys advertised, shares sent' });
      const parameters = await this.downloadModel(task, model, name);
      await this.evaluateLocally(ctx, model, parameters, data);
      const seed = (ctx.plan.training.initSeed + task.round * 1000 + task.attempt) % 2 ** 31;
      let result: LocalTrainingResult;
      const trainingStarted = performance.now();
      try {
        result = await model.train(parameters, data.train, options, seed);
      } catch (err) {
        if (err instanceof ImageFileError) {
          throw new StudyFailure('DATA_UNREADABLE', `an image became unusable during training: ${err.message}`);
        }
        throw new StudyFailure('TRAINING_FAILED', `local training failed: ${(err as Error).message}`);
      }
      const trainingMs = performance.now() - trainingStarted;
      if (!allFinite(result.delta)) {
        participant.drop();
        return this.fail(name, task, 'TRAINING_FAILED', 'local training diverged: the update has non-finite values');
      }
      this.charge(ctx, request, task.modelHash);
      const trace = await participant.contribute(result.delta, noise);
      const clip = trace ? `, clipped by ${fmt(trace.clipFactor, 4)} to norm ≤ ${trace.clipNorm}` : '';
      const noised = trace?.noise
        ? `, with its share of the noise (discrete Gaussian σ = ${trace.noise.siloSigma} lattice steps of 1/${fmt(trace.scale, 6)})`
        : '';
      this.deps.log({
        study: name,
        round: task.round,
        message: `trained ${options.epochs} local epoch(s) on ${data.train.n} records; update norm ${fmt(l2Norm(result.delta), 4)}${clip}${noised}; masked input uploaded (the hub sees only the sum)`,
      });
      const answered = await participant.unmask();
      const message =
        answered === 'answered'
          ? 'masked input summed; unmasking request answered'
          : 'masked input not in the sum (the hub did not count it); nothing revealed';
      this.deps.log({ study: name, round: task.round, message: `secure aggregation: ${message}` });
      const overhead = participant.computationMs;
      this.deps.log({
        study: name,
        round: task.round,
        message: `secure aggregation computed for ${fmt(overhead, 1)} ms (keys, shares, masking, answers; waiting not counted) against ${fmt(trainingMs, 1)} ms of local training: ${fmt((100 * overhead) / trainingMs, 1)}%`,
      });
      return { kind: 'summed', reason: message };
    } catch (err) {
      if (!(err instanceof SecAggDropout)) throw err;
      this.deps.log({
        study: name,
        round: task.round,
        message: `secure aggregation: the round went on without this silo (${err.message}); its round state is deleted`,
      });
      return { kind: 'refused', reason: 'the round went on without this silo' };
    }
  }

  /** A retry, a restart or a later attempt of a round on the same model: the same payload, no training, no charge. */
  private resendUpdate(ctx: PlanContext, existing: TrainingRelease): Promise<TaskOutcome> {
    const { task, name } = ctx;
    const frame = reframeForAttempt(existing.frame, task.attempt);
    // On record before it leaves: a restarted agent asks the hub about this sending too (release-reconciler.ts).
    this.deps.releases.recordSending(existing.file, existing.header.attempt, task.attempt);
    this.deps.log({
      study: name,
      round: task.round,
      message: `re-sending the update released for this round on model ${task.modelHash.slice(0, 12)}… (payload sha256 ${existing.header.payloadSha256.slice(0, 12)}…, made at attempt ${existing.header.attempt}): no retraining, no new privacy charge`,
    });
    return this.deliverUpdate(ctx, existing, frame);
  }

  /** Sends `frame` (the release as made, or re-stamped for this attempt) and stores the receipt or the settlement. */
  private async deliverUpdate(ctx: PlanContext, release: TrainingRelease, frame: Uint8Array): Promise<TaskOutcome> {
    const { task, name } = ctx;
    const header = decodeUpdateFrame(frame).header;
    const target = { round: task.round, deadlineMs: ctx.deadlineMs };
    const answer = await deliver(this.delivery, target, name, 'upload', () =>
      this.deps.transport.uploadUpdate(task.studyId, task.round, frame),
    );
    if ('refusal' in answer) {
      this.settle(name, task.round, release.file, header.attempt, answer.refusal, 'update');
      return { kind: 'refused', reason: 'the hub refused the update' };
    }
    const receipt = answer.sent;
    if (receipt.studyId !== task.studyId || receipt.round !== task.round || receipt.attempt !== task.attempt) {
      this.deps.log({
        study: name,
        round: task.round,
        message: `WARNING: the hub's receipt names study ${receipt.studyId} round ${receipt.round} attempt ${receipt.attempt}`,
      });
    }
    if (receipt.updateSha256 !== header.payloadSha256 && receipt.updateSha256 !== sha256Hex(frame)) {
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
      message: `update accepted (${frame.length} bytes, payload sha256 ${header.payloadSha256.slice(0, 12)}…); receipt saved`,
    });
    return { kind: 'uploaded', receipt, header, receiptFile };
  }

  private async evaluateFinal(ctx: PlanContext): Promise<TaskOutcome> {
    const { task, plan, name } = ctx;
    const existing = this.deps.releases.evaluation(task.studyId, task.round, task.modelHash);
    if (existing !== null && existing.report.planHash === task.planHash) {
      this.deps.log({
        study: name,
        round: task.round,
        message: `re-sending the evaluation released for model ${task.modelHash.slice(0, 12)}…: no new evaluation, no new privacy charge`,
      });
      return this.deliverEvaluation(ctx, { ...existing.report, attempt: task.attempt }, existing);
    }
    const mode = plan.release.evaluation.mode;
    const personalizes = plan.personalization !== undefined;
    const request: ChargeRequest = {
      trainingRounds: 0,
      // The global model's release and, with personalization, one per personal model (finalEvaluationReleases).
      evaluationReleases: mode === 'noisy' ? finalEvaluationReleases(plan) : 0,
      ...(personalizes && (ctx.mechanism?.personalizationSteps ?? 0) > 0 ? { personalizations: 1 as const } : {}),
    };
    const { model } = this.planModel(ctx.study);
    const data = await this.dataFor(task, ctx.study, model);
    this.checkLimits(ctx, request, mode === 'exact');
    const parameters = await this.downloadModel(task, model, name);
    const local = await this.evaluateLocally(ctx, model, parameters, data);
    const evaluation = mode === 'none' ? null : await this.evaluationPayload(ctx, model, parameters, data, local);
    const personal = personalizes ? await this.personalize(ctx, model, parameters, data) : null;
    const privacy = this.charge(ctx, request, task.modelHash);
    const report: EvaluationReport = {
      round: task.round,
      attempt: task.attempt,
      planHash: task.planHash,
      modelHash: task.modelHash,
      evaluation,
      ...(personal?.personalized ? { personalized: personal.personalized } : {}),
      ...(personal?.localBaseline ? { localBaseline: personal.localBaseline } : {}),
      privacy,
    };
    // Nothing is released under 'none' (the report only says the task is done): nothing to keep.
    const saved = evaluation === null ? null : this.deps.releases.saveEvaluation(task.studyId, report);
    return this.deliverEvaluation(ctx, report, saved);
  }

  /**
   * plan.personalization at the final evaluation: fine-tunes the final global model on this silo's training split
   * (and trains the local-only baseline when planned), keeps both models in the state directory (never uploaded),
   * evaluates each on the test split and returns what the plan releases of each (the global model's kind of release).
   */
  private async personalize(
    ctx: PlanContext,
    model: StudyModel,
    parameters: Float32Array,
    data: StudyData,
  ): Promise<{ personalized: EvaluationPayload | null; localBaseline: EvaluationPayload | null }> {
    const { task, plan, name } = ctx;
    let models: PersonalModels;
    try {
      models = await trainPersonalModels(plan, model, parameters, data.train);
    } catch (err) {
      if (err instanceof ImageFileError) {
        throw new StudyFailure('DATA_UNREADABLE', `an image became unusable during personalization: ${err.message}`);
      }
      throw new StudyFailure('TRAINING_FAILED', `personalization failed: ${(err as Error).message}`);
    }
    const out: { personalized: EvaluationPayload | null; localBaseline: EvaluationPayload | null } = {
      personalized: null,
      localBaseline: null,
    };
    const kinds = [
      ['personalized', models.personalized],
      ['local-baseline', models.localBaseline],
    ] as const;
    for (const [kind, weights] of kinds) {
      if (weights === null) continue;
      if (!allFinite(weights)) {
        throw new StudyFailure('TRAINING_FAILED', `the ${kind} model diverged: it has non-finite parameters`);
      }
      const file = this.personalModels.save(task.studyId, kind, task.modelHash, weights);
      const m = await model.evaluate(weights, data.test);
      this.deps.log({
        study: name,
        round: task.round,
        message: `${kind} model kept at the silo (${file}); on the local test split: ${m.summary}`,
      });
      const payload = await this.evaluationPayload(ctx, model, weights, data, m);
      if (kind === 'personalized') out.personalized = payload;
      else out.localBaseline = payload;
    }
    return out;
  }

  /**
   * Sends an evaluation report. A report carries no receipt: the hub's acknowledgement of a persisted one is recorded
   * beside it (settled 'reported'), so a restarted agent asks the hub only about reports it never heard back on.
   */
  private async deliverEvaluation(
    ctx: PlanContext,
    report: EvaluationReport,
    release: EvaluationRelease | null,
  ): Promise<TaskOutcome> {
    const { task, name } = ctx;
    const target = { round: task.round, deadlineMs: ctx.deadlineMs };
    const madeFor = release?.report.attempt ?? report.attempt;
    // A settlement from an earlier sending no longer holds once it goes out again: this answer decides.
    if (release !== null) this.deps.releases.recordSending(release.file, madeFor, madeFor);
    const answer = await deliver(this.delivery, target, name, 'evaluation report', async () => {
      await this.deps.transport.reportEvaluation(task.studyId, report);
      return true;
    });
    if ('refusal' in answer) {
      if (release !== null) this.settle(name, task.round, release.file, madeFor, answer.refusal, 'evaluation');
      return { kind: 'refused', reason: 'the hub refused the evaluation report' };
    }
    if (release !== null) {
      this.deps.releases.settle(release.file, madeFor, {
        outcome: 'reported',
        hubCode: null,
        message: 'accepted by the hub',
        settledAt: this.clock().toISOString(),
      });
    }
    const what =
      report.evaluation === null
        ? 'task done (the plan releases no evaluation)'
        : `${report.evaluation.kind} evaluation`;
    this.deps.log({ study: name, round: task.round, message: `reported to the hub: ${what}` });
    return { kind: 'evaluated', report };
  }

  /**
   * Records what a refusal of a release settles (hub-delivery.ts, settlementOfRefusal), and says it in the log: a
   * settled sending stays on file and is not sent again on the agent's own; one the refusal does not settle is asked
   * about again before the study's next task or at the next start (release-reconciler.ts).
   */
  private settle(
    name: string,
    round: number,
    file: string,
    attempt: number,
    refusal: AgentError,
    release: 'update' | 'evaluation',
  ): void {
    const settlement = settlementOfRefusal(refusal, release, this.clock());
    if (settlement === null) {
      this.deps.log({
        study: name,
        round,
        message: `the ${release} stays on file unsettled (${refusal.hubCode ?? `HTTP ${refusal.httpStatus ?? '?'}`}); the agent asks the hub about it again before this study's next task`,
      });
      return;
    }
    this.deps.releases.settle(file, attempt, settlement);
    this.deps.log({ study: name, round, message: `the ${release} ${describeSettlement(settlement, release)}` });
  }

  /**
   * Refuses (before any download, training or charge) what the approved plan does not allow: with DP, the ledger's
   * plan limits and the silo's cap; releases without DP (exact evaluation, plans without DP) are counted from the
   * release files. A plan-limit refusal ends this task only; the cap ends this silo's part in the plan.
   */
  private checkLimits(ctx: PlanContext, request: ChargeRequest, exactEvaluation: boolean): void {
    const { task, plan, mechanism } = ctx;
    const releases = this.deps.releases;
    if (mechanism === null && request.trainingRounds) {
      const trained = releases.trainingReleases(task.studyId).filter((r) => r.header.planHash === task.planHash);
      if (trained.length + 1 > plan.training.rounds) {
        throw new TaskFailure(
          'PLAN_LIMIT_REACHED',
          `the approved plan has ${plan.training.rounds} training rounds; this silo has released ${trained.length} updates for it, and this would be one more`,
        );
      }
    }
    if (exactEvaluation) {
      const released =
        releases.trainingReleases(task.studyId).filter((r) => r.header.evaluation?.kind === 'exact').length +
        releases.evaluationReleases(task.studyId).filter((r) => r.report.evaluation?.kind === 'exact').length;
      const allowed = plannedEvaluationReleases(plan);
      if (released + 1 > allowed) {
        throw new TaskFailure(
          'PLAN_LIMIT_REACHED',
          `the approved plan allows ${allowed} exact evaluation releases; this would be release ${released + 1}`,
        );
      }
    }
    const charges = request.trainingRounds + request.evaluationReleases + (request.personalizations ?? 0) > 0;
    if (!charges && !(mechanism === null && task.kind === 'train')) return;
    const refusal = this.deps.privacy.refusal(task.studyId, mechanism, request);
    if (refusal === null) return;
    if (refusal.code === 'PRIVACY_CAP_REACHED') throw new StudyFailure(refusal.code, refusal.message);
    throw new TaskFailure(refusal.code, refusal.message);
  }

  /** Charges the ledger (flushed) before the release is persisted and sent; null when nothing is charged. */
  private charge(ctx: PlanContext, request: ChargeRequest, modelHash: string): PrivacySpend | null {
    const { task, plan, mechanism, name } = ctx;
    if (
      mechanism === null ||
      request.trainingRounds + request.evaluationReleases + (request.personalizations ?? 0) === 0
    ) {
      return null;
    }
    let spend: PrivacySpend;
    try {
      spend = this.deps.privacy.charge(
        { studyId: task.studyId, studyName: plan.name, round: task.round, attempt: task.attempt, modelHash },
        mechanism,
        request,
        this.clock(),
      );
    } catch (err) {
      // Checked before the work began; only another process charging meanwhile gets here. Nothing was charged.
      if (err instanceof ChargeRefusedError) throw new TaskFailure(err.refusal.code, err.refusal.message);
      throw err;
    }
    const parts = [
      request.trainingRounds ? `training round ${spend.trainingRounds} of ${mechanism.rounds}` : null,
      request.personalizations ? `personalization (${mechanism.personalizationSteps} DP-SGD steps)` : null,
      request.evaluationReleases
        ? `evaluation release ${spend.evaluationReleases} of ${mechanism.evaluation?.releases ?? 0} (noise stddev ${fmt(mechanism.evaluation?.noiseStddev ?? null, 3)} counts)`
        : null,
    ].filter((p) => p !== null);
    this.deps.log({
      study: name,
      round: task.round,
      message: `privacy charged: ${parts.join(' and ')}; ${spend.mechanism} (unit ${spend.unit}) σ ${fmt(spend.noiseMultiplier, 4)}, C ${spend.clipNorm}, q ${spend.samplingRate}, ${spend.steps} steps: study ε ${fmt(spend.epsilonCumulative, 4)} of ${mechanism.targetEpsilon} at δ ${mechanism.delta}`,
    });
    return spend;
  }

  /** What the plan releases of this evaluation: exact metrics, or noisy score histograms (never both, never more). */
  private async evaluationPayload(
    ctx: PlanContext,
    model: StudyModel,
    parameters: Float32Array,
    data: StudyData,
    local: LocalEvaluation,
  ): Promise<EvaluationPayload | null> {
    const release = ctx.plan.release.evaluation;
    if (release.mode === 'none') return null;
    if (release.mode === 'exact') return local.exact;
    const noise = ctx.mechanism?.evaluation;
    if (!noise) {
      // The protocol only allows noisy evaluation with DP-SGD, which always derives this noise.
      throw new StudyFailure(
        'PRIVACY_PLAN_UNSAFE',
        'the plan asks for noisy evaluation but derives no evaluation noise',
      );
    }
    const histograms = await model.scoreHistograms(parameters, data.test, release.scoreBins);
    return noisyHistogramEvaluation(histograms, noise.noiseStddev, this.deps.random ?? defaultRandomSource());
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

  /** The plan's privacy mechanism as this agent computes it (never the hub's numbers). */
  private mechanismOf(plan: StudyPlan): PrivacyMechanism | null {
    try {
      return privacyMechanismOf(plan);
    } catch (err) {
      if (err instanceof PrivacyPlanError) throw new StudyFailure('PRIVACY_PLAN_UNSAFE', err.message);
      throw err;
    }
  }

  private planModel(study: SiloStudy): { model: StudyModel; options: LocalTrainingOptions } {
    try {
      return { model: studyModelOf(study.plan), options: localTrainingOptionsOf(study.plan) };
    } catch (err) {
      if (err instanceof PrivacyPlanError || err instanceof ModelSpecException || err instanceof NetworkSpecError) {
        throw new StudyFailure('TRAINING_FAILED', err.message);
      }
      throw err;
    }
  }

  private async dataFor(task: SiloTask, study: SiloStudy, model: StudyModel): Promise<StudyData> {
    const result = await this.deps.datasets.forPlan(task.studyId, task.planHash, study.plan);
    if (!result.ok) throw new StudyFailure(result.problem.code, result.problem.message);
    const expected = model.inputWidth;
    if (result.kind === 'tabular' && expected !== null && result.encodedFeatures !== expected) {
      throw new StudyFailure(
        'DATA_SCHEMA_MISMATCH',
        `the schema encodes to ${result.encodedFeatures} columns, the model expects ${expected}`,
      );
    }
    return result.data;
  }

  private async downloadModel(task: SiloTask, model: StudyModel, name: string): Promise<Float32Array> {
    const expectedBytes = model.parameterCount * 4;
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

  /** The exact metrics, for this silo's own log (they leave only when the plan releases them 'exact'). */
  private async evaluateLocally(
    ctx: PlanContext,
    model: StudyModel,
    parameters: Float32Array,
    data: StudyData,
  ): Promise<LocalEvaluation> {
    let m: LocalEvaluation;
    try {
      m = await model.evaluate(parameters, data.test);
    } catch (err) {
      if (err instanceof ImageFileError) {
        throw new StudyFailure('DATA_UNREADABLE', `an image became unusable during evaluation: ${err.message}`);
      }
      if (err instanceof TrainingInputException) throw new StudyFailure('TRAINING_FAILED', err.message);
      throw err;
    }
    if (!Number.isFinite(m.loss))
      throw new TaskFailure('TRAINING_FAILED', 'the global model gives a non-finite test loss');
    this.deps.log({
      study: ctx.name,
      round: ctx.task.round,
      message: `evaluated the global model on the local test split (kept in the silo): ${m.summary}`,
    });
    return m;
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
