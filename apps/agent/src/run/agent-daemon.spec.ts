import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initialParameters, selectBackend } from '@tessera/ml';
import {
  AGENT_TASK_HEADER,
  decodeUpdateFrame,
  HubErrorCode,
  type SiloStudy,
  type SiloTask,
  type UpdateReceipt,
} from '@tessera/protocol';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { AgentError, AgentErrorCode } from '../agent.error';
import type { ApprovalPolicy } from '../policy/approval-policy';
import { ApprovalStore } from '../state/approval-store';
import { ReceiptStore } from '../state/receipt-store';
import { ReleaseStore } from '../state/release-store';
import { buildPlan, buildStudy, buildTask, FakeHub, modelBlob, readHeartDisease } from '../testing/study.test-util';
import { modelSpecOf } from '../training/plan-mapping.util';
import { StudyDatasets } from '../training/study-datasets';
import { HubClock } from '../hub/hub-clock';
import { agentHeaders } from '../hub/agent-software';
import { AgentDaemon, suspensionAdvice, type DaemonDeps, type DaemonOptions } from './agent-daemon';
import { ReleaseReconciler } from './release-reconciler';
import { SiloPrivacyLedger } from '../privacy/silo-privacy-ledger';
import { TaskExecutor, type StepLine } from './task-executor';

beforeAll(async () => {
  await selectBackend('cpu');
});

/** A fake hub that ends the study once an update arrives, and stops the daemon after a number of polls. */
class ScriptedHub extends FakeHub {
  stopAfterPolls = Number.POSITIVE_INFINITY;
  readonly stopper = new AbortController();

  override async pollTasks(): Promise<SiloTask[]> {
    const tasks = await super.pollTasks();
    if (this.polls >= this.stopAfterPolls) this.stopper.abort();
    return tasks;
  }

  override async uploadUpdate(studyId: string, round: number, frame: Uint8Array): Promise<UpdateReceipt> {
    const receipt = await super.uploadUpdate(studyId, round, frame);
    this.studies.find((s) => s.studyId === studyId)!.status = 'completed';
    return receipt;
  }
}

const policy: ApprovalPolicy = {
  autoApprove: {
    models: ['logistic-regression'],
    allowedColumns: [...buildPlan().schema.features.map((f) => f.name), 'num'],
    maxRounds: 5,
    privacyRequired: false,
    maxEpsilon: 8,
  },
};

function setup(
  study: SiloStudy,
  options: Partial<DaemonOptions> = {},
  csv = readHeartDisease(),
  /** This host's clock runs this many ms ahead of the hub's (negative: behind). */
  skewMs = 0,
) {
  const hostClock = () => new Date(Date.now() + skewMs);
  const root = mkdtempSync(join(tmpdir(), 'tessera-daemon-'));
  const hub = new ScriptedHub();
  hub.studies = [study];
  const blob = modelBlob(initialParameters(modelSpecOf(study.plan), 1));
  hub.blobs.set(blob.hash, blob.bytes);
  const approvals = new ApprovalStore(root);
  const lines: StepLine[] = [];
  const sleeps: number[] = [];
  const log = (l: StepLine) => lines.push(l);
  const receipts = new ReceiptStore(root);
  const releases = new ReleaseStore(root);
  const executorOn = () =>
    new TaskExecutor({
      privacy: new SiloPrivacyLedger(root, undefined),
      transport: hub,
      approvals,
      receipts,
      releases,
      datasets: new StudyDatasets(() => csv),
      log,
      sleep: () => Promise.resolve(),
      clock: hostClock,
    });
  const executor = executorOn();
  let renewals = 0;
  const daemonDeps: DaemonDeps = {
    transport: hub,
    executor,
    reconciler: new ReleaseReconciler({ transport: hub, receipts, releases, log, clock: hostClock }),
    approvals,
    renewIfDue: () => Promise.resolve(++renewals === 1),
    log,
    clock: hostClock,
    hubClock: new HubClock((message) => log({ study: 'agent', message })),
    stop: hub.stopper.signal,
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
  };
  const daemonOptions: DaemonOptions = { pollWaitSeconds: 20, ...options };
  const daemon = new AgentDaemon(daemonDeps, daemonOptions);
  return {
    hub,
    daemon,
    daemonDeps,
    daemonOptions,
    approvals,
    lines,
    sleeps,
    modelHash: blob.hash,
    root,
    receipts,
    executorOn,
  };
}

