import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HEART_DISEASE_COLUMNS, initialParameters, scoreHistograms, selectBackend } from '@tessera/ml';
import { SeededRandomSource, privacyMechanismOf, privacySpendOf } from '@tessera/dp';
import {
  decodeUpdateFrame,
  float32Bytes,
  sha256Hex,
  tabularSchemaOf,
  type EvaluationPayload,
  type EvaluationReport,
  type FailureReport,
  type SiloStudy,
  type SiloTask,
  type StudyPlan,
  type UpdateHeader,
} from '@tessera/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { AgentError, AgentErrorCode } from '../agent.error';
import { SiloPrivacyLedger, type PrivacyCap } from '../privacy/silo-privacy-ledger';
import { ApprovalStore } from '../state/approval-store';
import { ReceiptStore } from '../state/receipt-store';
import { ReleaseStore } from '../state/release-store';
import { HubUnavailableError } from '../hub/study-transport';
import { buildPlan, buildStudy, buildTask, FakeHub, modelBlob, readHeartDisease } from '../testing/study.test-util';
import { anyNumber, objectWith, textContaining } from '../testing/matchers.test-util';
import { modelSpecOf } from '../training/plan-mapping.util';
import { StudyDatasets } from '../training/study-datasets';
import { MAX_DELIVERY_ATTEMPTS, MIN_DELIVERY_ATTEMPTS } from './hub-delivery';
import { TaskExecutor, type StepLine, type TaskOutcome } from './task-executor';

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
  csv: string;
  sleeps: number[];
  /** A new executor on the same state directory and hub: the agent after a restart. */
  restart: () => TaskExecutor;
}

interface SetupOptions {
  plan?: StudyPlan;
  approve?: boolean;
  csv?: string;
  cap?: PrivacyCap;
  /** This host's clock runs this many ms ahead of the hub's (negative: behind), and advances with every wait. */
  skewMs?: number;
}

function setup(options: SetupOptions = {}): Setup {
  const slept = { ms: 0 };
  const hostClock = () => new Date(Date.now() + (options.skewMs ?? 0) + slept.ms);
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
  const sleeps: number[] = [];
  const csv = options.csv ?? readHeartDisease();
  const executorOn = () =>
    new TaskExecutor({
      privacy: new SiloPrivacyLedger(root, options.cap),
      transport: hub,
      approvals,
      receipts,
      releases: new ReleaseStore(root),
      datasets: new StudyDatasets(() => {
        reads.count++;
        return csv;
      }),
      log: (l) => lines.push(l),
      sleep: (ms) => {
        sleeps.push(ms);
        slept.ms += ms;
        return Promise.resolve();
      },
      ...(options.skewMs === undefined ? {} : { clock: hostClock }),
      // Reproducible evaluation noise in tests; production uses the CSPRNG.
      random: new SeededRandomSource(`executor-test-${root}`),
    });
  return {
    hub,
    study,
    executor: executorOn(),
    approvals,
    receipts,
    lines,
    modelHash: blob.hash,
    parameters,
    reads,
    root,
    csv,
    sleeps,
    restart: executorOn,
  };
}

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

/** The training records the plan's split leaves this silo (Cleveland under the plan's keyed hash). */
function trainingRecords(s: Setup): number {
  const prepared = new StudyDatasets(() => s.csv).forStudy(
    s.study.studyId,
    s.study.planHash,
    tabularSchemaOf(s.study.plan),
  );
  if (!prepared.ok) throw new Error(prepared.problem.message);
  return prepared.data.train.n;
}

/** The payload bytes of a frame (everything after the header). */
function payloadBytes(frame: Uint8Array): Buffer {
  const headerLength = Buffer.from(frame).readUInt32LE(4);
  return Buffer.from(frame.subarray(8 + headerLength));
}

function headerOf(outcome: TaskOutcome): UpdateHeader {
  if (outcome.kind !== 'uploaded') throw new Error(`expected an upload, got ${JSON.stringify(outcome)}`);
  return outcome.header;
}

function reportOf(outcome: TaskOutcome): EvaluationReport {
  if (outcome.kind !== 'evaluated') throw new Error(`expected an evaluation, got ${JSON.stringify(outcome)}`);
  return outcome.report;
}

