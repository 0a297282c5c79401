import { createHash } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { AuditBundle } from '@tessera/audit';
import { DataSource, In } from 'typeorm';
import { AuditExportService } from '../audit/audit-export.service';
import { AuditLogService } from '../audit/audit-log.service';
import { AuditSigningKeyService } from '../audit/audit-signing-key.service';
import { AuditTrail, type AuditActor } from '../audit/audit-trail';
import { AuditVerificationService } from '../audit/audit-verification.service';
import { RoundParticipantEntity } from '../rounds/round-participant.entity';
import { RoundEntity } from '../rounds/round.entity';
import { RoundsQueryService } from '../rounds/rounds-query.service';
import { StudiesService } from '../studies/studies.service';
import { bundleSha256, renderReportPdf } from './report-pdf.util';
import { buildStudyReportSummary, summaryJson, type ParticipantPrivacy, type StudyReportSummary } from './study-report';

export type ReportFormat = 'json' | 'csv' | 'pdf';

/** One exported report file, as the controller sends it. */
export interface ReportFile {
  format: ReportFormat;
  contentType: string;
  fileName: string;
  bytes: Buffer;
  sha256: string;
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
    @InjectDataSource() private readonly db: DataSource,
    private readonly studies: StudiesService,
    private readonly rounds: RoundsQueryService,
    private readonly exporter: AuditExportService,
    private readonly log: AuditLogService,
    private readonly verification: AuditVerificationService,
    private readonly keys: AuditSigningKeyService,
    @Inject(AuditTrail) private readonly audit: AuditTrail,
  ) {}

  /** The summary every format's figures come from; the chain is verified first so the report states the result. */
  async summary(studyId: string): Promise<StudyReportSummary> {
    const study = await this.studies.get(studyId);
    const [rounds, privacy, verification, key] = [
      await this.rounds.roundsOf(studyId),
      await this.privacyOf(studyId),
      await this.verification.verifyStoredChain(),
      await this.keys.publicKey(),
    ];
    return buildStudyReportSummary({ study, rounds, privacy, verification, keyId: key.keyId });
  }

  /** The signed bundle of the chain segment that spans the study, carrying the summary. */
  async bundle(studyId: string): Promise<AuditBundle> {
    const summary = await this.summary(studyId);
    return this.exporter.exportBundle({ studyId }, summaryJson(summary));
  }

  async json(studyId: string, actor: AuditActor): Promise<ReportFile> {
    const bundle = await this.bundle(studyId);
    const bytes = Buffer.from(JSON.stringify(bundle, null, 2) + '\n', 'utf8');
    return this.exported(studyId, actor, 'json', bytes, bundle);
  }

  async pdf(studyId: string, actor: AuditActor): Promise<ReportFile> {
    const bundle = await this.bundle(studyId);
    return this.exported(studyId, actor, 'pdf', await renderReportPdf(bundle), bundle);
  }

  /** The study's own records (subject.studyId), oldest first; for spreadsheets, it proves nothing by itself. */
  async csv(studyId: string, actor: AuditActor): Promise<ReportFile> {
    await this.studies.entity(studyId); // 404 for an unknown study, not an empty file
    let text = '';
    for await (const chunk of this.log.csv({ studyId })) text += chunk;
    return this.exported(studyId, actor, 'csv', Buffer.from(text, 'utf8'));
  }

  private async exported(
    studyId: string,
    actor: AuditActor,
    format: ReportFormat,
    bytes: Buffer,
    bundle?: AuditBundle,
  ): Promise<ReportFile> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const head = bundle?.records[bundle.records.length - 1];
    await this.audit.record({
      actor,
      action: 'report.exported',
      subject: { studyId },
      details: {
        format,
        sha256,
        bytes: bytes.length,
        ...(bundle === undefined
          ? {}
          : {
              bundleSha256: bundleSha256(bundle),
              planHash: String(bundle.study.planHash),
              fromSeq: bundle.records[0]!.seq,
              headSeq: head!.seq,
              headHash: head!.hash,
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
    };
  }

  /** Each accepted update's privacy statement (mechanism and accountant figures), by round and silo. */
  private async privacyOf(studyId: string): Promise<ParticipantPrivacy[]> {
    const rounds = await this.db.getRepository(RoundEntity).find({ where: { studyId } });
    if (rounds.length === 0) return [];
    const byId = new Map(rounds.map((r) => [r.id, r]));
    const rows = await this.db.getRepository(RoundParticipantEntity).find({ where: { roundId: In([...byId.keys()]) } });
    const out: ParticipantPrivacy[] = [];
    for (const p of rows) {
      const round = byId.get(p.roundId);
      if (p.privacy === null || round === undefined) continue;
      out.push({ round: round.number, attempt: round.attempt, siloId: p.siloId, privacy: p.privacy });
    }
    return out;
  }
}
