import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initialParameters, selectBackend } from '@tessera/ml';
import { decodeUpdateFrame, sha256Hex, type EvaluationReport, type SiloStudy, type StudyPlan } from '@tessera/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { AgentError, AgentErrorCode } from '../agent.error';
import { HubUnavailableError } from '../hub/study-transport';
import { SiloPrivacyLedger } from '../privacy/silo-privacy-ledger';
import { ApprovalStore } from '../state/approval-store';
import { ReceiptStore } from '../state/receipt-store';
import { ReleaseStore } from '../state/release-store';
import { buildPlan, buildStudy, buildTask, FakeHub, modelBlob, readHeartDisease } from '../testing/study.test-util';
import { modelSpecOf } from '../training/plan-mapping.util';
import { StudyDatasets } from '../training/study-datasets';
import { ReleaseReconciler } from './release-reconciler';
import { TaskExecutor, type StepLine } from './task-executor';

beforeAll(async () => {
  await selectBackend('cpu');
});

const dpSgd = {
  mode: 'dp-sgd',
  unit: 'record',
  targetEpsilon: 4,
  delta: 1e-5,
  clipNorm: 1,
  noiseMultiplier: 'derive',
  samplingRate: 0.1,
} as const;

/** A silo's state directory and a hub; `executor()` and `reconciler()` are the agent in one life or the next. */
function setup(plan: StudyPlan = buildPlan({ privacy: dpSgd })) {
  const root = mkdtempSync(join(tmpdir(), 'tessera-reconciler-'));
  const hub = new FakeHub();
  const study: SiloStudy = buildStudy(plan);
  hub.studies = [study];
  const blob = modelBlob(initialParameters(modelSpecOf(plan), plan.training.initSeed));
  hub.blobs.set(blob.hash, blob.bytes);
  const approvals = new ApprovalStore(root);
  approvals.record(study.studyId, {
    planHash: study.planHash,
    planVersion: study.planVersion,
    decision: 'approve',
    decidedAt: new Date().toISOString(),
    decidedBy: 'steward',
  });
  const lines: StepLine[] = [];
  const log = (l: StepLine) => lines.push(l);
  const receipts = new ReceiptStore(root);
  const releases = new ReleaseStore(root);
  const csv = readHeartDisease();
  return {
    root,
    hub,
    study,
    lines,
    receipts,
    releases,
    modelHash: blob.hash,
    executor: () =>
      new TaskExecutor({
        privacy: new SiloPrivacyLedger(root, undefined),
        transport: hub,
        approvals,
        receipts: new ReceiptStore(root),
        releases: new ReleaseStore(root),
        datasets: new StudyDatasets(() => csv),
        log,
        sleep: () => Promise.resolve(),
      }),
    reconciler: () =>
      new ReleaseReconciler({
        transport: hub,
        receipts: new ReceiptStore(root),
        releases: new ReleaseStore(root),
        log,
      }),
  };
}

type Setup = ReturnType<typeof setup>;

/** The first life: the hub accepts the round's update and the agent dies before it reads the receipt. */
async function killedAfterAcceptance(s: Setup, round = 1): Promise<Uint8Array> {
  s.hub.failAfterAccepting.push(new Error('agent killed while the hub answered'));
  await expect(s.executor().execute(buildTask(s.study, s.modelHash, { round }), s.study)).rejects.toThrow(
    'agent killed',
  );
  return s.hub.uploads.at(-1)!.frame;
}

