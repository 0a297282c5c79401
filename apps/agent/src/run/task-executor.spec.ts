import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HEART_DISEASE_COLUMNS, initialParameters, selectBackend } from '@tessera/ml';
import {
  decodeUpdateFrame,
  float32Bytes,
  privacyMechanismOf,
  privacySpendOf,
  sha256Hex,
  type FailureReport,
  type SiloStudy,
  type StudyPlan,
  type UpdateHeader,
} from '@tessera/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { AgentError, AgentErrorCode } from '../agent.error';
import { SiloPrivacyLedger, type PrivacyCap } from '../privacy/silo-privacy-ledger';
import { ApprovalStore } from '../state/approval-store';
import { ReceiptStore } from '../state/receipt-store';
import { buildPlan, buildStudy, buildTask, FakeHub, modelBlob, readHeartDisease } from '../testing/study.test-util';
import { modelSpecOf } from '../training/plan-mapping.util';
import { StudyDatasets } from '../training/study-datasets';
import { TaskExecutor, type StepLine } from './task-executor';

beforeAll(async () => {
  await selectBackend('cpu');
});

interface Setup {
  hub: FakeHub;
  study: SiloStudy;
  executor: TaskExecutor;
  approvals: ApprovalStore;
  receipts: ReceiptStore;
  lines: StepLine[];
  modelHash: string;
  parameters: Float32Array;
  reads: { count: number };
  root: string;
}

function setup(options: { plan?: StudyPlan; approve?: boolean; csv?: string; cap?: PrivacyCap } = {}): Setup {
  const root = mkdtempSync(join(tmpdir(), 'tessera-executor-'));
  const hub = new FakeHub();
  const study = buildStudy(options.plan ?? buildPlan());
  hub.studies = [study];
  const parameters = initialParameters(modelSpecOf(study.plan), study.plan.training.initSeed);
  const blob = modelBlob(parameters);
  hub.blobs.set(blob.hash, blob.bytes);
  const approvals = new ApprovalStore(root);
  if (options.approve ?? true) {
    approvals.record(study.studyId, {
      planHash: study.planHash,
      planVersion: study.planVersion,
      decision: 'approve',
      decidedAt: new Date().toISOString(),
      decidedBy: 'steward',
    });
  }
  const receipts = new ReceiptStore(root);
  const lines: StepLine[] = [];
  const reads = { count: 0 };
  const csv = options.csv ?? readHeartDisease();
  const executor = new TaskExecutor({
    privacy: new SiloPrivacyLedger(root, options.cap),
    transport: hub,
    approvals,
    receipts,
    datasets: new StudyDatasets(() => {
      reads.count++;
      return csv;
    }),
    log: (l) => lines.push(l),
    sleep: async () => undefined,
  });
  return { hub, study, executor, approvals, receipts, lines, modelHash: blob.hash, parameters, reads, root };
}

