import { HubErrorCode, planHash, type SiloStudy, type SiloTask, type StudyStatus } from '@tessera/protocol';
import { AgentError, AgentErrorCode } from '../agent.error';
import { setCurrentTask } from '../hub/agent-software';
import type { HubClock } from '../hub/hub-clock';
import type { StudyTransport } from '../hub/study-transport';
import { policyVerdict, type ApprovalPolicy } from '../policy/approval-policy';
import type { ApprovalStore } from '../state/approval-store';
import { Backoff } from './backoff.util';
import type { ReleaseReconciler } from './release-reconciler';
import type { StepLog, TaskExecutor, TaskOutcome } from './task-executor';

export interface DaemonOptions {
  /** Long-poll wait in seconds (the hub caps it at 30). */
  pollWaitSeconds: number;
  /** Exit once this study has ended: 0, or 1 when this silo reported a failure for it. */
  exitAfterStudy?: string;
  policy?: ApprovalPolicy;
}

export interface DaemonDeps {
  transport: StudyTransport;
  executor: TaskExecutor;
  /** Sends persisted releases the hub never answered again, at start and before a study's next task. */
  reconciler: ReleaseReconciler;
  approvals: ApprovalStore;
  /** Renews the certificate when due; true when it did. */
  renewIfDue: () => Promise<boolean>;
  log: StepLog;
  /** Aborted at SIGTERM/SIGINT: the daemon stops after the current step. */
  stop: AbortSignal;
  clock?: () => Date;
  /** Waits ms or until `stop` is aborted; injectable so tests do not sleep. */
  sleep?: (ms: number, stop: AbortSignal) => Promise<void>;
  /** Compares the hub's clock with this host's from every task, and warns once when they differ (optional). */
  hubClock?: HubClock;
  /** Called after each task (the terminal progress display). */
  onTaskDone?: (task: SiloTask, study: SiloStudy | undefined, outcome: TaskOutcome) => void;
  /**
   * A light call to the hub, made every poll wait while a task runs: the hub counts an agent with no request for
   * longer than its long-poll interval offline, and training makes none. Its failures are ignored (the task's own
   * calls report them).
   */
  heartbeat?: () => Promise<void>;
}

/**
 * What the agent prints when the hub answers SILO_SUSPENDED: it waits, since its certificate is still good. The hub
 * says "This silo is suspended: <reason>." (SilosService.identify); the reason is quoted when there is one.
 */
export function suspensionAdvice(errorMessage: string): string {
  const reason = /suspended: (.+?)\.?$/.exec(errorMessage)?.[1];
  return (
    `SUSPENDED by the hub's administrator${reason ? ` (reason given: ${reason})` : ''}; waiting to be resumed. ` +
    'Nothing to do on this side: keep this agent running and do not re-enroll; it asks the hub again with backoff ' +
    'and carries on by itself once the silo is resumed.'
  );
}

/** Whether an error is the hub's answer that the silo is suspended (any call: a poll, an upload, a renewal). */
export function isSuspension(err: unknown): err is AgentError {
  return err instanceof AgentError && err.hubCode === HubErrorCode.SILO_SUSPENDED;
}

const ENDED: readonly StudyStatus[] = ['completed', 'stopped', 'failed'];
const DECIDABLE: readonly StudyStatus[] = ['awaiting_approvals', 'running'];