describe('AgentDaemon', () => {
  it('approves by policy, trains the task, and exits 0 when the study it waits for completes', async () => {
    const study = buildStudy(buildPlan(), { status: 'awaiting_approvals' });
    const s = setup(study, { policy, exitAfterStudy: study.studyId });
    s.hub.taskBatches = [[buildTask(study, s.modelHash)]];

    expect(await s.daemon.run()).toBe(0);
    expect(s.hub.decisions).toEqual([
      { studyId: study.studyId, request: { planHash: study.planHash, decision: 'approve' } },
    ]);
    expect(s.approvals.get(study.studyId)).toMatchObject({ planHash: study.planHash, decidedBy: 'policy' });
    expect(s.hub.uploads).toHaveLength(1);
    const messages = s.lines.map((l) => l.message);
    expect(messages[0]).toBe('certificate renewed');
    expect(messages).toContain('study completed; exiting');
  });

  it('leaves a study outside the policy to a steward, says so once, and never trains for it', async () => {
    const study = buildStudy(buildPlan({ training: { rounds: 50 } }), { status: 'awaiting_approvals' });
    const s = setup(study, { policy });
    s.hub.stopAfterPolls = 3;
    s.hub.taskBatches = [[buildTask(study, s.modelHash)]];

    expect(await s.daemon.run()).toBe(0);
    expect(s.hub.decisions).toEqual([]);
    expect(s.approvals.get(study.studyId)).toBeUndefined();
    const waiting = s.lines.filter((l) => l.message.includes('awaits a steward'));
    expect(waiting).toHaveLength(1);
    expect(waiting[0]!.message).toContain("50 rounds exceed the policy's maximum of 5");
    expect(s.hub.failures.map((f) => f.report.code)).toEqual(['PLAN_NOT_APPROVED']);
    expect(s.hub.uploads).toEqual([]);
  });

  it('says once that a study is paused, with the reason, waits without a task, and says once that it resumed', async () => {
    const study = buildStudy(buildPlan(), { status: 'running' });
    study.paused = { since: '2026-12-06T09:00:00.000Z', reason: 'site migration' };
    const s = setup(study, { policy });
    const resumeAt = 3;
    const poll = s.hub.pollTasks.bind(s.hub);
    s.hub.pollTasks = async () => {
      const tasks = await poll();
      if (s.hub.polls === resumeAt) study.paused = null;
      return tasks;
    };
    s.hub.stopAfterPolls = 5;

    expect(await s.daemon.run()).toBe(0);
    const said = s.lines.map((l) => l.message).filter((m) => /PAUSED|resumed by the hub/.test(m));
    expect(said).toEqual([
      "PAUSED by the hub's administrator (site migration): no new round opens until it is resumed; waiting",
      'resumed by the hub: carrying on',
    ]);
    expect(s.hub.uploads).toEqual([]);
  });

  it('exits 1 after the study ends when this silo failed it (its data file does not fit the schema)', async () => {
    const study = buildStudy(buildPlan(), { status: 'running' });
    const s = setup(study, { policy, exitAfterStudy: study.studyId }, 'a,b\n1,2\n3,4\n');
    s.approvals.record(study.studyId, {
      planHash: study.planHash,
      planVersion: 1,
      decision: 'approve',
      decidedAt: new Date().toISOString(),
      decidedBy: 'steward',
    });
    s.hub.taskBatches = [[buildTask(study, s.modelHash)]];
    const original = s.hub.reportFailure.bind(s.hub);
    s.hub.reportFailure = async (id, report) => {
      await original(id, report);
      study.status = 'failed';
    };
    expect(await s.daemon.run()).toBe(1);
    expect(s.hub.failures[0]!.report.code).toBe('DATA_SCHEMA_MISMATCH');
  });

  it('retries an unreachable hub with backoff, then carries on', async () => {
    const study = buildStudy(buildPlan(), { status: 'completed' });
    const s = setup(study);
    s.hub.stopAfterPolls = 1;
    const down = () => new AgentError(AgentErrorCode.HUB_UNREACHABLE, 'Cannot reach the hub (ECONNREFUSED).');
    s.hub.failNext.listStudies = [down(), down(), down()];
    expect(await s.daemon.run()).toBe(0);
    expect(s.sleeps).toEqual([1000, 2000, 4000]);
    expect(s.lines.filter((l) => l.message.includes('retrying in'))).toHaveLength(3);
    expect(s.hub.polls).toBe(1);
  });

  it('at start, before any task, sends again the update the hub accepted as the agent died, retrying an unreachable hub with backoff', async () => {
    const study = buildStudy(buildPlan(), { status: 'running' });
    const s = setup(study, { exitAfterStudy: study.studyId });
    s.approvals.record(study.studyId, {
      planHash: study.planHash,
      planVersion: 1,
      decision: 'approve',
      decidedAt: new Date().toISOString(),
      decidedBy: 'steward',
    });
    // The first life: the hub accepts the update, the agent is killed before it reads the receipt; the round and
    // the study then end without the hub offering that task again.
    s.hub.failAfterAccepting.push(new Error('agent killed while the hub answered'));
    await expect(s.executorOn().execute(buildTask(study, s.modelHash), study)).rejects.toThrow('agent killed');
    const accepted = s.hub.uploads[0]!.frame;
    study.status = 'completed';
    s.hub.closedRounds.add(1);
    s.hub.failNext.uploadUpdate = [
      new AgentError(AgentErrorCode.HUB_UNREACHABLE, 'Cannot reach the hub (ECONNREFUSED).'),
    ];

    // The restarted agent.
    expect(await s.daemon.run()).toBe(0);
    expect(s.sleeps).toEqual([1000]);
    expect(s.hub.received).toHaveLength(2);
    expect(Buffer.from(s.hub.received[1]!.frame).equals(Buffer.from(accepted))).toBe(true);
    expect(s.receipts.has(study.studyId, 1, 1)).toBe(true);
    expect(s.hub.uploads).toHaveLength(1);
    expect(s.hub.polls).toBe(0);
    expect(s.hub.downloads).toBe(1); // the first life's only: nothing trained again
  });

  it("asks the hub about a study's unsettled release before that study's next task", async () => {
    const study = buildStudy(buildPlan(), { status: 'running' });
    const s = setup(study);
    s.approvals.record(study.studyId, {
      planHash: study.planHash,
      planVersion: 1,
      decision: 'approve',
      decidedAt: new Date().toISOString(),
      decidedBy: 'steward',
    });
    // Round 1 went out and the hub's answer settled nothing (a refusal without a code).
    s.hub.failNext.uploadUpdate = [new AgentError(AgentErrorCode.HUB_REFUSED, 'The hub refused: busy', 409)];
    expect((await s.executorOn().execute(buildTask(study, s.modelHash), study)).kind).toBe('refused');
    // The start pass runs before the hub answers otherwise; the round-2 task comes after it does.
    s.hub.failNext.uploadUpdate = [new AgentError(AgentErrorCode.HUB_REFUSED, 'The hub refused: busy', 409)];
    s.hub.taskBatches = [[buildTask(study, s.modelHash, { round: 2 })]];
    s.hub.stopAfterPolls = 2;
    expect(await s.daemon.run()).toBe(0);
    // Refused again at start (the pass said so), then accepted before the round-2 task was trained.
    expect(s.hub.failNext.uploadUpdate).toEqual([]);
    expect(s.hub.uploads.map((u) => decodeUpdateFrame(u.frame).header.round)).toEqual([1, 2]);
    const said = s.lines.map((l) => `${l.round ?? '-'} ${l.message}`);
    const unsettled = said.findIndex((m) => m.startsWith('1 the update sent again as attempt 1 stays unsettled'));
    const held = said.findIndex((m) => m.startsWith('1 the hub holds the update sent as attempt 1'));
    const trained = said.findIndex((m) => m.startsWith('2 trained'));
    expect(unsettled).toBeGreaterThanOrEqual(0);
    expect(held).toBeGreaterThan(unsettled);
    expect(trained).toBeGreaterThan(held);
    expect(s.receipts.has(study.studyId, 1, 1)).toBe(true);
    expect(s.receipts.has(study.studyId, 2, 1)).toBe(true);
  });

  it('stops with exit code 1 when the hub refuses its certificate', async () => {
    const s = setup(buildStudy(buildPlan()));
    s.hub.failNext.listStudies = [
      new AgentError(AgentErrorCode.IDENTITY_REFUSED, 'The hub no longer accepts this agent: revoked.', 401),
    ];
    expect(await s.daemon.run()).toBe(1);
    expect(s.lines.at(-1)!.message).toMatch(/^STOPPING: .*revoked.*Re-enroll/);
    expect(s.hub.polls).toBe(0);
  });

  it('waits with backoff while the silo is suspended, says why once (never "re-enroll"), and carries on once resumed', async () => {
    const study = buildStudy(buildPlan(), { status: 'completed' });
    const s = setup(study);
    s.hub.stopAfterPolls = 1;
    const suspended = (what: string) =>
      new AgentError(
        AgentErrorCode.IDENTITY_REFUSED,
        `The hub no longer accepts this agent (${what}): This silo is suspended: audit of the data export.`,
        403,
        HubErrorCode.SILO_SUSPENDED,
      );
    // One suspension refused the study list twice; a second one, after the list was answered, refused the poll (a
    // renewal or an upload is refused the same way).
    s.hub.failNext.listStudies = [suspended('the study list'), suspended('the study list')];
    s.hub.failNext.pollTasks = [suspended('the task poll')];
    expect(await s.daemon.run()).toBe(0);
    expect(s.sleeps).toEqual([1000, 2000, 4000]);
    const messages = s.lines.map((l) => l.message);
    const advice = messages.filter((m) => m.startsWith('SUSPENDED'));
    // Said once per suspension, not at every retry.
    expect(advice).toHaveLength(2);
    expect(advice[0]).toBe(suspensionAdvice('This silo is suspended: audit of the data export.'));
    expect(advice[0]).toMatch(/reason given: audit of the data export\)/);
    expect(advice[0]).toMatch(/waiting to be resumed/);
    expect(advice[0]).toMatch(/do not re-enroll/);
    expect(messages.some((m) => m.startsWith('STOPPING'))).toBe(false);
    expect(messages.filter((m) => m.includes('resumed): carrying on'))).toHaveLength(2);
    expect(s.hub.polls).toBe(2); // the refused poll, then the answered one
  });

  it('names the task on every call while it runs, and heartbeats the hub at the poll wait', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const study = buildStudy(buildPlan(), { status: 'running' });
      const s = setup(study, { exitAfterStudy: study.studyId, pollWaitSeconds: 2 });
      s.approvals.record(study.studyId, {
        planHash: study.planHash,
        planVersion: study.planVersion,
        decision: 'approve',
        decidedAt: new Date().toISOString(),
        decidedBy: 'steward',
      });
      const task = buildTask(study, s.modelHash);
      s.hub.taskBatches = [[task]];
      const seen: (string | undefined)[] = [];
      const upload = s.hub.uploadUpdate.bind(s.hub);
      s.hub.uploadUpdate = async (studyId, round, frame) => {
        seen.push(agentHeaders()[AGENT_TASK_HEADER]);
        // The task runs: two poll waits pass, each with its heartbeat.
        vi.advanceTimersByTime(4_000);
        return upload(studyId, round, frame);
      };
      let beats = 0;
      const daemon = new AgentDaemon(
        { ...s.daemonDeps, heartbeat: () => Promise.resolve(void beats++) },
        s.daemonOptions,
      );
      expect(await daemon.run()).toBe(0);
      expect(seen).toEqual([`train ${study.studyId} ${task.round}`]);
      expect(beats).toBe(2);
      expect(agentHeaders()[AGENT_TASK_HEADER]).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });

  it('does not spin when the hub keeps offering a task this agent has settled', async () => {
    const study = buildStudy(buildPlan());
    const s = setup(study);
    const settled = buildTask(study, s.modelHash);
    // The update was accepted before a restart: the receipt is on file, the hub has not closed the round yet.
    new ReceiptStore(s.root).save({
      studyId: study.studyId,
      siloId: s.hub.siloId,
      round: settled.round,
      attempt: settled.attempt,
      updateSha256: 'a'.repeat(64),
      receivedAt: new Date().toISOString(),
    });
    s.hub.taskBatches = [[settled], [settled]];
    s.hub.stopAfterPolls = 2;
    expect(await s.daemon.run()).toBe(0);
    expect(s.sleeps).toEqual([20_000]);
    expect(s.hub.downloads).toBe(0);
  });

  it.each([
    { label: '90 s ahead of', skewMs: 90_000, said: /^WARNING: this host's clock is 90 s ahead of the hub's;/ },
    {
      label: '3 h ahead of',
      skewMs: 3 * 3_600_000,
      said: /^WARNING: this host's clock is 3 h 0 min \(10800 s\) ahead/,
    },
    {
      label: '3 h behind',
      skewMs: -3 * 3_600_000,
      said: /^WARNING: this host's clock is 3 h 0 min \(10800 s\) behind/,
    },
  ])(
    "runs a task with 60 s left when this host's clock is $label the hub's, and warns once",
    async ({ skewMs, said }) => {
      const study = buildStudy(buildPlan());
      const s = setup(study, { policy }, readHeartDisease(), skewMs);
      const task = buildTask(study, s.modelHash, {
        deadlineAt: new Date(Date.now() + 60_000).toISOString(),
        deadlineInMs: 60_000,
      });
      // The hub offers the task again on the next poll (it is settled by then): two sightings, one warning.
      s.hub.taskBatches = [[task], [task]];
      s.hub.stopAfterPolls = 3;
      expect(await s.daemon.run()).toBe(0);
      expect(s.hub.uploads).toHaveLength(1);
      const warnings = s.lines.filter((l) => l.message.startsWith('WARNING'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.message).toMatch(said);
      expect(warnings[0]!.message).toContain("deadlines are judged by the hub's clock");
    },
  );

  it('says nothing of the clock when this host and the hub agree within 30 s', async () => {
    const study = buildStudy(buildPlan());
    const s = setup(study, { policy }, readHeartDisease(), 20_000);
    s.hub.taskBatches = [[buildTask(study, s.modelHash)]];
    s.hub.stopAfterPolls = 2;
    expect(await s.daemon.run()).toBe(0);
    expect(s.hub.uploads).toHaveLength(1);
    expect(s.lines.some((l) => l.message.includes('clock'))).toBe(false);
  });
});