describe('TaskExecutor', () => {
  it('trains on the train split and uploads a frame that decodes with the right hash, length and example count', async () => {
    const s = setup();
    const task = buildTask(s.study, s.modelHash, { round: 2, attempt: 1 });
    const outcome = await s.executor.execute(task, s.study);

    expect(outcome.kind).toBe('uploaded');
    expect(s.hub.uploads).toHaveLength(1);
    const { header, payload } = decodeUpdateFrame(s.hub.uploads[0]!.frame);
    expect(header).toMatchObject({
      studyId: s.study.studyId,
      round: 2,
      attempt: 1,
      planHash: s.study.planHash,
      baseModelHash: s.modelHash,
      numExamples: 199, // Cleveland's training split (FLamby: 199/104)
      length: 14,
      privacy: null,
    });
    expect(header.payloadSha256).toBe(sha256Hex(float32Bytes(payload)));
    expect(header.l2Norm).toBeCloseTo(Math.hypot(...payload), 5);
    expect(header.l2Norm).toBeGreaterThan(0);
    expect(header.trainLoss).toBeGreaterThan(0);
    expect(header.evaluation).toMatchObject({ n: 104 });
    expect(header.evaluation.positives).toBeGreaterThan(0);
    expect(header.evaluation.auc).not.toBeNull();

    // The receipt is stored where the brief says, and the task is not trained again.
    const receiptFile = join(s.receipts.root, s.study.studyId, '2-1.json');
    expect(JSON.parse(readFileSync(receiptFile, 'utf8'))).toMatchObject({
      round: 2,
      updateSha256: header.payloadSha256,
    });
    expect((await s.executor.execute(task, s.study)).kind).toBe('skipped');
    expect(s.hub.uploads).toHaveLength(1);
    expect(s.lines.map((l) => l.message).join('\n')).toMatch(
      /downloaded and verified[\s\S]*evaluated[\s\S]*trained[\s\S]*accepted/,
    );
  });

  it('prepares the data once per study, however many rounds', async () => {
    const s = setup();
    await s.executor.execute(buildTask(s.study, s.modelHash, { round: 1 }), s.study);
    await s.executor.execute(buildTask(s.study, s.modelHash, { round: 2 }), s.study);
    expect(s.hub.uploads).toHaveLength(2);
    expect(s.reads.count).toBe(1);
  });

  it('only evaluates for an evaluate task and reports the metrics', async () => {
    const s = setup();
    const outcome = await s.executor.execute(buildTask(s.study, s.modelHash, { kind: 'evaluate', round: 3 }), s.study);
    expect(outcome.kind).toBe('evaluated');
    expect(s.hub.uploads).toHaveLength(0);
    expect(s.hub.evaluations).toEqual([
      {
        studyId: s.study.studyId,
        report: expect.objectContaining({ round: 3, modelHash: s.modelHash, planHash: s.study.planHash }),
      },
    ]);
    expect(s.hub.evaluations[0]!.report.evaluation.n).toBe(104);
  });

  it('refuses a model whose bytes do not match the task hash: no training, no upload', async () => {
    const s = setup();
    const tampered = Uint8Array.from(s.hub.blobs.get(s.modelHash)!);
    tampered[0]! ^= 1;
    s.hub.blobs.set(s.modelHash, tampered);
    const outcome = await s.executor.execute(buildTask(s.study, s.modelHash), s.study);
    expect(outcome).toMatchObject({ kind: 'failed', report: { code: 'TRAINING_FAILED' } });
    expect(s.hub.failures[0]!.report.message).toMatch(/hashes to .*refused/);
    expect(s.hub.uploads).toHaveLength(0);
  });

  it('reports PLAN_NOT_APPROVED once for a plan this silo has not approved, and never downloads or trains', async () => {
    const s = setup({ approve: false });
    const first = await s.executor.execute(buildTask(s.study, s.modelHash, { round: 1 }), s.study);
    const second = await s.executor.execute(buildTask(s.study, s.modelHash, { round: 2 }), s.study);
    expect(first).toMatchObject({ kind: 'failed', report: { code: 'PLAN_NOT_APPROVED' } });
    expect(second.kind).toBe('skipped');
    expect(s.hub.failures).toHaveLength(1);
    expect(s.hub.downloads).toBe(0);
    expect(s.hub.uploads).toHaveLength(0);
  });

  it("refuses when the local approval covers another hash, even if the hub's task and plan agree", async () => {
    const s = setup({ approve: false });
    s.approvals.record(s.study.studyId, {
      planHash: 'c'.repeat(64),
      planVersion: 1,
      decision: 'approve',
      decidedAt: new Date().toISOString(),
      decidedBy: 'steward',
    });
    const outcome = await s.executor.execute(buildTask(s.study, s.modelHash), s.study);
    expect(outcome).toMatchObject({ kind: 'failed', report: { code: 'PLAN_NOT_APPROVED' } });
    expect(s.hub.downloads).toBe(0);
  });

  it('recomputes the plan hash: a plan altered under an approved hash is refused', async () => {
    const s = setup();
    const altered: SiloStudy = {
      ...s.study,
      plan: { ...s.study.plan, training: { ...s.study.plan.training, rounds: 99 } },
    };
    const outcome = await s.executor.execute(buildTask(s.study, s.modelHash), altered);
    expect(outcome).toMatchObject({ kind: 'failed', report: { code: 'PLAN_NOT_APPROVED' } });
    expect(s.hub.failures[0]!.report.message).toMatch(/hashes to/);
    expect(s.hub.downloads).toBe(0);
  });

  it('reports DATA_SCHEMA_MISMATCH naming the missing column but no data value, and does not retry the study', async () => {
    // The Cleveland file with a header row and without its 'chol' column.
    const cleveland = readHeartDisease()
      .trim()
      .split('\n')
      .map((line) => line.split(','));
    const chol = HEART_DISEASE_COLUMNS.indexOf('chol');
    const without = (row: readonly string[]) => row.filter((_, i) => i !== chol).join(',');
    const csv = [without(HEART_DISEASE_COLUMNS), ...cleveland.map(without)].join('\n');
    const { columns: _headerless, ...schema } = buildPlan().schema;
    const s = setup({ plan: buildPlan({ schema }), csv });

    const first = await s.executor.execute(buildTask(s.study, s.modelHash, { round: 1 }), s.study);
    expect(first).toMatchObject({ kind: 'failed', report: { code: 'DATA_SCHEMA_MISMATCH' } });
    const message = s.hub.failures[0]!.report.message;
    expect(message).toContain("'chol'");
    const values = new Set(cleveland.flat().filter((v) => v.length >= 2));
    expect([...values].filter((v) => message.includes(v))).toEqual([]);
    expect(s.lines.map((l) => l.message).filter((m) => [...values].some((v) => m.includes(v)))).toEqual([]);

    const second = await s.executor.execute(buildTask(s.study, s.modelHash, { round: 2 }), s.study);
    expect(second.kind).toBe('skipped');
    expect(s.hub.failures).toHaveLength(1);
    expect(s.hub.downloads).toBe(0);
    expect(s.executor.failedStudies.has(s.study.studyId)).toBe(true);
  });

  const dpSgd = (overrides: Partial<Extract<StudyPlan['privacy'], { mode: 'dp-sgd' }>> = {}) =>
    ({
      mode: 'dp-sgd',
      unit: 'record',
      targetEpsilon: 4,
      delta: 1e-5,
      clipNorm: 1,
      noiseMultiplier: 'derive',
      samplingRate: 0.1,
      ...overrides,
    }) as const;

  it('trains a DP-SGD plan with its own σ and reports, and records, the exact spend of each round', async () => {
    const s = setup({ plan: buildPlan({ privacy: dpSgd() }) });
    const m = privacyMechanismOf(s.study.plan)!;
    const first = await s.executor.execute(buildTask(s.study, s.modelHash, { round: 1 }), s.study);
    expect(first.kind).toBe('uploaded');
    const header = (first as { header: UpdateHeader }).header;
    expect(header.privacy).toEqual(privacySpendOf(m, 1));
    expect(header.privacy!.epsilonCumulative).toBeLessThan(header.privacy!.epsilonRound * 1.0001);
    const second = await s.executor.execute(buildTask(s.study, s.modelHash, { round: 2 }), s.study);
    expect((second as { header: UpdateHeader }).header.privacy).toEqual(privacySpendOf(m, 2));
    const ledger = new SiloPrivacyLedger(s.root, undefined).report();
    expect(ledger.studies).toEqual([
      expect.objectContaining({ studyId: s.study.studyId, rounds: 2, epsilon: privacySpendOf(m, 2).epsilonCumulative }),
    ]);
  });

  it("refuses a task that would cross the silo's own cap, whatever the hub says, and tells the hub why", async () => {
    const s = setup({ plan: buildPlan({ privacy: dpSgd() }), cap: { epsilon: 0.05, delta: 1e-5 } });
    const outcome = await s.executor.execute(buildTask(s.study, s.modelHash), s.study);
    expect(outcome).toMatchObject({ kind: 'failed', report: { code: 'PRIVACY_CAP_REACHED' } });
    expect((outcome as { report: FailureReport }).report.message).toContain("this silo's privacy cap ε = 0.05");
    expect(s.hub.failures).toHaveLength(1);
    expect(s.hub.downloads).toBe(0);
    expect(s.hub.uploads).toHaveLength(0);
  });

  it('refuses a study without differential privacy when the silo has a cap', async () => {
    const s = setup({ cap: { epsilon: 10, delta: 1e-5 } });
    const outcome = await s.executor.execute(buildTask(s.study, s.modelHash), s.study);
    expect(outcome).toMatchObject({ kind: 'failed', report: { code: 'PRIVACY_CAP_REACHED' } });
    expect((outcome as { report: FailureReport }).report.message).toContain('without differential privacy');
  });

  it('refuses a δ that is not below 1/n for its own records', async () => {
    const s = setup({ plan: buildPlan({ privacy: dpSgd({ delta: 0.01 }) }) }); // Cleveland: 199 training records
    const outcome = await s.executor.execute(buildTask(s.study, s.modelHash), s.study);
    expect(outcome).toMatchObject({ kind: 'failed', report: { code: 'PRIVACY_PLAN_UNSAFE' } });
    expect((outcome as { report: FailureReport }).report.message).toContain('199 training records');
  });

  it('retries the identical upload while the hub is unreachable, and gives up on a refusal (409)', async () => {
    const s = setup();
    const unreachable = () => new AgentError(AgentErrorCode.HUB_UNREACHABLE, 'Cannot reach the hub (ECONNRESET).');
    s.hub.failNext.uploadUpdate = [unreachable(), unreachable()];
    expect((await s.executor.execute(buildTask(s.study, s.modelHash, { round: 1 }), s.study)).kind).toBe('uploaded');
    expect(s.lines.filter((l) => l.message.startsWith('upload failed'))).toHaveLength(2);

    s.hub.failNext.uploadUpdate = [new AgentError(AgentErrorCode.HUB_REFUSED, 'The hub refused the update: late', 409)];
    const late = await s.executor.execute(buildTask(s.study, s.modelHash, { round: 2 }), s.study);
    expect(late).toEqual({ kind: 'refused', reason: 'the hub refused the update' });
  });

  it('skips a task whose deadline has passed without downloading anything', async () => {
    const s = setup();
    const task = buildTask(s.study, s.modelHash, { deadlineAt: new Date(Date.now() - 1000).toISOString() });
    expect(s.executor.isSettled(task)).toBe(true);
    expect((await s.executor.execute(task, s.study)).kind).toBe('skipped');
    expect(s.hub.downloads).toBe(0);
  });
});
