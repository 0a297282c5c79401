import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AgentAuditAction,
  appendRecord,
  buildBundle,
  generateSigningKey,
  publicKeyFingerprint,
  reconcileSiloLog,
  signReceipt,
  type AuditRecord,
} from '@tessera/audit';
import { initialParameters, selectBackend } from '@tessera/ml';
import {
  decodeUpdateFrame,
  encodeUpdateFrame,
  float32Bytes,
  sha256Hex,
  type PrivacySpend,
  type UpdateHeader,
  type UpdateReceipt,
} from '@tessera/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import { AgentError, AgentErrorCode } from '../agent.error';
import { runCli } from '../cli';
import { SiloPrivacyLedger } from '../privacy/silo-privacy-ledger';
import { TaskExecutor } from '../run/task-executor';
import { AgentState } from '../state/agent-state';
import { ApprovalStore } from '../state/approval-store';
import { ReceiptStore } from '../state/receipt-store';
import { ReleaseStore } from '../state/release-store';
import { buildPlan, buildStudy, buildTask, FakeHub, modelBlob, readHeartDisease } from '../testing/study.test-util';
import { modelSpecOf } from '../training/plan-mapping.util';
import { StudyDatasets } from '../training/study-datasets';
import { auditedStudyTransport, exportAgentAudit, openAgentAuditLog } from './agent-audit.command';
import { HubAuditKeyStore, type PinnedHubKey } from './hub-audit-key';

beforeAll(async () => {
  await selectBackend('cpu');
});

const ST = 'aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa';
const HUB_KEY = generateSigningKey();
const OTHER_KEY = generateSigningKey();

/** A hub that signs its receipts the way apps/hub does: the receipt fields, plus a SignedReceipt over them. */
class SigningHub extends FakeHub {
  key = HUB_KEY.privateKeyPem;

  override async uploadUpdate(studyId: string, round: number, frame: Uint8Array): Promise<UpdateReceipt> {
    const { signature: _none, ...plain } = await super.uploadUpdate(studyId, round, frame);
    const payload = { ...plain, updateSha256: sha256Hex(frame) };
    return { ...payload, signature: signReceipt(payload, this.key) };
  }
}

function enrolledState(siloId: string): AgentState {
  const state = new AgentState(mkdtempSync(join(tmpdir(), 'tessera-audited-')));
  state.saveIdentity(
    {
      siloId,
      siloName: 'Northgate Clinic',
      hubSiloUrl: 'https://hub.invalid:8443',
      enrollUrl: 'https://hub.invalid:8444',
      caFingerprintSha256: 'c'.repeat(64),
      serial: '01',
      notAfter: new Date(Date.now() + 86_400_000).toISOString(),
      enrolledAt: new Date().toISOString(),
    },
    'not a real key',
    'not a real certificate',
    'not a real CA',
  );
  return state;
}

function pin(state: AgentState, publicKeyPem = HUB_KEY.publicKeyPem): PinnedHubKey {
  const pinned = { publicKeyPem, keyId: publicKeyFingerprint(publicKeyPem), pinnedAt: new Date().toISOString() };
  writeFileSync(new HubAuditKeyStore(state.root).file, JSON.stringify(pinned));
  return pinned;
}

function frameWith(header: Partial<UpdateHeader>, studyId: string): Uint8Array {
  const delta = new Float32Array([0.1, -0.2, 0.3]);
  return encodeUpdateFrame(
    {
      studyId,
      round: 1,
      attempt: 1,
      planHash: 'd'.repeat(64),
      baseModelHash: 'e'.repeat(64),
      numExamples: 120,
      length: 3,
      payloadSha256: sha256Hex(float32Bytes(delta)),
      l2Norm: Math.hypot(0.1, 0.2, 0.3),
      evaluation: { kind: 'exact', loss: 0.6, accuracy: 0.7, auc: 0.8, n: 50, positives: 20 },
      privacy: null,
      ...header,
    },
    delta,
  );
}

const SPEND: PrivacySpend = {
  mechanism: 'dp-sgd',
  unit: 'record',
  noiseMultiplier: 1.2,
  clipNorm: 1,
  samplingRate: 0.02,
  steps: 50,
  delta: 1e-5,
  trainingRounds: 1,
  evaluationReleases: 0,
  epsilonRound: 0.3,
  epsilonCumulative: 0.3,
  accountant: 'rdp',
};

function actions(records: AuditRecord[]): string[] {
  return records.map((r) => r.action);
}

