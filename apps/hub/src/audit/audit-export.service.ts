import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { buildBundle, type AuditBundle, type JsonObject } from '@tessera/audit';
import { Between, DataSource, LessThan, LessThanOrEqual } from 'typeorm';
import { AuditCheckpointEntity, toCheckpoint } from './audit-checkpoint.entity';
import { AuditCheckpointService } from './audit-checkpoint.service';
import { AuditRecordEntity, toAuditRecord } from './audit-record.entity';
import { AuditSigningKeyService } from './audit-signing-key.service';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface AuditBundleFilter {
  /** Start the segment at the last checkpoint before this study's first record (else: at genesis). */
  studyId?: string;
}

/**
 * Signed report bundles (`tessera.audit-bundle/1`, docs/audit-format.md) that auditors verify offline with
 * `tessera-verify`. The study compliance report is built on this: it supplies the study summary.
 */
@Injectable()
export class AuditExportService {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly checkpoints: AuditCheckpointService,
    private readonly keys: AuditSigningKeyService,
  ) {}

  /**
   * A bundle of the chain up to a fresh checkpoint at the current head. Without a study, or when the study's first
   * record precedes every checkpoint, the segment starts at genesis (it then proves completeness from the first
   * record); otherwise it starts just after the last checkpoint before the study's first record, which anchors it.
   * `study` is the summary the report carries, opaque here. Refuses (BundleBuildError) to sign a chain that does not
   * verify.
   */
  async exportBundle(filter: AuditBundleFilter, study: JsonObject = {}): Promise<AuditBundle> {
    const head = await this.checkpoints.checkpointNow();
    const key = await this.keys.signingKey();
    const fromSeq = await this.segmentStart(filter, head.seq, key.keyId);
    const records = await this.db.getRepository(AuditRecordEntity).find({
      where: { seq: Between(fromSeq, head.seq) },
      order: { seq: 'ASC' },
    });
    const checkpoints = await this.db.getRepository(AuditCheckpointEntity).find({
      where: { seq: Between(fromSeq - 1, head.seq), keyId: key.keyId },
      order: { seq: 'ASC' },
    });
    return buildBundle({
      records: records.map(toAuditRecord),
      checkpoints: checkpoints.map(toCheckpoint),
      study,
      signingKey: key.privateKey,
    });
  }

  private async segmentStart(filter: AuditBundleFilter, headSeq: number, keyId: string): Promise<number> {
    if (filter.studyId === undefined || !UUID.test(filter.studyId)) return 1;
    const first = await this.db.getRepository(AuditRecordEntity).findOne({
      where: { studyId: filter.studyId, seq: LessThanOrEqual(headSeq) },
      order: { seq: 'ASC' },
    });
    if (!first) return 1;
    const anchor = await this.db.getRepository(AuditCheckpointEntity).findOne({
      where: { seq: LessThan(first.seq), keyId },
      order: { seq: 'DESC' },
    });
    return anchor ? anchor.seq + 1 : 1;
  }
}