function receiptFiles(s: Setup): string[] {
  const dir = join(s.receipts.root, s.study.studyId);
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

function messages(s: Setup): string {
  return s.lines.map((l) => l.message).join('\n');
}

describe('ReleaseReconciler', () => {
  it('sends an update the hub accepted while the agent died again, byte for byte, and stores the receipt the hub answers with', async () => {
    const s = setup();
    const accepted = await killedAfterAcceptance(s);
    expect(receiptFiles(s)).toEqual([]);
    s.hub.closedRounds.add(1); // the round closed meanwhile: the hub has no task for it any more
    const downloads = s.hub.downloads;

    const summary = await s.reconciler().resend(s.study.studyId, 'Heart');
    expect(summary).toEqual({ receipts: 1, settled: 0, unsettled: 0 });
    expect(s.hub.received).toHaveLength(2);
    expect(Buffer.from(s.hub.received[1]!.frame).equals(Buffer.from(accepted))).toBe(true);
    expect(s.hub.uploads).toHaveLength(1); // the hub counted it once
    // Stored like any receipt: the hub's name for exactly the bytes it accepted.
    expect(receiptFiles(s)).toEqual(['1-1.json']);
    expect(s.receipts.forRound(s.study.studyId, 1)).toEqual([
      expect.objectContaining({ round: 1, attempt: 1, updateSha256: sha256Hex(accepted) }),
    ]);
    // Never retrained, never re-noised, never charged again.
    expect(s.hub.downloads).toBe(downloads);
    expect(new SiloPrivacyLedger(s.root, undefined).entries()).toHaveLength(1);
    expect(messages(s)).toMatch(/the hub holds the update sent as attempt 1 .*its receipt for attempt 1/);
    // The task of that round is settled for the executor too.
    expect(s.executor().isSettled(buildTask(s.study, s.modelHash))).toBe(true);
  });

  it('never sends a release that has its receipt', async () => {
    const s = setup(buildPlan());
    expect((await s.executor().execute(buildTask(s.study, s.modelHash), s.study)).kind).toBe('uploaded');
    s.hub.closedRounds.add(1);
    const reconciler = s.reconciler();
    expect(reconciler.unanswered(s.study.studyId)).toEqual([]);
    expect(await reconciler.resend(s.study.studyId)).toEqual({ receipts: 0, settled: 0, unsettled: 0 });
    expect(s.hub.received).toHaveLength(1);
  });

  it('marks an update its round closed without settled: kept on file, logged, and not sent again', async () => {
    const s = setup();
    // The agent dies while the hub reads the update: the hub never accepted it, and then closes the round.
    s.hub.failAfterReading.push(new Error('agent killed mid-upload'));
    await expect(s.executor().execute(buildTask(s.study, s.modelHash), s.study)).rejects.toThrow('agent killed');
    s.hub.closedRounds.add(1);
    const release = s.releases.trainingReleases(s.study.studyId)[0]!;

    expect(await s.reconciler().resend(s.study.studyId, 'Heart')).toEqual({ receipts: 0, settled: 1, unsettled: 0 });
    expect(s.hub.received).toHaveLength(2);
    expect(Buffer.from(s.hub.received[1]!.frame).equals(Buffer.from(release.frame))).toBe(true);
    expect(receiptFiles(s)).toEqual([]);
    expect(s.releases.sendings(release.file, 1)).toEqual([
      {
        attempt: 1,
        settled: expect.objectContaining({ outcome: 'round-closed', hubCode: 'ROUND_CLOSED' }) as unknown,
      },
    ]);
    // The release itself stays, byte for byte.
    expect(Buffer.from(s.releases.trainingReleases(s.study.studyId)[0]!.frame).equals(Buffer.from(release.frame))).toBe(
      true,
    );
    expect(s.lines.at(-1)).toMatchObject({
      study: 'Heart',
      round: 1,
      message: expect.stringContaining('was not accepted: its round closed without it (ROUND_CLOSED)') as unknown,
    });

    // The next start asks nothing again.
    expect(await s.reconciler().resend(s.study.studyId)).toEqual({ receipts: 0, settled: 0, unsettled: 0 });
    expect(s.hub.received).toHaveLength(2);
  });

  it('leaves the release unanswered when the hub cannot be reached, and sends it at the next try', async () => {
    const s = setup();
    const accepted = await killedAfterAcceptance(s);
    s.hub.failNext.uploadUpdate = [
      new HubUnavailableError('The hub cannot take the update right now (HTTP 503)', 503, 5_000),
    ];
    const reconciler = s.reconciler();
    await expect(reconciler.resend(s.study.studyId)).rejects.toMatchObject({ code: AgentErrorCode.HUB_UNREACHABLE });
    expect(reconciler.unanswered(s.study.studyId)).toHaveLength(1);
    expect(receiptFiles(s)).toEqual([]);

    expect(await reconciler.resend(s.study.studyId)).toEqual({ receipts: 1, settled: 0, unsettled: 0 });
    expect(s.receipts.forRound(s.study.studyId, 1)[0]!.updateSha256).toBe(sha256Hex(accepted));
  });

  it('keeps asking about a release whose refusal settles nothing (DUPLICATE_UPDATE while the round is open)', async () => {
    const s = setup();
    await killedAfterAcceptance(s);
    s.hub.failNext.uploadUpdate = [
      new AgentError(
        AgentErrorCode.HUB_REFUSED,
        'The hub refused the update: already reported',
        409,
        'DUPLICATE_UPDATE',
      ),
    ];
    expect(await s.reconciler().resend(s.study.studyId)).toEqual({ receipts: 0, settled: 0, unsettled: 1 });
    expect(messages(s)).toContain('stays unsettled');
    expect(await s.reconciler().resend(s.study.studyId)).toEqual({ receipts: 1, settled: 0, unsettled: 0 });
  });

  it('sends a later attempt as it was re-stamped, when only that sending went unanswered', async () => {
    const s = setup();
    // Attempt 1: accepted with its receipt. The round is retried on the same model; the attempt-2 sending of the
    // same release is accepted and the agent dies before it reads that receipt.
    expect((await s.executor().execute(buildTask(s.study, s.modelHash), s.study)).kind).toBe('uploaded');
    s.hub.failAfterAccepting.push(new Error('agent killed while the hub answered'));
    await expect(s.executor().execute(buildTask(s.study, s.modelHash, { attempt: 2 }), s.study)).rejects.toThrow(
      'agent killed',
    );
    const second = s.hub.uploads[1]!.frame;
    expect(decodeUpdateFrame(second).header.attempt).toBe(2);
    s.hub.closedRounds.add(1);

    const reconciler = s.reconciler();
    expect(reconciler.unanswered(s.study.studyId).map((u) => u.attempt)).toEqual([2]);
    expect(await reconciler.resend(s.study.studyId)).toEqual({ receipts: 1, settled: 0, unsettled: 0 });
    expect(Buffer.from(s.hub.received.at(-1)!.frame).equals(Buffer.from(second))).toBe(true);
    expect(receiptFiles(s)).toEqual(['1-1.json', '1-2.json']);
    expect(new SiloPrivacyLedger(s.root, undefined).entries()).toHaveLength(1);
  });

  describe('evaluation reports (no receipt)', () => {
    const report = (s: Setup): EvaluationReport => ({
      round: 3,
      attempt: 1,
      planHash: s.study.planHash,
      modelHash: s.modelHash,
      evaluation: { kind: 'exact', loss: 0.5, accuracy: 0.75, auc: 0.8, n: 40, positives: 18 },
      privacy: null,
    });

    it('sends a persisted report the hub never acknowledged again, as stored, and then settles it', async () => {
      const s = setup(buildPlan());
      // Persisted before it left; the agent died before the hub answered.
      s.releases.saveEvaluation(s.study.studyId, report(s));
      expect(await s.reconciler().resend(s.study.studyId)).toEqual({ receipts: 0, settled: 1, unsettled: 0 });
      expect(s.hub.evaluations).toEqual([{ studyId: s.study.studyId, report: report(s) }]);
      expect(await s.reconciler().resend(s.study.studyId)).toEqual({ receipts: 0, settled: 0, unsettled: 0 });
      expect(s.hub.evaluations).toHaveLength(1);
    });

    it('settles a report its round closed on, and one the executor delivered is never asked about', async () => {
      const s = setup(buildPlan());
      s.releases.saveEvaluation(s.study.studyId, report(s));
      s.hub.closedRounds.add(3);
      expect(await s.reconciler().resend(s.study.studyId)).toEqual({ receipts: 0, settled: 1, unsettled: 0 });
      expect(messages(s)).toContain('evaluation reports carry no receipt');

      const delivered = await s
        .executor()
        .execute(buildTask(s.study, s.modelHash, { kind: 'evaluate', round: 4 }), s.study);
      expect(delivered.kind).toBe('evaluated');
      expect(s.reconciler().unanswered(s.study.studyId)).toEqual([]);
    });
  });

  describe('the task executor records what a refusal settles', () => {
    it('settles its own update refused ROUND_CLOSED, and leaves one refused without a code to be asked again', async () => {
      const s = setup(buildPlan());
      s.hub.closedRounds.add(1);
      const refused = await s.executor().execute(buildTask(s.study, s.modelHash), s.study);
      expect(refused).toEqual({ kind: 'refused', reason: 'the hub refused the update' });
      expect(messages(s)).toContain('its round closed without it (ROUND_CLOSED)');
      expect(s.reconciler().unanswered(s.study.studyId)).toEqual([]);

      s.hub.failNext.uploadUpdate = [new AgentError(AgentErrorCode.HUB_REFUSED, 'The hub refused: teapot', 418)];
      await s.executor().execute(buildTask(s.study, s.modelHash, { round: 2 }), s.study);
      expect(
        s
          .reconciler()
          .unanswered(s.study.studyId)
          .map((u) => (u.kind === 'update' ? u.release.header.round : null)),
      ).toEqual([2]);
    });
  });
});
