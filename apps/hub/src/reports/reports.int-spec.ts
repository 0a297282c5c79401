import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  AGENT_AUDIT_EXPORT_FORMAT,
  AgentAuditAction,
  appendRecord,
  publicKeyFingerprint,
  verifyBundle,
  verifyReceipt,
  type AgentAuditExport,
  type AuditBundle,
  type AuditRecord,
  type JsonObject,
} from '@tessera/audit';
import {
  encodeUpdateFrame,
  float32Bytes,
  auditActorKey,
  releasedWithoutDp,
  REPORT_HEAD_HEADERS,
  sha256Hex,
  SILO_STUDY_API,
  type AuditSigningKeyView,
  type ExactEvaluation,
  type SiloTask,
  type TasksResponse,
  type UpdateReceipt,
} from '@tessera/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEventPage } from '../audit/audit-log.service';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyView } from '../studies/studies.service';
import { ADMIN, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';
import { formatFigure } from './report-pdf-layout.util';
import { STUDY_REPORT_KIND, type StudyReportSummary } from './study-report';
import { NO_DP_STATEMENT } from './study-report-sections';

const REPO = resolve(__dirname, '../../../..');
const VERIFY_CLI = join(REPO, 'libs/audit/dist/verify-cli.js');
const AUDITOR = { username: 'auditor-report', password: 'auditor report password', role: 'auditor' } as const;

/** Distinct metrics per silo, so the report must put each silo's own figure next to its name. */
function metrics(i: number): ExactEvaluation {
  return {
    kind: 'exact',
    loss: 0.5 + i / 10,
    accuracy: 0.6 + i * 0.07,
    auc: 0.7 + i * 0.05,
    n: 40 + i,
    positives: 18 + i,
  };
}

function updateFor(task: SiloTask, length: number, i: number): Buffer {
  const delta = new Float32Array(length).map((_, k) => ((k + i) % 4) * 0.01 - 0.015);
  let norm = 0;
  for (const v of delta) norm += v * v;
  return encodeUpdateFrame(
    {
      studyId: task.studyId,
      round: task.round,
      attempt: task.attempt,
      planHash: task.planHash,
      baseModelHash: task.modelHash,
      numExamples: 100 + i,
      length,
      payloadSha256: sha256Hex(float32Bytes(delta)),
      l2Norm: Math.sqrt(norm),
      evaluation: metrics(i),
      privacy: null,
    },
    delta,
  );
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function download(
  hub: TestHub,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; bytes: Buffer; headers: Headers }> {
  const res = await fetch(`${hub.url}${path}`, { headers });
  return { status: res.status, bytes: Buffer.from(await res.arrayBuffer()), headers: res.headers };
}

function verifyCli(...args: string[]): { status: number | null; stdout: string } {
  const run = spawnSync(process.execPath, [VERIFY_CLI, ...args], { encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout };
}

/** Non-white pixels of a binary PPM (P6, maxval 255) as pdftoppm writes it. */
function inkedPixels(ppm: Buffer): { inked: number; total: number } {
  // Header: "P6" whitespace width whitespace height whitespace maxval, one whitespace byte, then RGB triples.
  const header = /^P6\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(ppm.subarray(0, 64).toString('latin1'));
  if (header === null || header[3] !== '255') throw new Error('not an 8-bit binary PPM');
  const width = Number(header[1]);
  const height = Number(header[2]);
  const pixels = ppm.subarray(header[0].length);
  let inked = 0;
  for (let i = 0; i + 2 < pixels.length; i += 3) {
    if (pixels[i]! < 200 || pixels[i + 1]! < 200 || pixels[i + 2]! < 200) inked += 1;
  }
  return { inked, total: width * height };
}

describe('compliance report of a study run through the protocol (server database)', () => {
  let hub: TestHub;
  let admin: Record<string, string>;
  let auditor: Record<string, string>;
  let silos: TestSilo[];
  let study: StudyView;
  let tmp: string;
  const receipts: UpdateReceipt[] = [];
  const accuracyOf = new Map<string, number>();

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'tessera-report-'));
    hub = await startTestHub('server');
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    expect((await api(hub, 'POST', '/api/users', { headers: admin, json: AUDITOR })).status).toBe(201);
    auditor = await signIn(hub, AUDITOR.username, AUDITOR.password);
    silos = [];
    for (const name of ['Northgate Clinic', 'Southbay Hospital']) silos.push(await TestSilo.enroll(hub, admin, name));

    // One training round and the final evaluation, driven call by call as agents would.
    const plan = heartDiseasePlan(
      silos.map((s) => s.id),
      {
        participation: { minSilosPerRound: 2, roundDeadlineSeconds: 30, maxRoundRetries: 0, onSiloFailure: 'continue' },
      },
    );
    plan.training.rounds = 1;
    study = (await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } })).body as StudyView;
    expect((await api(hub, 'POST', `/api/studies/${study.id}/submit`, { headers: admin })).status).toBe(200);
    for (const s of silos) {
      const r = await s.call('POST', SILO_STUDY_API.decision(study.id), {
        planHash: study.planHash,
        decision: 'approve',
      });
      expect(r.status).toBe(200);
    }
    expect((await api(hub, 'POST', `/api/studies/${study.id}/start`, { headers: admin })).status).toBe(200);
    for (const [i, s] of silos.entries()) {
      const task = await waitFor(async () => {
        const t = ((await s.call('GET', `${SILO_STUDY_API.tasks}?wait=2`)).body as TasksResponse).tasks;
        return t.find((x) => x.kind === 'train');
      });
      const model = await s.binary('GET', SILO_STUDY_API.blob(task.modelHash));
      const res = await s.binary(
        'POST',
        SILO_STUDY_API.update(study.id, task.round),
        updateFor(task, model.bytes.length / 4, i),
      );
      expect(res.status).toBe(200);
      receipts.push(s.json(res.bytes) as UpdateReceipt);
    }
    for (const [i, s] of silos.entries()) {
      const task = await waitFor(async () => {
        const t = ((await s.call('GET', `${SILO_STUDY_API.tasks}?wait=2`)).body as TasksResponse).tasks;
        return t.find((x) => x.kind === 'evaluate');
      });
      const evaluation = { ...metrics(i), accuracy: 0.7 + i * 0.0625 };
      accuracyOf.set(s.name, evaluation.accuracy);
      const r = await s.call('POST', SILO_STUDY_API.evaluation(study.id, task.round), {
        round: task.round,
        attempt: task.attempt,
        planHash: task.planHash,
        modelHash: task.modelHash,
        evaluation,
        privacy: null,
      });
      expect(r.status).toBe(200);
    }
    study = await waitFor(async () => {
      const s = (await api(hub, 'GET', `/api/studies/${study.id}`, { headers: admin })).body as StudyView;
      return s.status === 'completed' ? s : undefined;
    });
  });

  afterAll(async () => {
    await hub?.dispose();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('exports a signed JSON bundle whose summary holds the study, and which verifies offline', async () => {
    const res = await download(hub, `/api/studies/${study.id}/report.json`, auditor);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(res.headers.get('x-report-sha256')).toBe(sha256Hex(res.bytes));
    const bundle = JSON.parse(res.bytes.toString('utf8')) as AuditBundle;
    expect(verifyBundle(bundle)).toMatchObject({ ok: true, problems: [] });
    const { publicKeyPem, keyId } = (await api(hub, 'GET', '/api/audit/public-key', { headers: auditor })).body as {
      publicKeyPem: string;
      keyId: string;
    };
    expect(verifyBundle(bundle, { trustedPublicKey: publicKeyPem }).ok).toBe(true);

    const s = bundle.study as unknown as StudyReportSummary;
    expect(s).toMatchObject({
      kind: STUDY_REPORT_KIND,
      id: study.id,
      name: 'Fed-Heart-Disease',
      status: 'completed',
      planVersion: 1,
      planHash: study.planHash,
      signingKey: { algorithm: 'Ed25519', keyId },
      privacy: { mode: 'none', statement: NO_DP_STATEMENT, perSilo: [] },
      chainVerification: { ok: true, firstBroken: null },
    });
    // The plan without DP releases exact metrics and record counts: the report lists all of it.
    expect(s.releases.releasedWithoutDp).toEqual(releasedWithoutDp(study.plan));
    expect(s.releases.releasedWithoutDp).toHaveLength(3);
    expect(s.releases.statement).toBe(
      `Released without differential privacy: ${releasedWithoutDp(study.plan).join('; ')}`,
    );
    expect(s.participants.map((p) => p.name).sort()).toEqual(['Northgate Clinic', 'Southbay Hospital']);
    expect(s.approvals).toHaveLength(2);
    for (const a of s.approvals) {
      expect(a).toMatchObject({ decision: 'approve', planHash: study.planHash });
      expect(Date.parse(a.decidedAt!)).toBeGreaterThan(0);
    }
    expect(s.rounds.map((r) => [r.round, r.kind, r.status, r.reported])).toEqual([
      [1, 'train', 'closed', 2],
      [2, 'evaluate', 'closed', 2],
    ]);
    expect(s.models.final).toBe(study.currentModelHash);
    expect(s.models.perRound[0]!.output).toBe(study.currentModelHash);
    expect(s.finalEvaluation!.modelHash).toBe(study.currentModelHash);
    for (const e of s.finalEvaluation!.perSilo) expect(e.accuracy).toBe(accuracyOf.get(e.siloName));
    // The segment spans the study: its records are all in the bundle, from study.created to completion.
    const actions = bundle.records.filter((r) => r.subject.studyId === study.id).map((r) => r.action);
    expect(actions[0]).toBe('study.created');
    expect(actions).toContain('study.completed');
    expect(actions.filter((a) => a === 'round.update.accepted')).toHaveLength(2);

    const file = join(tmp, 'report.json');
    writeFileSync(file, res.bytes);
    const ok = verifyCli(file);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain(`OK: ${file} is intact`);
    const edited = structuredClone(bundle);
    (edited.study as unknown as StudyReportSummary).finalEvaluation!.perSilo[0]!.accuracy = 0.99;
    writeFileSync(join(tmp, 'edited.json'), JSON.stringify(edited, null, 2));
    const bad = verifyCli(join(tmp, 'edited.json'));
    expect(bad.status).toBe(1);
    expect(bad.stdout).toContain('BUNDLE_SIGNATURE_INVALID');
  });

  it("gives agents the hub's audit key, under which their receipts verify and reconcile with the report", async () => {
    const key = (await silos[0]!.call('GET', '/silo/v1/audit/public-key')).body as {
      publicKeyPem: string;
      keyId: string;
    };
    for (const r of receipts) expect(verifyReceipt(r.signature, key.publicKeyPem)).toMatchObject({ ok: true });
    // Not on the people's listener.
    expect((await api(hub, 'GET', '/silo/v1/audit/public-key', { headers: admin })).status).toBe(403);

    // A silo's own log (built here as the agent builds it) reconciles with the report the hub signed.
    const silo = silos[0]!;
    const mine = receipts.filter((r) => r.siloId === silo.id);
    const records: AuditRecord[] = [];
    for (const r of mine) {
      records.push(
        appendRecord(records.at(-1) ?? null, {
          time: new Date().toISOString(),
          actor: { type: 'silo', id: silo.id },
          action: AgentAuditAction.UpdateUploaded,
          subject: { studyId: study.id },
          details: {
            round: r.round,
            attempt: r.attempt,
            updateSha256: r.updateSha256,
            receipt: r as unknown as JsonObject,
          },
        }),
      );
    }
    const exported: AgentAuditExport = {
      format: AGENT_AUDIT_EXPORT_FORMAT,
      exportedAt: new Date().toISOString(),
      siloId: silo.id,
      hubKey: key,
      records,
      receipts: mine as unknown as JsonObject[],
    };
    writeFileSync(join(tmp, 'agent.json'), JSON.stringify(exported));
    const report = await download(hub, `/api/studies/${study.id}/report.json`, auditor);
    writeFileSync(join(tmp, 'report2.json'), report.bytes);
    const reconciled = verifyCli(join(tmp, 'report2.json'), '--reconcile', join(tmp, 'agent.json'));
    expect(reconciled.stdout).toContain('is consistent with the report (1 upload(s) matched)');
    expect(reconciled.status).toBe(0);
    // The other silo's acceptance is not this silo's: claiming it as its own upload is a discrepancy.
    exported.siloId = silos[1]!.id;
    writeFileSync(join(tmp, 'agent.json'), JSON.stringify(exported));
    const wrong = verifyCli(join(tmp, 'report2.json'), '--reconcile', join(tmp, 'agent.json'));
    expect(wrong.status).toBe(1);
  });

  it('renders a PDF that opens, is not blank, carries the bundle, and shows the same figures as the JSON', async () => {
    const res = await download(hub, `/api/studies/${study.id}/report.pdf`, auditor);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/pdf');
    expect(res.bytes.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    const pdf = join(tmp, 'report.pdf');
    writeFileSync(pdf, res.bytes);

    // First page as an image (pdftoppm writes PPM by default): A4 (595.28 x 841.89 pt) at 50 dpi rounds to 414 x 585
    // pixels, and a page of text and tables has a few percent of them inked.
    execFileSync('pdftoppm', ['-r', '50', '-f', '1', '-l', '1', '-singlefile', pdf, join(tmp, 'page1')]);
    const { inked, total } = inkedPixels(readFileSync(join(tmp, 'page1.ppm')));
    expect(total).toBe(414 * 585);
    expect(inked / total).toBeGreaterThan(0.01);

    // The attached bundle verifies, and every figure checked below is read from it.
    execFileSync('pdfdetach', ['-savefile', 'report.json', '-o', join(tmp, 'attached.json'), pdf]);
    const attached = JSON.parse(readFileSync(join(tmp, 'attached.json'), 'utf8')) as AuditBundle;
    expect(verifyBundle(attached).ok).toBe(true);
    const s = attached.study as unknown as StudyReportSummary;
    const text = execFileSync('pdftotext', ['-layout', pdf, '-'], { encoding: 'utf8' });
    expect(text).toContain(s.planHash);
    expect(text).toContain(s.models.final!);
    expect(text).toContain(`sha256:${attached.hub.keyId}`);
    expect(text).toContain('npx tessera-verify report.json');
    expect(text).toContain('No differential privacy');
    expect(text.replace(/\s+/g, ' ')).toContain('Released without differential privacy: the model update itself');
    expect(text).toContain('intact: every record and checkpoint verified');
    for (const e of s.finalEvaluation!.perSilo) {
      const line = text.split('\n').find((l) => l.includes(e.siloName) && l.includes(formatFigure(e.accuracy)));
      expect(line, `${e.siloName} ${formatFigure(e.accuracy)}`).toBeDefined();
      expect(e.accuracy).toBe(accuracyOf.get(e.siloName));
    }
    for (const a of s.approvals) expect(text).toContain(a.decidedAt!);
    for (const r of s.rounds) expect(text).toContain(r.openedAt);
    for (const m of s.models.perRound) expect(text).toContain(m.input);
  });

  it("exports the study's events as CSV, and records every export with its format and hashes", async () => {
    const res = await download(hub, `/api/studies/${study.id}/report.csv`, auditor);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/csv');
    const lines = res.bytes.toString('utf8').trimEnd().split('\r\n');
    expect(lines[0]).toBe(
      'seq,time,actor_type,actor_id,actor_name,action,study_id,silo_id,subject,details,prev_hash,hash',
    );
    const page = (
      await api(hub, 'GET', `/api/audit/events?studyId=${study.id}&order=asc&limit=500`, { headers: auditor })
    ).body as AuditEventPage;
    // The CSV was made before its own `report.exported` record, which the later listing holds as its last event.
    const lastSeq = Number(lines[lines.length - 1]!.split(',')[0]);
    expect(lines.length - 1).toBe(page.events.filter((e) => e.seq <= lastSeq).length);
    expect(page.events.at(-1)).toMatchObject({ action: 'report.exported', details: { format: 'csv' } });
    expect(lines.slice(1).every((l) => l.split(',')[6] === study.id)).toBe(true);
    expect(lines.some((l) => l.includes(',study.created,'))).toBe(true);
    expect(lines.some((l) => l.includes(',round.update.accepted,'))).toBe(true);

    const exports = (
      await api(hub, 'GET', `/api/audit/events?studyId=${study.id}&action=report.exported&order=asc`, {
        headers: auditor,
      })
    ).body as AuditEventPage;
    const formats = exports.events.map((e) => e.details.format);
    expect(formats).toEqual(['json', 'json', 'pdf', 'csv']);
    const csvExport = exports.events[3]!;
    expect(csvExport.details.sha256).toBe(res.headers.get('x-report-sha256'));
    expect(csvExport.actor).toMatchObject({ type: 'user', name: AUDITOR.username });
    const pdfExport = exports.events[2]!;
    expect(pdfExport.details).toMatchObject({ planHash: study.planHash });
    expect(pdfExport.details.keyId).toBeTypeOf('string');
    expect(pdfExport.details.bundleSha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses an unknown study, an anonymous caller, and a silo', async () => {
    const unknown = await download(hub, '/api/studies/00000000-0000-4000-8000-000000000000/report.pdf', auditor);
    expect(unknown.status).toBe(404);
    expect((await download(hub, `/api/studies/${study.id}/report.json`, {})).status).toBe(401);
    expect((await silos[0]!.call('GET', `/api/studies/${study.id}/report.json`)).status).toBe(403);
    expect((await download(hub, `/api/studies/${study.id}/report.json`, admin)).status).toBe(200);
  });

  it('names the chain head each download covers, and covers the same head again with upTo whatever was logged since', async () => {
    const first = await download(hub, `/api/studies/${study.id}/report.json`, auditor);
    expect(first.status).toBe(200);
    const headSeq = Number(first.headers.get(REPORT_HEAD_HEADERS.seq));
    const headHash = first.headers.get(REPORT_HEAD_HEADERS.hash);
    const a = JSON.parse(first.bytes.toString('utf8')) as AuditBundle;
    expect(a.records.at(-1)).toMatchObject({ seq: headSeq, hash: headHash });
    const sa = a.study as unknown as StudyReportSummary;
    expect(sa.chainHead).toEqual({ seq: headSeq, hash: headHash });
    expect(sa.chainVerification).toMatchObject({ ok: true, headSeq, headHash, records: headSeq });

    // Two more downloads, each logged as report.exported after the head above: the same head, records and checkpoints.
    const pdf = await download(hub, `/api/studies/${study.id}/report.pdf?upTo=${headSeq}`, auditor);
    expect(pdf.status).toBe(200);
    expect(pdf.headers.get(REPORT_HEAD_HEADERS.seq)).toBe(String(headSeq));
    expect(pdf.headers.get(REPORT_HEAD_HEADERS.hash)).toBe(headHash);
    writeFileSync(join(tmp, 'head.pdf'), pdf.bytes);
    const pdfText = execFileSync('pdftotext', ['-layout', join(tmp, 'head.pdf'), '-'], { encoding: 'utf8' });
    expect(pdfText).toMatch(new RegExp(`Chain head\\s+record #${headSeq}\\b`));
    expect(pdfText).toContain(headHash!);
    expect(pdfText).toContain('GET /api/audit/public-key.pem');
    const again = await download(hub, `/api/studies/${study.id}/report.json?upTo=${headSeq}`, auditor);
    expect(again.status).toBe(200);
    const b = JSON.parse(again.bytes.toString('utf8')) as AuditBundle;
    expect(verifyBundle(b).ok).toBe(true);
    expect(b.records).toEqual(a.records);
    expect(b.checkpoints).toEqual(a.checkpoints);
    // Only the times of the two downloads differ (when the bundle was made and the chain verified).
    const timeless = (x: AuditBundle) => ({
      ...x.study,
      chainVerification: { ...(x.study.chainVerification as object), verifiedAt: null },
    });
    expect(timeless(b)).toEqual(timeless(a));
    const csv = await download(hub, `/api/studies/${study.id}/report.csv?upTo=${headSeq}`, auditor);
    expect(csv.headers.get(REPORT_HEAD_HEADERS.seq)).toBe(String(headSeq));
    const csvLines = csv.bytes.toString('utf8').trimEnd().split('\r\n');
    expect(Number(csvLines.at(-1)!.split(',')[0])).toBeLessThanOrEqual(headSeq);

    // The exports were logged after the head, each naming the head it covered.
    const exports = (
      await api(hub, 'GET', `/api/audit/events?studyId=${study.id}&action=report.exported&limit=3`, {
        headers: auditor,
      })
    ).body as AuditEventPage;
    expect(exports.events.map((e) => e.details.format)).toEqual(['csv', 'json', 'pdf']);
    for (const e of exports.events) {
      expect(e.seq).toBeGreaterThan(headSeq);
      expect(e.details).toMatchObject({ headSeq, headHash });
    }
    // Without upTo, the head moves on to include those records.
    const now = await download(hub, `/api/studies/${study.id}/report.json`, auditor);
    expect(Number(now.headers.get(REPORT_HEAD_HEADERS.seq))).toBeGreaterThan(headSeq);
  });

  it('refuses an upTo outside the chain, malformed, or behind a change of the study', async () => {
    const verify = (await api(hub, 'GET', '/api/audit/verify', { headers: auditor })).body as { headSeq: number };
    const beyond = await api(hub, 'GET', `/api/studies/${study.id}/report.json?upTo=${verify.headSeq + 1000}`, {
      headers: auditor,
    });
    expect(beyond.status).toBe(400);
    expect(JSON.stringify(beyond.body)).toContain(`upTo ${verify.headSeq + 1000} is not in the audit chain`);
    for (const bad of ['0', 'x', '1.5']) {
      const res = await api(hub, 'GET', `/api/studies/${study.id}/report.pdf?upTo=${bad}`, { headers: auditor });
      expect(res.status, bad).toBe(400);
      expect(JSON.stringify(res.body)).toContain('upTo');
    }
    // Just before the study completed, its state (completed, the final evaluation) has records after the head.
    const completed = (
      await api(hub, 'GET', `/api/audit/events?studyId=${study.id}&action=study.completed`, { headers: auditor })
    ).body as AuditEventPage;
    const before = completed.events[0]!.seq - 1;
    const stale = await api(hub, 'GET', `/api/studies/${study.id}/report.json?upTo=${before}`, { headers: auditor });
    expect(stale.status).toBe(409);
    expect(JSON.stringify(stale.body)).toContain(`The study changed after #${before}`);
  });

  it('names every actor of an audit page: accounts, silos and the hub', async () => {
    const page = (
      await api(hub, 'GET', `/api/audit/events?studyId=${study.id}&order=asc&limit=500`, { headers: auditor })
    ).body as AuditEventPage;
    for (const e of page.events) expect(page.actorNames[auditActorKey(e.actor)], e.action).toBeTruthy();
    const siloActors = page.events.filter((e) => e.actor.type === 'silo');
    expect(siloActors.length).toBeGreaterThan(0);
    for (const e of siloActors) {
      expect(page.actorNames[auditActorKey(e.actor)]).toBe(silos.find((s) => s.id === e.actor.id)!.name);
    }
    const created = page.events.find((e) => e.action === 'study.created')!;
    expect(page.actorNames[auditActorKey(created.actor)]).toBe(ADMIN.username);
    const whole = (await api(hub, 'GET', '/api/audit/events?limit=500&order=asc', { headers: auditor }))
      .body as AuditEventPage;
    expect(whole.actorNames['system:hub']).toBe('Tessera hub');
    // A sign-in under a username no account has: the name typed, said to be no account.
    const failed = await api(hub, 'POST', '/api/auth/login', {
      json: { username: 'mallory', password: 'not a password' },
    });
    expect(failed.status).toBe(401);
    const failures = (
      await api(hub, 'GET', '/api/audit/events?action=auth.login.failed&actor=mallory', { headers: auditor })
    ).body as AuditEventPage;
    expect(failures.events).toHaveLength(1);
    expect(failures.actorNames[auditActorKey(failures.events[0]!.actor)]).toBe('mallory (no such account)');

    // The names shown filter too: a silo's name finds its records, a username in another case its user's.
    const bySilo = (
      await api(hub, 'GET', `/api/audit/events?actor=${encodeURIComponent('Northgate Clinic')}&limit=500`, {
        headers: auditor,
      })
    ).body as AuditEventPage;
    const northgate = silos.find((s) => s.name === 'Northgate Clinic')!.id;
    expect(bySilo.events.length).toBeGreaterThan(0);
    expect(bySilo.events.every((e) => e.actor.id === northgate)).toBe(true);
    const byUser = (
      await api(hub, 'GET', `/api/audit/events?actor=${ADMIN.username.toUpperCase()}&limit=500`, { headers: auditor })
    ).body as AuditEventPage;
    expect(byUser.events.some((e) => e.action === 'study.created')).toBe(true);
    expect(new Set(byUser.events.map((e) => e.actor.type))).toEqual(new Set(['user']));
  });

  it("serves the hub's key as a PEM file with its fingerprint, which tessera-verify pins", async () => {
    const res = await download(hub, '/api/audit/public-key.pem', auditor);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toContain('hub-public.pem');
    const keys = (await api(hub, 'GET', '/api/audit/public-keys', { headers: auditor })).body as AuditSigningKeyView[];
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ current: true, keyId: res.headers.get('x-key-id') });
    const text = res.bytes.toString('utf8');
    expect(text).toContain(`Key id (SHA-256 of the DER SubjectPublicKeyInfo): ${keys[0]!.keyId}`);
    expect(text).toContain(keys[0]!.publicKeyPem.trim());
    expect(publicKeyFingerprint(text)).toBe(keys[0]!.keyId);

    const report = await download(hub, `/api/studies/${study.id}/report.json`, auditor);
    writeFileSync(join(tmp, 'pinned.json'), report.bytes);
    writeFileSync(join(tmp, 'hub-public.pem'), res.bytes);
    const pinned = verifyCli(join(tmp, 'pinned.json'), '--public-key', join(tmp, 'hub-public.pem'));
    expect(pinned.stdout).toContain('is intact');
    expect(pinned.status).toBe(0);
    expect((await download(hub, '/api/audit/public-key.pem', {})).status).toBe(401);
    expect((await silos[0]!.call('GET', '/api/audit/public-key.pem')).status).toBe(403);
  });
});