describe('AuditedStudyTransport', () => {
  it('records a trained and uploaded task through the unchanged executor, with a receipt verified by the pinned key', async () => {
    const hub = new SigningHub();
    const state = enrolledState(hub.siloId);
    pin(state);
    const study = buildStudy(buildPlan());
    hub.studies = [study];
    const blob = modelBlob(initialParameters(modelSpecOf(study.plan), study.plan.training.initSeed));
    hub.blobs.set(blob.hash, blob.bytes);
    const approvals = new ApprovalStore(state.root);
    approvals.record(study.studyId, {
      planHash: study.planHash,
      planVersion: 1,
      decision: 'approve',
      decidedAt: new Date().toISOString(),
      decidedBy: 'steward',
    });
    const transport = auditedStudyTransport(state, hub, 'policy');
    const executor = new TaskExecutor({
      transport,
      approvals,
      receipts: new ReceiptStore(state.root),
      releases: new ReleaseStore(state.root),
      datasets: new StudyDatasets(() => readHeartDisease()),
      privacy: new SiloPrivacyLedger(state.root, undefined),
      log: () => undefined,
      sleep: () => Promise.resolve(),
    });
    const task = buildTask(study, blob.hash);
    hub.taskBatches = [[task], [task]];
    await transport.pollTasks(1);
    await transport.pollTasks(1); // offered again: recorded once
    expect((await executor.execute(task, study)).kind).toBe('uploaded');

    const records = transport.log.records();
    expect(actions(records)).toEqual([
      AgentAuditAction.LogStarted,
      AgentAuditAction.TaskReceived,
      AgentAuditAction.ModelDownloaded,
      AgentAuditAction.UpdateUploaded,
    ]);
    expect(records[2]!.details).toMatchObject({ modelHash: blob.hash, sha256: blob.hash, verified: true });
    const frame = hub.uploads[0]!.frame;
    const { header } = decodeUpdateFrame(frame);
    expect(records[3]!).toMatchObject({
      actor: { type: 'silo', id: hub.siloId, name: 'Northgate Clinic' },
      subject: { studyId: study.studyId },
      details: {
        round: 1,
        updateSha256: sha256Hex(frame),
        payloadSha256: header.payloadSha256,
        bytes: frame.byteLength,
        numExamples: header.numExamples,
        receiptCheck: 'valid',
        receiptKeyId: publicKeyFingerprint(HUB_KEY.publicKeyPem),
      },
    });
  });

  it('marks a receipt signed by another key invalid (and warns), and one without a pinned key unverified', async () => {
    const hub = new SigningHub();
    hub.key = OTHER_KEY.privateKeyPem;
    const state = enrolledState(hub.siloId);
    pin(state);
    const warnings: string[] = [];
    const transport = auditedStudyTransport(state, hub, 'policy', (m) => warnings.push(m));
    await transport.uploadUpdate(ST, 1, frameWith({}, ST));
    expect(transport.log.records().at(-1)!.details.receiptCheck).toBe('invalid');
    expect(warnings[0]).toMatch(/does not verify under the pinned hub key/);

    const unpinned = auditedStudyTransport(enrolledState(hub.siloId), hub, 'policy');
    await unpinned.uploadUpdate(ST, 1, frameWith({}, ST));
    expect(unpinned.log.records().at(-1)!.details).toMatchObject({ receiptCheck: 'unverified' });
  });

  it('records privacy spent once per update, refusals, failures, evaluations and decisions', async () => {
    const hub = new SigningHub();
    const state = enrolledState(hub.siloId);
    const study = buildStudy(buildPlan());
    hub.studies = [study];
    const steward = auditedStudyTransport(state, hub, 'steward');
    await steward.decide(study.studyId, { planHash: study.planHash, decision: 'approve' });
    await steward.decide(study.studyId, { planHash: study.planHash, decision: 'reject', reason: 'committee said no' });

    const t = auditedStudyTransport(state, hub, 'policy');
    const dp = frameWith({ privacy: SPEND }, study.studyId);
    hub.failNext.uploadUpdate = [new AgentError(AgentErrorCode.HUB_UNREACHABLE, 'down')];
    await expect(t.uploadUpdate(study.studyId, 1, dp)).rejects.toThrow('down');
    await t.uploadUpdate(study.studyId, 1, dp); // the retry sends the same bytes: no second spend
    hub.failNext.uploadUpdate = [
      new AgentError(AgentErrorCode.HUB_REFUSED, 'The hub refused the update', 409, 'ROUND_CLOSED'),
    ];
    await expect(t.uploadUpdate(study.studyId, 2, frameWith({ round: 2 }, study.studyId))).rejects.toThrow();
    await t.reportFailure(study.studyId, { round: 3, attempt: 1, code: 'PRIVACY_CAP_REACHED', message: 'cap' });
    await t.reportFailure(study.studyId, { round: 3, attempt: 1, code: 'DATA_UNREADABLE', message: 'no file' });
    await t.reportEvaluation(study.studyId, {
      round: 4,
      attempt: 1,
      planHash: study.planHash,
      modelHash: 'f'.repeat(64),
      evaluation: { kind: 'exact', loss: 0.4, accuracy: 0.8, auc: null, n: 30, positives: 10 },
      privacy: null,
    });
    await t.reportFailure(study.studyId, {
      round: 5,
      attempt: 1,
      code: 'PLAN_LIMIT_REACHED',
      message: 'the approved plan has 3 training rounds',
    });

    const records = t.log.records();
    expect(actions(records)).toEqual([
      AgentAuditAction.LogStarted,
      AgentAuditAction.PlanApproved,
      AgentAuditAction.PlanRejected,
      AgentAuditAction.BudgetSpent,
      AgentAuditAction.UpdateUploaded,
      AgentAuditAction.UpdateRefused,
      AgentAuditAction.TaskRefused,
      AgentAuditAction.FailureReported,
      AgentAuditAction.FailureReported,
      AgentAuditAction.EvaluationReported,
      AgentAuditAction.TaskRefused,
      AgentAuditAction.FailureReported,
    ]);
    expect(records[1]!.details).toMatchObject({ planHash: study.planHash, decidedBy: 'steward', planVersion: 1 });
    expect(records[2]!.details).toMatchObject({ reason: 'committee said no' });
    const { header: dpHeader } = decodeUpdateFrame(dp);
    expect(records[3]!.details).toEqual({
      round: 1,
      attempt: 1,
      baseModelHash: dpHeader.baseModelHash,
      payloadSha256: dpHeader.payloadSha256,
      privacy: SPEND,
    });
    expect(records[5]!.details).toMatchObject({ round: 2, httpStatus: 409, code: 'ROUND_CLOSED' });
    expect(records[6]!.details).toMatchObject({ code: 'PRIVACY_CAP_REACHED' });
    expect(records[8]!.details).toMatchObject({ code: 'DATA_UNREADABLE', delivered: true });
    expect(records[9]!.details).toMatchObject({ round: 4, evaluation: { accuracy: 0.8, auc: null }, privacy: null });
    // A refusal of work the approved plan does not allow is a refusal in the silo's own log, whatever the hub does.
    expect(records[10]!.details).toMatchObject({ round: 5, code: 'PLAN_LIMIT_REACHED' });
  });
});

