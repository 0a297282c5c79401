import { Readable } from 'node:stream';
import { Controller, Get, Header, Post, Query, Res, StreamableFile } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import type { Checkpoint } from '@tessera/audit';
import type { AuditSigningKeyView } from '@tessera/protocol';
import type { Response } from 'express';
import { Access } from '../access/access.decorator';
import { ReadCache } from '../database/read-cache';
import { AuditCheckpointService } from './audit-checkpoint.service';
import { AuditLogService, type AuditEventFilter, type AuditEventPage } from './audit-log.service';
import { AuditSigningKeyService, type HubPublicKey } from './audit-signing-key.service';
import { AuditVerificationService, type StoredChainVerification } from './audit-verification.service';
import { AuditCheckpointsQueryDto, AuditEventsFilterDto, AuditEventsQueryDto } from './dto/audit-query.dto';
import { Endpoint } from '../openapi/endpoint.decorator';

const DEFAULT_PAGE = 100;

function filterOf(dto: AuditEventsFilterDto): AuditEventFilter {
  return {
    ...(dto.from === undefined ? {} : { from: new Date(dto.from) }),
    ...(dto.to === undefined ? {} : { to: new Date(dto.to) }),
    actor: dto.actor,
    action: dto.action,
    studyId: dto.studyId,
    siloId: dto.siloId,
    q: dto.q,
  };
}

/** The audit log for auditors and administrators: read, verify, checkpoints. Nothing here changes a record. */
@ApiTags('audit')
@ApiBearerAuth()
@Controller('api/audit')
export class AuditController {
  constructor(
    private readonly log: AuditLogService,
    private readonly verification: AuditVerificationService,
    private readonly checkpoints: AuditCheckpointService,
    private readonly keys: AuditSigningKeyService,
    private readonly cache: ReadCache,
  ) {}

  /** Records, newest first by default, filtered; page on with `cursor` = the previous page's nextCursor. */
  @Access('admin', 'auditor')
  @Get('events')
  @Endpoint({ summary: 'Read audit records, filtered and paged', answer: { schema: 'AuditEventPage' } })
  events(@Query() query: AuditEventsQueryDto): Promise<AuditEventPage> {
    const filter = filterOf(query);
    const page = { limit: query.limit ?? DEFAULT_PAGE, cursor: query.cursor, order: query.order ?? 'desc' } as const;
    return this.cache.read(`audit:${JSON.stringify([filter, page])}`, () => this.log.listEvents(filter, page));
  }

  /** The filtered records as CSV, oldest first (for spreadsheets; the signed bundle is what proves anything). */
  @Access('admin', 'auditor')
  @Get('events.csv')
  @Header('content-type', 'text/csv; charset=utf-8')
  @Header('content-disposition', 'attachment; filename="tessera-audit-events.csv"')
  @Endpoint({
    summary: 'Download the filtered audit records as CSV',
    answer: { media: ['text/csv'], description: 'The records, oldest first, one per line.' },
  })
  eventsCsv(@Query() query: AuditEventsFilterDto): StreamableFile {
    return new StreamableFile(Readable.from(this.log.csv(filterOf(query))));
  }

  /** Verifies the whole stored chain and every checkpoint; names the first broken link. */
  @Access('admin', 'auditor')
  @Get('verify')
  @Endpoint({
    summary: 'Verify the whole stored audit chain and its checkpoints',
    answer: { schema: 'StoredChainVerification' },
  })
  verify(): Promise<StoredChainVerification> {
    return this.verification.verifyStoredChain();
  }

  @Access('admin', 'auditor')
  @Get('checkpoints')
  @Endpoint({ summary: 'List signed checkpoints of the audit chain', answer: { schema: 'Checkpoint', list: true } })
  listCheckpoints(@Query() query: AuditCheckpointsQueryDto): Promise<Checkpoint[]> {
    return this.checkpoints.list(query.after ?? 0, query.limit ?? DEFAULT_PAGE);
  }

  /** Signs a checkpoint of the current head now (returns the latest one if nothing was appended since). */
  @Access('admin')
  @Post('checkpoints')
  @Endpoint({ summary: 'Sign a checkpoint of the current chain head now', answer: { schema: 'Checkpoint' } })
  checkpointNow(): Promise<Checkpoint> {
    return this.checkpoints.checkpointNow();
  }

  /** The hub's Ed25519 audit key: pin it when verifying reports offline (`tessera-verify --public-key`). */
  @Access('admin', 'auditor')
  @Get('public-key')
  @Endpoint({ summary: 'The hub’s current audit signing key (Ed25519)', answer: { schema: 'HubPublicKey' } })
  publicKey(): Promise<HubPublicKey> {
    return this.keys.publicKey();
  }

  /** Every audit signing key the hub has held, with its fingerprint (key id) and whether it signs now. */
  @Access('admin', 'auditor')
  @Get('public-keys')
  @Endpoint({
    summary: 'Every audit signing key the hub has held',
    answer: { schema: 'AuditSigningKeyView', list: true },
  })
  publicKeys(): Promise<AuditSigningKeyView[]> {
    return this.keys.keyList();
  }

  /**
   * The current audit key as a file to save as hub-public.pem: a few lines naming it and its fingerprint, then the
   * PEM block (text outside the block is ignored by PEM readers, `tessera-verify --public-key` included).
   */
  @Access('admin', 'auditor')
  @Get('public-key.pem')
  @Endpoint({
    summary: 'Download the audit key as hub-public.pem',
    answer: {
      media: ['application/x-pem-file'],
      description: 'A few lines naming the key and its fingerprint, then the PEM block.',
    },
  })
  async publicKeyPem(@Res() res: Response): Promise<void> {
    const { keyId, publicKeyPem } = await this.keys.publicKey();
    const text =
      `Tessera hub audit signing key (Ed25519)\n` +
      `Key id (SHA-256 of the DER SubjectPublicKeyInfo): ${keyId}\n` +
      `Check: openssl pkey -pubin -in hub-public.pem -outform DER | sha256sum\n\n` +
      publicKeyPem.trimEnd() +
      '\n';
    res.status(200).setHeader('content-type', 'application/x-pem-file; charset=utf-8');
    res.setHeader('content-disposition', 'attachment; filename="hub-public.pem"');
    res.setHeader('x-key-id', keyId);
    res.end(text);
  }
}
