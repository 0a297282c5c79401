import { Controller, Get, Param, ParseUUIDPipe, Query, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { REPORT_HEAD_HEADERS } from '@tessera/protocol';
import type { Response } from 'express';
import { Access } from '../access/access.decorator';
import { actorOf, type AuthenticatedRequest } from '../sessions/current-user';
import { ReportQueryDto } from './dto/report-query.dto';
import { StudyReportService, type ReportFile } from './study-report.service';
import { Endpoint } from '../openapi/endpoint.decorator';

function send(res: Response, file: ReportFile): void {
  res.status(200).setHeader('content-type', file.contentType);
  res.setHeader('content-disposition', `attachment; filename="${file.fileName}"`);
  // The same hash the `report.exported` record holds, so a downloaded file can be matched to its export.
  res.setHeader('x-report-sha256', file.sha256);
  // The chain head the file covers: pass the seq back as ?upTo= for another format at the same head.
  res.setHeader(REPORT_HEAD_HEADERS.seq, String(file.head.seq));
  res.setHeader(REPORT_HEAD_HEADERS.hash, file.head.hash);
  res.end(file.bytes);
}

/** A study's compliance report for auditors and administrators: read-only; each download is itself audited. */
@ApiTags('reports')
@ApiBearerAuth()
@Controller('api/studies')
export class ReportsController {
  constructor(private readonly reports: StudyReportService) {}

  /** The signed `tessera.audit-bundle/1` with the study summary: verify offline with `tessera-verify`. */
  @Access('admin', 'auditor')
  @Get(':id/report.json')
  @Endpoint({
    summary: 'Download the study’s signed audit bundle with its summary',
    answer: {
      media: ['application/json'],
      description:
        'A `tessera.audit-bundle/1` document: verify offline with tessera-verify. Headers: x-report-sha256, x-audit-head-seq, x-audit-head-hash.',
    },
  })
  async json(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Query() query: ReportQueryDto,
    @Req() req: AuthenticatedRequest,
    @Res() res: Response,
  ): Promise<void> {
    send(res, await this.reports.json(id, actorOf(req), query.upTo));
  }

  /** The study's audit events as CSV, oldest first. */
  @Access('admin', 'auditor')
  @Get(':id/report.csv')
  @Endpoint({
    summary: 'Download the study’s audit records as CSV',
    answer: { media: ['text/csv'], description: 'The study’s records, oldest first.' },
  })
  async csv(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Query() query: ReportQueryDto,
    @Req() req: AuthenticatedRequest,
    @Res() res: Response,
  ): Promise<void> {
    send(res, await this.reports.csv(id, actorOf(req), query.upTo));
  }

  /** The report for people, rendered from the same signed summary (which it carries as an attachment). */
  @Access('admin', 'auditor')
  @Get(':id/report.pdf')
  @Endpoint({
    summary: 'Download the study’s compliance report as PDF',
    answer: {
      media: ['application/pdf'],
      description: 'The report, rendered from the same signed summary (attached).',
    },
  })
  async pdf(
    @Param('id', new ParseUUIDPipe()) id: string,
    @Query() query: ReportQueryDto,
    @Req() req: AuthenticatedRequest,
    @Res() res: Response,
  ): Promise<void> {
    send(res, await this.reports.pdf(id, actorOf(req), query.upTo));
  }
}