describe('tessera-agent audit', () => {
  it("exports the records, receipts and silo id, which reconcile with the hub's bundle", async () => {
    const hub = new SigningHub();
    const state = enrolledState(hub.siloId);
    pin(state);
    const transport = auditedStudyTransport(state, hub, 'policy');
    const receipt = await transport.uploadUpdate(ST, 1, frameWith({}, ST));
    new ReceiptStore(state.root).save(receipt);

    const exported = exportAgentAudit(state);
    expect(exported).toMatchObject({ siloId: hub.siloId, siloName: 'Northgate Clinic', receipts: [receipt] });
    expect(exported.hubKey?.keyId).toBe(publicKeyFingerprint(HUB_KEY.publicKeyPem));

    // The hub's side of the same story, as its chain records it.
    const acceptance = appendRecord(null, {
      time: new Date().toISOString(),
      actor: { type: 'silo', id: hub.siloId },
      action: 'round.update.accepted',
      subject: { studyId: ST, siloId: hub.siloId },
      details: { round: 1, attempt: 1, updateSha256: receipt.updateSha256 },
    });
    const bundle = buildBundle({
      records: [acceptance],
      study: { id: ST },
      signingKey: HUB_KEY.privateKeyPem,
      generatedAt: new Date(Date.now() + 60_000).toISOString(),
    });
    expect(reconcileSiloLog(exported, bundle)).toMatchObject({ ok: true, matched: 1 });

    // Through the CLI: export to a file, then verify the chain; an edit makes verify exit 1.
    let out = '';
    const io = { out: (s: string) => (out += s), err: (s: string) => (out += s), env: {} };
    const file = join(state.root, 'export.json');
    expect(await runCli(['--state-dir', state.root, 'audit', 'export', '--out', file], io)).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ siloId: hub.siloId });
    expect(await runCli(['--state-dir', state.root, 'audit', 'verify'], io)).toBe(0);
    expect(out).toContain('chain intact');
    const log = openAgentAuditLog(state).file;
    writeFileSync(log, readFileSync(log, 'utf8').replace('"numExamples":120', '"numExamples":121'));
    expect(await runCli(['--state-dir', state.root, 'audit', 'verify'], io)).toBe(1);
    expect(out).toMatch(/FAILED: .* is broken at seq 2 \(HASH_MISMATCH\)/);
  });
});
