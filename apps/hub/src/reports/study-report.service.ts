import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { AuditBundle } from '@tessera/audit';
import type { StudyPlan } from '@tessera/protocol';
import { AuditExportService, type ChainHead } from '../audit/audit-export.service';
import { AuditLogService } from '../audit/audit-log.service';
import { AuditSigningKeyService } from '../audit/audit-signing-key.service';
import { AuditTrail, type AuditActor } from '../audit/audit-trail';
import { AuditVerificationService } from '../audit/audit-verification.service';
import { PrivacyLedgerService } from '../privacy/privacy-ledger.service';
import { RoundsQueryService } from '../rounds/rounds-query.service';
import { legacyMechanismOf } from '../study-state/stored-plan.util';
import { StudiesService } from '../studies/studies.service';
import { bundleSha256, renderReportPdf } from './report-pdf.util';
import { ReportsRepository } from './reports.repository';
import { buildStudyReportSummary, summaryJson, type StudyReportSummary } from './study-report';
import type { SiloPrivacyFigures } from './study-report-sections';

export type ReportFormat = 'json' | 'csv' | 'pdf';

/** A bundle's head: its last record. */
function headOf(bundle: AuditBundle): ChainHead {
  const last = bundle.records[bundle.records.length - 1]!;
  return { seq: last.seq, hash: last.hash };
}

/** One exported report file, as the controller sends it. */
export interface ReportFile {
  format: ReportFormat;
  contentType: string;
  fileName: string;
  bytes: Buffer;
  sha256: string;
  /** The audit chain head the file covers. */
  head: ChainHead;
}

const CONTENT_TYPES: Record<ReportFormat, string> = {
  json: 'application/json; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
  pdf: 'application/pdf',
};

/**
 * A study's compliance report (docs/audit.md, "Compliance report"): one study summary built from the hub's read
 * models, signed in a `tessera.audit-bundle/1` (JSON), rendered from that same bundle for people (PDF), and the
 * study's events for spreadsheets (CSV). Every export is itself recorded as `report.exported` with its hashes.
 */
@Injectable()
export class StudyReportService {
  constructor(
    private readonly store: ReportsRepository,
    private readonly studies: StudiesService,
    private readonly rounds: RoundsQueryService,
    private readonly exporter: AuditExportService,
    private readonly log: AuditLogService,
    private readonly verification: AuditVerificationService,
    private readonly keys: AuditSigningKeyService,
    private readonly ledger: PrivacyLedgerService,
    @Inject(AuditTrail) private readonly audit: AuditTrail,
  ) {}

  /**
   * The summary every format's figures come from, for the report up to `head`; the chain is verified first so the
   * report states the result.
   */
  async summary(studyId: string, head: ChainHead): Promise<StudyReportSummary> {
    const study = await this.studies.get(studyId);
    // A plan of an earlier format (study.legacyPlan): the approved mechanism as stored with the study, and no
    // per-silo recomputation (the current accounting reads parts of the plan that format lacks).
    const mechanism = study.legacyPlan
      ? legacyMechanismOf(study.privacyCost)
      : this.ledger.mechanismOf(study.planHash, study.plan);
    const [rounds, privacy, verification, key] = [
      await this.rounds.roundsOf(studyId),
      study.legacyPlan ? [] : await this.privacyOf(study.id, study.planHash, study.plan),
      await this.verification.verifyStoredChain(),
      await this.keys.publicKey(),
    ];
    const checkpoints = await this.store.checkpointsUpTo(head.seq, key.keyId);
    return buildStudyReportSummary({
      study,
      rounds,
      mechanism,
      privacy,
      verification,
      head: { ...head, checkpoints },
      keyId: key.keyId,
      aggregationTraces: study.plan.secureAggregation ? await this.store.aggregationTraces(studyId) : [],
    });
  }

  /**
   * The signed bundle of the chain segment that spans the study, carrying the summary: up to the current head, or up
   * to the record `upTo` (a head an earlier download named), so that a JSON and a PDF can cover the same head.
   */
  async bundle(studyId: string, upTo?: number): Promise<AuditBundle> {
    await this.studies.entity(studyId); // 404 for an unknown study before anything is checkpointed
    return this.exporter.exportBundle(
      { studyId },
      async (head) => summaryJson(await this.summary(studyId, head)),
      upTo,
    );
  }

  async json(studyId: string, actor: AuditActor, upTo?: number): Promise<ReportFile> {
    const bundle = await this.bundle(studyId, upTo);
    const bytes = Buffer.from(JSON.stringify(bundle, null, 2) + '\n', 'utf8');
    return this.exported(studyId, actor, 'json', bytes, headOf(bundle), bundle);
  }

  async pdf(studyId: string, actor: AuditActor, upTo?: number): Promise<ReportFile> {
    const bundle = await this.bundle(studyId, upTo);
    return this.exported(studyId, actor, 'pdf', await renderReportPdf(bundle), headOf(bundle), bundle);
  }

  /**
   * The study's own records (subject.studyId) up to the head (the current one, or `upTo`), oldest first; for
   * spreadsheets, it proves nothing by itself.
   */
  async csv(studyId: string, actor: AuditActor, upTo?: number): Promise<ReportFile> {
    await this.studies.entity(studyId); // 404 for an unknown study, not an empty file
    const head = await this.exporter.headAt(upTo ?? (await this.store.currentHeadSeq()));
    let text = '';
    for await (const chunk of this.log.csv({ studyId, upTo: head.seq })) text += chunk;
    return this.exported(studyId, actor, 'csv', Buffer.from(text, 'utf8'), head);
  }

  private async exported(
    studyId: string,
    actor: AuditActor,
    format: ReportFormat,
    bytes: Buffer,
    head: ChainHead,
    bundle?: AuditBundle,
  ): Promise<ReportFile> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await this.audit.record({
      actor,
      action: 'report.exported',
      subject: { studyId },
      details: {
        format,
        sha256,
        bytes: bytes.length,
        headSeq: head.seq,
        headHash: head.hash,
        ...(bundle === undefined
          ? {}
          : {
              bundleSha256: bundleSha256(bundle),
              // The bundle carries this service's own summary (summaryJson), whose plan hash is a string.
              planHash: (bundle.study as unknown as StudyReportSummary).planHash,
              fromSeq: bundle.records[0]!.seq,
              keyId: bundle.hub.keyId,
            }),
      },
    });
    return {
      format,
      contentType: CONTENT_TYPES[format],
      fileName: `report.${format}`,
      bytes,
      sha256,
      head,
    };
  }

  /** Every invited silo's figures from the hub's privacy ledger (charges on issue, beside the silos' reports). */
  private async privacyOf(id: string, planHash: string, plan: StudyPlan): Promise<SiloPrivacyFigures[]> {
    return this.ledger.budgets(this.ledger.manager(), { id, planHash, plan }, plan.silos);
  }
}
