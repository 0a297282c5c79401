import { dirname } from 'node:path';
import { controlCorrection } from '@tessera/ml';
import { clipToNormInPlace, finalEvaluationReleases, type RandomSource } from '@tessera/dp';
import {
  decodeUpdateFrame,
  encodeUpdateFrame,
  float32Bytes,
  planHash,
  sha256Hex,
  type EvaluationReport,
  type FailureReport,
  type SiloStudy,
  type SiloTask,
  type UpdateHeader,
  type UpdateReceipt,
} from '@tessera/protocol';
import { AgentError, AgentErrorCode } from '../agent.error';
import { localDeadlineMs } from '../hub/hub-clock';
import type { StudyTransport } from '../hub/study-transport';
import type { ChargeRequest, SiloPrivacyLedger } from '../privacy/silo-privacy-ledger';
import type { SecAggParticipant } from '../secagg/secagg-participant';
import type { ApprovalStore } from '../state/approval-store';
import type { ReceiptStore } from '../state/receipt-store';
import {
  reframeForAttempt,
  type EvaluationRelease,
  type ReleaseStore,
  type TrainingRelease,
} from '../state/release-store';
import { PersonalModelStore } from '../personalization/personal-model.store';
import { ControlVariateStore } from '../training/control-variate.store';
import type { StudyDatasets } from '../training/study-datasets';
import { deliver, describeSettlement, settlementOfRefusal, type Delivery } from './hub-delivery';
import { EvaluationPayloads } from './evaluation-payloads';
import { ReleaseBudget } from './release-budget';
import { ScaffoldControl } from './scaffold-control';
import { SecureTraining } from './secure-training';
import { allFinite, fmt, l2Norm, StudyFailure, TaskFailure, type PlanContext, type StepLog } from './task-context';
import { TaskInputs } from './task-inputs';

export type { StepLine, StepLog } from './task-context';
export { float32FromLittleEndian, l2Norm } from './task-context';

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
  private readonly inputs: TaskInputs;
  private readonly budget: ReleaseBudget;
  private readonly scaffold: ScaffoldControl;
  private readonly secure: SecureTraining;
  private readonly evaluations: EvaluationPayloads;

  constructor(private readonly deps: TaskExecutorDeps) {
    this.clock = deps.clock ?? (() => new Date());
    const controlVariates = deps.controlVariates ?? new ControlVariateStore(dirname(deps.releases.root));
    this.inputs = new TaskInputs({ transport: deps.transport, datasets: deps.datasets, log: deps.log });
    this.budget = new ReleaseBudget({
      releases: deps.releases,
      privacy: deps.privacy,
      log: deps.log,
      clock: this.clock,
    });
    this.scaffold = new ScaffoldControl({ transport: deps.transport, controlVariates, log: deps.log });
    this.secure = new SecureTraining({
      ...(deps.secureAggregation ? { participantFor: deps.secureAggregation } : {}),
      inputs: this.inputs,
      budget: this.budget,
      log: deps.log,
    });
    this.evaluations = new EvaluationPayloads({
      personalModels: deps.personalModels ?? new PersonalModelStore(dirname(deps.releases.root)),
      ...(deps.random ? { random: deps.random } : {}),
      log: deps.log,
    });
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
      mechanism: this.inputs.mechanismOf(study!.plan),
      name,
    };
    return task.kind === 'train' ? this.train(ctx) : this.evaluateFinal(ctx);
  }

  private async train(ctx: PlanContext): Promise<TaskOutcome> {
    if (ctx.plan.secureAggregation) return this.secure.run(ctx);
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
    const { model, options } = this.inputs.planModel(ctx.study);
    const data = await this.inputs.dataFor(task, ctx.study, model);
    this.inputs.requireMeaningfulDelta(mechanism, data);
    this.budget.check(ctx, request, evaluationEveryRound && release.mode === 'exact');

    const parameters = await this.inputs.downloadModel(task, model, name);
    const scaffold =
      plan.training.algorithm === 'scaffold' ? await this.scaffold.roundStart(ctx, parameters.length) : null;
    const local = await this.inputs.evaluateLocally(ctx, model, parameters, data);
    // The base model's evaluation, before training touches anything (released only 'every' round).
    const evaluation = evaluationEveryRound
      ? await this.evaluations.payload(ctx, model, parameters, data, local)
      : null;
    const trainOptions = scaffold
      ? { ...options, controlCorrection: controlCorrection(scaffold.server, scaffold.client) }
      : options;
    const result = await this.inputs.train(ctx, model, parameters, data, trainOptions);
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
    const payload = scaffold ? this.scaffold.payload(ctx, scaffold, result, options.learningRate) : result.delta;
    if (!allFinite(payload)) {
      return this.fail(
        name,
        task,
        'TRAINING_FAILED',
        'local training diverged: the control delta has non-finite values',
      );
    }
    const privacy = this.budget.charge(ctx, request, task.modelHash);
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
    const { model } = this.inputs.planModel(ctx.study);
    const data = await this.inputs.dataFor(task, ctx.study, model);
    this.budget.check(ctx, request, mode === 'exact');
    const parameters = await this.inputs.downloadModel(task, model, name);
    const local = await this.inputs.evaluateLocally(ctx, model, parameters, data);
    const evaluation = mode === 'none' ? null : await this.evaluations.payload(ctx, model, parameters, data, local);
    const personal = personalizes ? await this.evaluations.personalize(ctx, model, parameters, data) : null;
    const privacy = this.budget.charge(ctx, request, task.modelHash);
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
