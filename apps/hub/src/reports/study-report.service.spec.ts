import { createHash, randomUUID } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AuditTrail } from '../audit/audit-trail';
import { auditServicesOver, InMemoryAudit } from '../audit/in-memory-audit.test-util';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { PrivacyLedgerService } from '../privacy/privacy-ledger.service';
import type { RoundsQueryService } from '../rounds/rounds-query.service';
import type { StudiesService } from '../studies/studies.service';
import type { ReportsRepository } from './reports.repository';
import { StudyReportService } from './study-report.service';

const ADMIN = { type: 'user', id: 'admin-1', name: 'root' } as const;

/** The report service over the in-memory audit log; studies answer 404 for any id but `known`. */
function harness(known: string) {
  const store = new InMemoryAudit();
  const audit = auditServicesOver(store);
  const reports: Pick<ReportsRepository, keyof ReportsRepository> = {
    currentHeadSeq: () => store.chain.headSeq(),
    checkpointsUpTo: (seq, keyId) =>
      Promise.resolve(store.storedCheckpoints.filter((c) => c.seq <= seq && c.keyId === keyId).length),
    aggregationTraces: () => Promise.resolve([]),
  };
  const studies = {
    entity: (id: string) =>
      id === known ? Promise.resolve({ id }) : Promise.reject(new HubException(HubErrorCode.NOT_FOUND, 'no study')),
  } as unknown as StudiesService;
  const trail = { record: (event) => store.append(event).then(() => undefined) } as AuditTrail;
  const service = new StudyReportService(
    reports as ReportsRepository,
    studies,
    {} as RoundsQueryService,
    audit.exporter,
    audit.log,
    audit.verification,
    audit.keys,
    {} as PrivacyLedgerService,
    trail,
  );
  return { store, service };
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