/** Resolves after ms, or at once when the signal is aborted. */
export function sleepUnlessStopped(ms: number, stop: AbortSignal): Promise<void> {
  return new Promise((done) => {
    if (stop.aborted) return done();
    const timer = setTimeout(() => {
      stop.removeEventListener('abort', onAbort);
      done();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      done();
    };
    stop.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * The agent's main loop: renew the certificate when due, approve by policy what the policy allows, long-poll for
 * tasks and carry them out one at a time. An unreachable hub is retried with capped exponential backoff; a refused
 * certificate ends the loop with exit code 1.
 *
 * Releases on file that the hub never answered (an agent killed after the hub accepted its update, before it read
 * the receipt) are sent again (ReleaseReconciler): for every study once the agent starts, before anything else;
 * for a study before each task of it that the agent carries out; and once for a study that ended while the agent
 * ran. A pass the hub could not be reached for is retried with the same backoff, before any task.
 */
export class AgentDaemon {
  private readonly backoff = new Backoff();
  /** studyId → what was last said about it, so a waiting study is logged once, not every poll. */
  private readonly said = new Map<string, string>();
  /** Studies this agent has said are paused (to say once when each is resumed). */
  private readonly paused = new Set<string>();
  /** Plan hashes whose approval by policy the hub refused: not sent again every poll. */
  private readonly policyRefused = new Set<string>();
  private readonly sleep: (ms: number, stop: AbortSignal) => Promise<void>;
  private readonly clock: () => Date;
  /** Whether the pass over every study's releases at start has completed. */
  private startPassDone = false;
  /** Ended studies whose releases were asked about after they ended (or at start). */
  private readonly endedPassed = new Set<string>();
  /** Whether the hub's last answer was that the silo is suspended (said once, then once more when resumed). */
  private suspended = false;

  constructor(
    private readonly deps: DaemonDeps,
    private readonly options: DaemonOptions,
  ) {
    this.sleep = deps.sleep ?? sleepUnlessStopped;
    this.clock = deps.clock ?? (() => new Date());
  }

  /** Runs until stopped (0), until --exit-after-study's study ends (0 or 1), or until the hub refuses us (1). */
  async run(): Promise<number> {
    const { transport, executor, stop } = this.deps;
    while (!stop.aborted) {
      try {
        if (await this.deps.renewIfDue()) this.info('certificate renewed');
        let studies = await transport.listStudies();
        if (this.suspended) {
          this.suspended = false;
          this.info('the hub admits this silo again (resumed): carrying on');
        }
        await this.approveByPolicy(studies);
        this.notePauses(studies);
        await this.resendUnanswered(studies);
        const exit = this.exitCode(studies);
        if (exit !== null) return exit;
        if (stop.aborted) break;

        const tasks = await transport.pollTasks(this.options.pollWaitSeconds, stop);
        // Each task's deadline is this receipt time plus the time the hub said was left (TaskExecutor.execute).
        const receivedAt = this.clock();
        for (const task of tasks) this.deps.hubClock?.observeTask(task, receivedAt.getTime());
        let worked = false;
        for (const task of tasks) {
          if (stop.aborted) break;
          if (executor.isSettled(task)) continue;
          let study = this.studyFor(studies, task);
          if (study === undefined) {
            studies = await transport.listStudies();
            study = this.studyFor(studies, task);
          }
          const forTask = study ?? studies.find((s) => s.studyId === task.studyId);
          // Before the study's next task: what the hub left unanswered (a re-sent receipt settles this task too).
          await this.deps.reconciler.resend(task.studyId, forTask?.plan.name);
          const outcome = await this.withTask(task, () => executor.execute(task, forTask, receivedAt));
          this.deps.onTaskDone?.(task, forTask, outcome);
          worked = true;
        }
        this.backoff.reset();
        // The hub answers at once while it still offers tasks this agent has settled: wait instead of spinning.
        if (tasks.length > 0 && !worked && !stop.aborted) await this.sleep(this.options.pollWaitSeconds * 1000, stop);
      } catch (err) {
        if (stop.aborted) break;
        const exit = await this.recover(err);
        if (exit !== null) return exit;
      }
    }
    this.info('stopped');
    return 0;
  }

  /**
   * At start, every study with releases on file; then each study seen ended for the first time. Throws what the
   * reconciler throws (HUB_UNREACHABLE: the daemon backs off and the pass runs again on the next turn).
   */
  private async resendUnanswered(studies: SiloStudy[]): Promise<void> {
    const ended = studies.filter((s) => ENDED.includes(s.status)).map((s) => s.studyId);
    const due = this.startPassDone ? ended.filter((id) => !this.endedPassed.has(id)) : this.deps.reconciler.studies();
    for (const id of due) {
      if (this.deps.stop.aborted) return;
      await this.deps.reconciler.resend(id, studies.find((s) => s.studyId === id)?.plan.name);
      if (ended.includes(id)) this.endedPassed.add(id);
    }
    this.startPassDone = true;
    for (const id of ended) this.endedPassed.add(id);
  }

  private studyFor(studies: SiloStudy[], task: SiloTask): SiloStudy | undefined {
    return studies.find((s) => s.studyId === task.studyId && s.planVersion === task.planVersion);
  }

  /**
   * Runs a task with the hub told which one it is (x-tessera-agent-task on every call) and, when the daemon has a
   * heartbeat, a call every poll wait while it runs, so the hub sees the agent alive during a long training.
   */
  private async withTask<T>(task: SiloTask, work: () => Promise<T>): Promise<T> {
    setCurrentTask({ kind: task.kind, studyId: task.studyId, round: task.round });
    const beat = this.deps.heartbeat;
    const timer =
      beat === undefined
        ? undefined
        : setInterval(() => {
            beat().catch(() => undefined); // the task's own calls report a hub that refuses or is gone
          }, this.options.pollWaitSeconds * 1000);
    timer?.unref();
    try {
      return await work();
    } finally {
      clearInterval(timer);
      setCurrentTask(null);
    }
  }

  /** Decides what an error means for the loop: an exit code, or null after waiting to try again. */
  private async recover(err: unknown): Promise<number | null> {
    if (isSuspension(err)) {
      // Not an identity problem: the certificate is good, the administrator paused the silo. Wait and ask again.
      const delay = this.backoff.next();
      if (!this.suspended) this.info(suspensionAdvice(err.message));
      this.suspended = true;
      await this.sleep(delay, this.deps.stop);
      return null;
    }
    if (err instanceof AgentError) {
      switch (err.code) {
        case AgentErrorCode.IDENTITY_REFUSED:
          this.info(`STOPPING: ${err.message} Re-enroll this agent with a new bundle from the hub administrator.`);
          return 1;
        case AgentErrorCode.STATE_CORRUPT:
        case AgentErrorCode.NOT_ENROLLED:
          this.info(`STOPPING: ${err.message}`);
          return 1;
        default:
          break;
      }
    }
    const delay = this.backoff.next();
    const what = err instanceof AgentError ? err.message : `unexpected failure: ${(err as Error).stack ?? String(err)}`;
    this.info(`${what} — retrying in ${delay / 1000} s`);
    await this.sleep(delay, this.deps.stop);
    return null;
  }

  private exitCode(studies: SiloStudy[]): number | null {
    const id = this.options.exitAfterStudy;
    if (id === undefined) return null;
    const study = studies.find((s) => s.studyId === id);
    if (study === undefined || !ENDED.includes(study.status)) return null;
    const failedHere = this.deps.executor.failedStudies.has(id);
    this.deps.log({
      study: study.plan.name,
      message: `study ${study.status}; exiting${failedHere ? ' with status 1: this silo reported a failure for it' : ''}`,
    });
    return failedHere ? 1 : 0;
  }

  /** Approves, as 'policy', each undecided study whose plan stays within every limit of the policy. */
  private async approveByPolicy(studies: SiloStudy[]): Promise<void> {
    for (const study of studies) {
      if (!DECIDABLE.includes(study.status)) continue;
      const computed = planHash(study.studyId, study.planVersion, study.plan);
      if (this.deps.approvals.get(study.studyId)?.planHash === computed) continue;
      const name = study.plan.name;
      if (computed !== study.planHash) {
        this.sayOnce(
          study,
          `the plan the hub sent hashes to ${computed.slice(0, 12)}…, but the hub names ${study.planHash.slice(0, 12)}…; not approving`,
        );
        continue;
      }
      const policy = this.options.policy;
      if (this.policyRefused.has(computed)) continue;
      if (policy === undefined) {
        this.sayOnce(
          study,
          `plan version ${study.planVersion} awaits a steward: tessera-agent studies show ${study.studyId}`,
        );
        continue;
      }
      const verdict = policyVerdict(policy, study);
      if (!verdict.approve) {
        this.sayOnce(
          study,
          `plan version ${study.planVersion} awaits a steward; outside the policy: ${verdict.reasons.join('; ')}`,
        );
        continue;
      }
      try {
        await this.deps.transport.decide(study.studyId, { planHash: computed, decision: 'approve' });
      } catch (err) {
        if (err instanceof AgentError && err.code === AgentErrorCode.HUB_REFUSED) {
          this.policyRefused.add(computed);
          this.sayOnce(study, `approval by policy refused by the hub: ${err.message}`);
          continue;
        }
        throw err;
      }
      this.deps.approvals.record(study.studyId, {
        planHash: computed,
        planVersion: study.planVersion,
        decision: 'approve',
        decidedAt: this.clock().toISOString(),
        decidedBy: 'policy',
      });
      this.deps.log({
        study: name,
        message: `approved plan version ${study.planVersion} (${computed.slice(0, 12)}…) by policy`,
      });
    }
  }

  /**
   * A paused study opens no new round (the hub holds it back): there is nothing to do but wait, which the loop does
   * anyway. The steward and IT are told once when it pauses and once when it resumes.
   */
  private notePauses(studies: SiloStudy[]): void {
    for (const study of studies) {
      const pause = study.status === 'running' ? study.paused : null;
      if (pause && !this.paused.has(study.studyId)) {
        this.paused.add(study.studyId);
        this.deps.log({
          study: study.plan.name,
          message: `PAUSED by the hub's administrator (${pause.reason}): no new round opens until it is resumed; waiting`,
        });
      } else if (!pause && this.paused.delete(study.studyId)) {
        this.deps.log({ study: study.plan.name, message: 'resumed by the hub: carrying on' });
      }
    }
  }

  private sayOnce(study: SiloStudy, message: string): void {
    const key = `${study.planHash}:${message}`;
    if (this.said.get(study.studyId) === key) return;
    this.said.set(study.studyId, key);
    this.deps.log({ study: study.plan.name, message });
  }

  private info(message: string): void {
    this.deps.log({ study: 'agent', message });
  }
}