describe('TaskExecutor', () => {
  it('trains on the train split and uploads a frame that decodes with the right hash, length and released count', async () => {
    const s = setup(); // no DP: the plan releases the record count and exact metrics every round
    const task = buildTask(s.study, s.modelHash, { round: 2, attempt: 1 });
    const header = headerOf(await s.executor.execute(task, s.study));

    expect(s.hub.uploads).toHaveLength(1);
    const { header: sent, payload } = decodeUpdateFrame(s.hub.uploads[0]!.frame);
    expect(sent).toEqual(header);
    expect(header).toMatchObject({
      studyId: s.study.studyId,
      round: 2,
      attempt: 1,
      planHash: s.study.planHash,
      baseModelHash: s.modelHash,
      numExamples: trainingRecords(s),
      length: 14,
      privacy: null,
    });
    expect(header.payloadSha256).toBe(sha256Hex(float32Bytes(payload)));
    expect(header.l2Norm).toBeCloseTo(Math.hypot(...payload), 5);
    expect(header.l2Norm).toBeGreaterThan(0);
    // Training loss never leaves the silo.
    expect(Object.keys(header)).not.toContain('trainLoss');
    expect(header.evaluation).toMatchObject({ kind: 'exact' });
    const evaluation = header.evaluation as Extract<EvaluationPayload, { kind: 'exact' }>;
    expect(evaluation.n).toBeGreaterThan(0);
    expect(evaluation.positives).toBeGreaterThan(0);
    expect(evaluation.auc).not.toBeNull();

    // The receipt is stored where the brief says, and the task is not trained again.
    const receiptFile = join(s.receipts.root, s.study.studyId, '2-1.json');
    expect(JSON.parse(readFileSync(receiptFile, 'utf8'))).toMatchObject({
      round: 2,
      updateSha256: sha256Hex(s.hub.uploads[0]!.frame),
    });
    expect((await s.executor.execute(task, s.study)).kind).toBe('skipped');
    expect(s.hub.uploads).toHaveLength(1);
    expect(s.lines.map((l) => l.message).join('\n')).toMatch(
      /downloaded and verified[\s\S]*evaluated[\s\S]*trained[\s\S]*persisted[\s\S]*accepted/,
    );
  });

  it('prepares the data once per study, however many rounds', async () => {
    const s = setup();
    await s.executor.execute(buildTask(s.study, s.modelHash, { round: 1 }), s.study);
    await s.executor.execute(buildTask(s.study, s.modelHash, { round: 2 }), s.study);
    expect(s.hub.uploads).toHaveLength(2);
    expect(s.reads.count).toBe(1);
  });

  it('only evaluates for an evaluate task and reports exact metrics when the plan releases them', async () => {
    const s = setup();
    const report = reportOf(
      await s.executor.execute(buildTask(s.study, s.modelHash, { kind: 'evaluate', round: 3 }), s.study),
    );
    expect(s.hub.uploads).toHaveLength(0);
    expect(s.hub.evaluations).toEqual([{ studyId: s.study.studyId, report }]);
    expect(report).toMatchObject({ round: 3, modelHash: s.modelHash, planHash: s.study.planHash, privacy: null });
    expect(report.evaluation).toMatchObject({ kind: 'exact', n: anyNumber() });
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

  it('trains a DP-SGD plan with its own σ and reports, and charges, the exact spend of each round', async () => {
    const s = setup({ plan: buildPlan({ privacy: dpSgd() }) });
    const m = privacyMechanismOf(s.study.plan)!;
    const first = headerOf(await s.executor.execute(buildTask(s.study, s.modelHash, { round: 1 }), s.study));
    expect(first.privacy).toEqual(privacySpendOf(m, 1, 0));
    const second = headerOf(await s.executor.execute(buildTask(s.study, s.modelHash, { round: 2 }), s.study));
    expect(second.privacy).toEqual(privacySpendOf(m, 2, 0));
    const ledger = new SiloPrivacyLedger(s.root, undefined).report();
    expect(ledger.studies).toEqual([
      objectWith({
        studyId: s.study.studyId,
        rounds: 2,
        epsilon: privacySpendOf(m, 2, 0).epsilonCumulative,
      }),
    ]);
  });

  it('sends nothing un-noised under the default DP release: no record count, no loss, no evaluation', async () => {
    const s = setup({ plan: buildPlan({ privacy: dpSgd() }) });
    expect(s.study.plan.release).toEqual({
      evaluation: { mode: 'noisy', rounds: 'final', scoreBins: 4 },
      trainingExamples: 'none',
    });
    await s.executor.execute(buildTask(s.study, s.modelHash), s.study);
    const { header } = decodeUpdateFrame(s.hub.uploads[0]!.frame);
    expect(header.numExamples).toBeNull();
    expect(header.evaluation).toBeNull();
    expect(Object.keys(header).sort()).toEqual(
      [
        'attempt',
        'baseModelHash',
        'evaluation',
        'l2Norm',
        'length',
        'numExamples',
        'payloadSha256',
        'planHash',
        'privacy',
        'round',
        'studyId',
      ].sort(),
    );
  });

  it('releases a noisy evaluation of the base model every round when the plan says so, and charges it', async () => {
    const plan = buildPlan({
      privacy: dpSgd(),
      release: { evaluation: { mode: 'noisy', rounds: 'every', scoreBins: 4 }, trainingExamples: 'none' },
    });
    const s = setup({ plan });
    const m = privacyMechanismOf(plan)!;
    const header = headerOf(await s.executor.execute(buildTask(s.study, s.modelHash), s.study));
    expect(header.evaluation).toMatchObject({ kind: 'noisy-histogram', noiseStddev: m.evaluation!.noiseStddev });
    const noisy = header.evaluation as Extract<EvaluationPayload, { kind: 'noisy-histogram' }>;
    expect(noisy.negatives).toHaveLength(4);
    expect([...noisy.negatives, ...noisy.positives].every(Number.isInteger)).toBe(true);
    expect(header.privacy).toEqual(privacySpendOf(m, 1, 1, { trainingRounds: 1, evaluationReleases: 1 }));
    expect(new SiloPrivacyLedger(s.root, undefined).entries().map((e) => e.kind)).toEqual(['training', 'evaluation']);
  });

  it('reports noisy evaluation counts that are integers and differ from the exact ones, and charges them once', async () => {
    const s = setup({ plan: buildPlan({ privacy: dpSgd() }) }); // noisy evaluation of the final model
    const m = privacyMechanismOf(s.study.plan)!;
    const task = buildTask(s.study, s.modelHash, { kind: 'evaluate', round: 3 });
    const report = reportOf(await s.executor.execute(task, s.study));
    expect(report.evaluation).toMatchObject({ kind: 'noisy-histogram', noiseStddev: m.evaluation!.noiseStddev });
    const noisy = report.evaluation as Extract<EvaluationPayload, { kind: 'noisy-histogram' }>;
    expect([...noisy.negatives, ...noisy.positives].every(Number.isInteger)).toBe(true);

    const prepared = new StudyDatasets(() => s.csv).forStudy(
      s.study.studyId,
      s.study.planHash,
      tabularSchemaOf(s.study.plan),
    );
    if (!prepared.ok) throw new Error(prepared.problem.message);
    const exact = await scoreHistograms(
      modelSpecOf(s.study.plan),
      s.parameters,
      prepared.data.test.x,
      prepared.data.test.y,
      4,
    );
    expect([...noisy.negatives, ...noisy.positives]).not.toEqual([...exact.negatives, ...exact.positives]);
    // Noise of stddev σe per count: every count within 8σe of the exact one (fails with probability < 1e-14).
    const bound = 8 * m.evaluation!.noiseStddev;
    noisy.negatives.forEach((c, b) => expect(Math.abs(c - exact.negatives[b]!)).toBeLessThan(bound));
    noisy.positives.forEach((c, b) => expect(Math.abs(c - exact.positives[b]!)).toBeLessThan(bound));
    expect(report.privacy).toEqual(privacySpendOf(m, 0, 1, { trainingRounds: 0, evaluationReleases: 1 }));

    // Attempt 2 of the same evaluation: the same numbers again, no new charge.
    const again = reportOf(await s.executor.execute({ ...task, attempt: 2 }, s.study));
    expect(again).toEqual({ ...report, attempt: 2 });
    expect(new SiloPrivacyLedger(s.root, undefined).counts(s.study.studyId)).toEqual({
      trainingRounds: 0,
      evaluationReleases: 1,
    });
    expect(s.hub.downloads).toBe(1);
  });

  it("sends evaluation null when the plan's release is 'none' (the report only says the task is done)", async () => {
    const plan = buildPlan({
      privacy: {
        mode: 'dp-fedavg',
        unit: 'silo',
        targetEpsilon: 8,
        delta: 1e-5,
        clipNorm: 1,
        noiseMultiplier: 'derive',
      },
    });
    expect(plan.release.evaluation).toEqual({ mode: 'none' });
    const s = setup({ plan });
    const report = reportOf(await s.executor.execute(buildTask(s.study, s.modelHash, { kind: 'evaluate' }), s.study));
    expect(report.evaluation).toBeNull();
    expect(report.privacy).toBeNull();
    expect(s.hub.evaluations[0]!.report.evaluation).toBeNull();
    const header = headerOf(await s.executor.execute(buildTask(s.study, s.modelHash, { round: 1 }), s.study));
    expect(header).toMatchObject({ evaluation: null, numExamples: null });
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
    const s = setup({ plan: buildPlan({ privacy: dpSgd({ delta: 0.01 }) }) });
    const outcome = await s.executor.execute(buildTask(s.study, s.modelHash), s.study);
    expect(outcome).toMatchObject({ kind: 'failed', report: { code: 'PRIVACY_PLAN_UNSAFE' } });
    expect((outcome as { report: FailureReport }).report.message).toContain(`${trainingRecords(s)} training records`);
  });

  describe('one charge, one release', () => {
    it('re-sends identical bytes to a hub that reads each upload and then resets: one charge', async () => {
      const s = setup({ plan: buildPlan({ privacy: dpSgd() }) });
      const reset = () => new AgentError(AgentErrorCode.HUB_UNREACHABLE, 'Cannot reach the hub (ECONNRESET).');
      s.hub.failAfterReading.push(reset(), reset(), reset());
      headerOf(await s.executor.execute(buildTask(s.study, s.modelHash), s.study));
      expect(s.hub.received).toHaveLength(4);
      const first = Buffer.from(s.hub.received[0]!.frame);
      for (const r of s.hub.received) expect(Buffer.from(r.frame).equals(first)).toBe(true);
      expect(s.hub.uploads).toHaveLength(1);
      expect(new SiloPrivacyLedger(s.root, undefined).entries()).toHaveLength(1);
      expect(s.lines.filter((l) => l.message.startsWith('upload failed'))).toHaveLength(3);
    });

    it('after a restart mid-upload, re-sends the persisted bytes: no retraining, no new charge', async () => {
      const s = setup({ plan: buildPlan({ privacy: dpSgd() }) });
      const task = buildTask(s.study, s.modelHash);
      // The process dies while the hub is reading the update: part or all of it may have reached the hub.
      s.hub.failAfterReading.push(new Error('agent killed mid-upload'));
      await expect(s.executor.execute(task, s.study)).rejects.toThrow('agent killed');
      expect(s.hub.uploads).toHaveLength(0);

      const restarted = s.restart();
      expect(restarted.isSettled(task)).toBe(false);
      const header = headerOf(await restarted.execute(task, s.study));
      expect(s.hub.received).toHaveLength(2);
      expect(Buffer.from(s.hub.received[1]!.frame).equals(Buffer.from(s.hub.received[0]!.frame))).toBe(true);
      expect(header.payloadSha256).toBe(decodeUpdateFrame(s.hub.received[0]!.frame).header.payloadSha256);
      expect(s.hub.downloads).toBe(1); // the restarted agent neither downloaded nor trained
      expect(new SiloPrivacyLedger(s.root, undefined).entries()).toHaveLength(1);
      expect(s.lines.some((l) => l.message.includes('no retraining, no new privacy charge'))).toBe(true);
    });

    it('attempt 2 of a round on the same base model re-sends the attempt-1 release under the new attempt', async () => {
      const s = setup({ plan: buildPlan({ privacy: dpSgd() }) });
      const first = headerOf(await s.executor.execute(buildTask(s.study, s.modelHash, { attempt: 1 }), s.study));
      const second = headerOf(await s.executor.execute(buildTask(s.study, s.modelHash, { attempt: 2 }), s.study));
      expect(second).toEqual({ ...first, attempt: 2 });
      expect(s.hub.uploads).toHaveLength(2);
      expect(payloadBytes(s.hub.uploads[1]!.frame).equals(payloadBytes(s.hub.uploads[0]!.frame))).toBe(true);
      expect(s.hub.downloads).toBe(1);
      expect(new SiloPrivacyLedger(s.root, undefined).counts(s.study.studyId)).toEqual({
        trainingRounds: 1,
        evaluationReleases: 0,
      });
    });

    it('charges a fresh training of the same round on another base model as a new release', async () => {
      const s = setup({ plan: buildPlan({ privacy: dpSgd() }) });
      const other = modelBlob(s.parameters.map((v) => v + 0.01));
      s.hub.blobs.set(other.hash, other.bytes);
      await s.executor.execute(buildTask(s.study, s.modelHash, { attempt: 1 }), s.study);
      const fresh = headerOf(await s.executor.execute(buildTask(s.study, other.hash, { attempt: 2 }), s.study));
      expect(fresh.privacy).toMatchObject({ trainingRounds: 2 });
      expect(new SiloPrivacyLedger(s.root, undefined).counts(s.study.studyId).trainingRounds).toBe(2);
    });
  });

  describe('the approved plan binds', () => {
    it('refuses a 4th training task of a 3-round DP plan with PLAN_LIMIT_REACHED, charging nothing', async () => {
      const s = setup({ plan: buildPlan({ privacy: dpSgd(), training: { rounds: 3 } }) });
      for (const round of [1, 2, 3]) {
        expect((await s.executor.execute(buildTask(s.study, s.modelHash, { round }), s.study)).kind).toBe('uploaded');
      }
      const ledger = new SiloPrivacyLedger(s.root, undefined);
      const before = ledger.entries();
      const downloads = s.hub.downloads;

      const outcome = await s.executor.execute(buildTask(s.study, s.modelHash, { round: 4 }), s.study);
      expect(outcome).toMatchObject({ kind: 'failed', report: { code: 'PLAN_LIMIT_REACHED', round: 4 } });
      expect(s.hub.failures).toEqual([
        {
          studyId: s.study.studyId,
          report: objectWith({
            code: 'PLAN_LIMIT_REACHED',
            message: textContaining('the approved plan has 3 training rounds'),
          }),
        },
      ]);
      expect(ledger.entries()).toEqual(before);
      expect(s.hub.downloads).toBe(downloads);
      expect(s.hub.uploads).toHaveLength(3);
    }, 60_000); // three DP-SGD rounds

    it('refuses a 4th training round of a 3-round plan without DP too (counted from the releases)', async () => {
      const s = setup({ plan: buildPlan({ training: { rounds: 3 } }) });
      for (const round of [1, 2, 3]) await s.executor.execute(buildTask(s.study, s.modelHash, { round }), s.study);
      const outcome = await s.executor.execute(buildTask(s.study, s.modelHash, { round: 4 }), s.study);
      expect(outcome).toMatchObject({ kind: 'failed', report: { code: 'PLAN_LIMIT_REACHED' } });
      expect(s.hub.uploads).toHaveLength(3);
    });
  });

  describe('delivery', () => {
    it('retries while the hub is unreachable or answers 503 (waiting as asked), and gives up on a refusal (409)', async () => {
      const s = setup();
      const unreachable = () => new AgentError(AgentErrorCode.HUB_UNREACHABLE, 'Cannot reach the hub (ECONNRESET).');
      s.hub.failNext.uploadUpdate = [
        unreachable(),
        new HubUnavailableError('The hub cannot take the update right now (HTTP 503)', 503, 20_000),
      ];
      expect((await s.executor.execute(buildTask(s.study, s.modelHash, { round: 1 }), s.study)).kind).toBe('uploaded');
      expect(s.lines.filter((l) => l.message.startsWith('upload failed'))).toHaveLength(2);
      expect(s.sleeps[1]).toBe(20_000);

      s.hub.failNext.uploadUpdate = [
        new AgentError(AgentErrorCode.HUB_REFUSED, 'The hub refused the update: late', 409),
      ];
      const late = await s.executor.execute(buildTask(s.study, s.modelHash, { round: 2 }), s.study);
      expect(late).toEqual({ kind: 'refused', reason: 'the hub refused the update' });
      expect(s.hub.received).toHaveLength(1); // a refusal is final: not sent again
    });
  });

  describe("deadlines by the hub's clock", () => {
    const unreachable = () => new AgentError(AgentErrorCode.HUB_UNREACHABLE, 'Cannot reach the hub (ECONNRESET).');
    /** A task as the hub issues it now by its own (true) clock, with `leftMs` to its deadline. */
    const fromHub = (s: Setup, leftMs: number, overrides: Partial<SiloTask> = {}): SiloTask =>
      buildTask(s.study, s.modelHash, {
        deadlineAt: new Date(Date.now() + leftMs).toISOString(),
        deadlineInMs: leftMs,
        ...overrides,
      });
    const skews = [
      { label: '90 s ahead', skewMs: 90_000 },
      { label: '3 h ahead', skewMs: 3 * 3_600_000 },
      { label: '90 s behind', skewMs: -90_000 },
      { label: '3 h behind', skewMs: -3 * 3_600_000 },
    ];

    it.each(skews)('carries out a task with 60 s left when this host runs $label', async ({ skewMs }) => {
      const s = setup({ skewMs });
      const task = fromHub(s, 60_000);
      expect(s.executor.isSettled(task)).toBe(false);
      expect((await s.executor.execute(task, s.study)).kind).toBe('uploaded');
      expect(s.lines.some((l) => l.message.startsWith('skipped'))).toBe(false);
    });

    it("keeps retrying an upload until the hub's deadline although this host, 3 h ahead, thinks it passed", async () => {
      const s = setup({ skewMs: 3 * 3_600_000 });
      s.hub.failNext.uploadUpdate = Array.from({ length: MIN_DELIVERY_ATTEMPTS + 2 }, unreachable);
      expect((await s.executor.execute(fromHub(s, 3_600_000), s.study)).kind).toBe('uploaded');
      expect(s.lines.filter((l) => l.message.startsWith('upload failed'))).toHaveLength(MIN_DELIVERY_ATTEMPTS + 2);
    });

    it("stops retrying at the hub's deadline although this host, 3 h behind, thinks hours are left", async () => {
      const s = setup({ skewMs: -3 * 3_600_000 });
      s.hub.failNext.uploadUpdate = Array.from({ length: MAX_DELIVERY_ATTEMPTS }, unreachable);
      // 40 s left: the waits 1+2+4+8+16 s use 31 s, so the 6th failure (next wait 30 s) ends the retries.
      await expect(s.executor.execute(fromHub(s, 40_000), s.study)).rejects.toMatchObject({
        code: AgentErrorCode.HUB_UNREACHABLE,
      });
      expect(s.lines.filter((l) => l.message.startsWith('upload failed'))).toHaveLength(MIN_DELIVERY_ATTEMPTS - 1);
      expect(s.hub.uploads).toHaveLength(0);
    });

    it("skips, and says so, a task whose deadline passed by the hub's clock, though this host (3 h behind) sees hours left", async () => {
      const s = setup({ skewMs: -3 * 3_600_000 });
      // The hub still offers the round (it closes it a moment later) but has 0 ms left.
      const task = fromHub(s, 0, { deadlineAt: new Date(Date.now() - 2_000).toISOString() });
      const outcome = await s.executor.execute(task, s.study);
      expect(outcome).toMatchObject({ kind: 'skipped' });
      expect(s.lines.at(-1)?.message).toMatch(
        /^skipped: the deadline of round 1 \(attempt 1\) passed \d+ s ago by the hub's clock/,
      );
      expect(s.hub.downloads).toBe(0);
      expect(s.hub.received).toHaveLength(0);
      expect(s.executor.isSettled(task)).toBe(true);
    });

    it('judges the deadline from when the task was received, not from when its turn came', async () => {
      const s = setup({ skewMs: 3 * 3_600_000 });
      const task = fromHub(s, 60_000);
      // Received 61 s ago by this host's clock (an earlier task of the same poll took that long): 1 s past.
      const receivedAt = new Date(Date.now() + 3 * 3_600_000 - 61_000);
      expect(await s.executor.execute(task, s.study, receivedAt)).toMatchObject({ kind: 'skipped' });
      expect(s.hub.downloads).toBe(0);

      const fresh = fromHub(s, 60_000, { round: 2 });
      const justNow = new Date(Date.now() + 3 * 3_600_000 - 59_000);
      expect((await s.executor.execute(fresh, s.study, justNow)).kind).toBe('uploaded');
    });
  });
});
