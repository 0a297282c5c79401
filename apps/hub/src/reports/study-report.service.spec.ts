import { createHash, randomUUID } from 'node:crypto';
import { verifyBundle, type AuditBundle } from '@tessera/audit';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AuditTrail } from '../audit/audit-trail';
import { auditServicesOver, InMemoryAudit } from '../audit/in-memory-audit.test-util';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { PrivacyLedgerService } from '../privacy/privacy-ledger.service';
import type { RoundsQueryService } from '../rounds/rounds-query.service';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudiesService } from '../studies/studies.service';
import { bundleSha256 } from './report-pdf.util';
import type { ReportsRepository } from './reports.repository';
import { STUDY_REPORT_KIND, type StudyReportSummary } from './study-report';
import { A, B, HASH, studyView } from './study-report-fixtures.test-util';
import { StudyReportService } from './study-report.service';

const ADMIN = { type: 'user', id: 'admin-1', name: 'root' } as const;

/**
 * The report service over the in-memory audit log; studies answer 404 for any id but `known`, a completed study
 * without differential privacy and without rounds (the summary's own figures are study-report.spec.ts's).
 */
function harness(known: string) {
  const store = new InMemoryAudit();
  const audit = auditServicesOver(store);
  const reports: Pick<ReportsRepository, keyof ReportsRepository> = {
    currentHeadSeq: () => store.chain.headSeq(),
    checkpointsUpTo: (seq, keyId) =>
      Promise.resolve(store.storedCheckpoints.filter((c) => c.seq <= seq && c.keyId === keyId).length),
    aggregationTraces: () => Promise.resolve([]),
  };
  const find = <T>(id: string, found: T): Promise<T> =>
    id === known ? Promise.resolve(found) : Promise.reject(new HubException(HubErrorCode.NOT_FOUND, 'no study'));
  const studies = {
    entity: (id: string) => find(id, { id }),
    get: (id: string) => find(id, studyView(heartDiseasePlan([A, B]), id)),
  } as unknown as StudiesService;
  const rounds = { roundsOf: () => Promise.resolve([]) } as unknown as RoundsQueryService;
  const ledger = {
    mechanismOf: () => null,
    manager: () => ({}),
    budgets: () => Promise.resolve([]),
  } as unknown as PrivacyLedgerService;
  const trail: AuditTrail = { record: (event) => store.append(event).then(() => undefined) };
  const service = new StudyReportService(
    reports as ReportsRepository,
    studies,
    rounds,
    audit.exporter,
    audit.log,
    audit.verification,
    audit.keys,
    ledger,
    trail,
  );
  return { store, service, keys: audit.keys };
}

describe('StudyReportService (CSV) over its repository', () => {
  const studyId = randomUUID();
  let h: ReturnType<typeof harness>;
  const ofStudy = (action: string, id = studyId) => h.store.append({ actor: ADMIN, action, subject: { studyId: id } });
  beforeEach(async () => {
    h = harness(studyId);
    await ofStudy('study.started');
    await ofStudy('study.started', randomUUID());
    await ofStudy('round.closed');
  });

  it("writes the study's records up to the current head, and records the export with the file's hash and head", async () => {
    const file = await h.service.csv(studyId, ADMIN);
    const lines = file.bytes.toString('utf8').split('\r\n');
    expect(lines.slice(1, -1).map((l) => l.split(',')[0])).toEqual(['1', '3']);
    expect(file.head).toEqual({ seq: 3, hash: h.store.chainRecords[2]!.hash });
    expect(file.sha256).toBe(createHash('sha256').update(file.bytes).digest('hex'));
    expect(file).toMatchObject({ format: 'csv', contentType: 'text/csv; charset=utf-8', fileName: 'report.csv' });
    const exported = h.store.chainRecords.at(-1)!;
    expect(exported).toMatchObject({ seq: 4, action: 'report.exported', subject: { studyId } });
    expect(exported.details).toEqual({
      format: 'csv',
      sha256: file.sha256,
      bytes: file.bytes.length,
      headSeq: 3,
      headHash: file.head.hash,
    });
  });

  it('covers an earlier head again with upTo, leaving out what was logged since (its own export included)', async () => {
    const first = await h.service.csv(studyId, ADMIN);
    await ofStudy('round.opened');
    const again = await h.service.csv(studyId, ADMIN, first.head.seq);
    expect(again.bytes.equals(first.bytes)).toBe(true);
    expect(again.head).toEqual(first.head);
  });

  it('answers 404 for an unknown study and 400 for a head beyond the chain, recording nothing', async () => {
    await expect(h.service.csv(randomUUID(), ADMIN)).rejects.toMatchObject({ code: HubErrorCode.NOT_FOUND });
    await expect(h.service.csv(studyId, ADMIN, 99)).rejects.toMatchObject({ code: HubErrorCode.VALIDATION_FAILED });
    expect(h.store.chainRecords).toHaveLength(3);
  });
});

describe('StudyReportService (JSON and PDF) over its repository', () => {
  const studyId = randomUUID();
  let h: ReturnType<typeof harness>;
  beforeEach(async () => {
    h = harness(studyId);
    await h.store.append({ actor: ADMIN, action: 'study.started', subject: { studyId } });
  });

  it('signs a bundle of the study at a fresh checkpoint, its summary stating the head, and records the export', async () => {
    const file = await h.service.json(studyId, ADMIN);
    const bundle = JSON.parse(file.bytes.toString('utf8')) as AuditBundle;
    const key = await h.keys.publicKey();
    expect(verifyBundle(bundle, { trustedPublicKey: key.publicKeyPem }).ok).toBe(true);
    // Record 2 is the key's creation, which the checkpoint signed for this download covers.
    expect(bundle.records.map((r) => r.action)).toEqual(['study.started', 'audit.signing-key.created']);
    const summary = bundle.study as unknown as StudyReportSummary;
    expect(summary).toMatchObject({
      kind: STUDY_REPORT_KIND,
      id: studyId,
      planHash: HASH('e'),
      chainHead: file.head,
      signingKey: { algorithm: 'Ed25519', keyId: key.keyId },
    });
    expect(file.head).toEqual({ seq: 2, hash: h.store.chainRecords[1]!.hash });
    expect(summary.chainVerification).toMatchObject({ ok: true, headSeq: 2, checkpointsTotal: 1 });
    expect(h.store.chainRecords.at(-1)).toMatchObject({
      seq: 3,
      action: 'report.exported',
      details: {
        format: 'json',
        sha256: file.sha256,
        headSeq: 2,
        bundleSha256: bundleSha256(bundle),
        planHash: HASH('e'),
        fromSeq: 1,
        keyId: key.keyId,
      },
    });
  });

  it('renders the PDF at the head a JSON download named, although that download was logged since', async () => {
    const json = await h.service.json(studyId, ADMIN);
    const pdf = await h.service.pdf(studyId, ADMIN, json.head.seq);
    expect(pdf.head).toEqual(json.head);
    expect(pdf.bytes.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(h.store.chainRecords.slice(-2).map((r) => [r.action, r.details.format])).toEqual([
      ['report.exported', 'json'],
      ['report.exported', 'pdf'],
    ]);
  });
});
