import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { signCheckpoint, type Checkpoint } from '@tessera/audit';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { DataSource, MoreThan } from 'typeorm';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import { AuditCheckpointEntity, toCheckpoint } from './audit-checkpoint.entity';
import { AuditSigningKeyService } from './audit-signing-key.service';
import { AUDIT_CHAIN_LOCK, DatabaseAuditTrail } from './database-audit-trail';
import { IntervalTask } from './interval-task.util';

/**
 * Signs checkpoints of the audit chain's head (docs/audit-format.md, "Checkpoint") every
 * TESSERA_AUDIT_CHECKPOINT_SECONDS when records were appended since the last one, and on demand (at the end of each
 * study, or by an administrator). A checkpoint an auditor has kept pins the chain up to it.
 */
@Injectable()
export class AuditCheckpointService implements OnModuleInit, OnModuleDestroy {
  private readonly schedule: IntervalTask;

  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @Inject(HUB_CONFIG) config: HubConfig,
    private readonly trail: DatabaseAuditTrail,
    private readonly keys: AuditSigningKeyService,
    @InjectPinoLogger('AuditCheckpoints') private readonly logger: PinoLogger,
  ) {
    this.schedule = new IntervalTask(
      config.auditCheckpointSeconds * 1000,
      () => this.checkpointIfNew(),
      (err) => this.logger.error({ err }, 'signing the periodic audit checkpoint failed'),
    );
  }

  onModuleInit(): void {
    this.schedule.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.schedule.stop();
  }

  /**
   * Signs a checkpoint at the current head, unless the latest checkpoint already covers it (then returns that one).
   * Null while the chain is empty.
   */
  async checkpointIfNew(): Promise<Checkpoint | null> {
    // The key first, in its own transaction: its creation appends a record, which the checkpoint then covers.
    const key = await this.keys.signingKey();
    return this.trail.inTransaction(async (tx) => {
      // Holding the chain lock: no record can be appended between reading the head and storing its checkpoint,
      // and two replicas cannot sign the same head twice.
      await tx.query('SELECT pg_advisory_xact_lock($1)', [AUDIT_CHAIN_LOCK]);
      const [head] = (await tx.query('SELECT "seq", "hash" FROM "audit_records" ORDER BY "seq" DESC LIMIT 1')) as {
        seq: string;
        hash: string;
      }[];
      if (!head) return null;
      const seq = Number(head.seq);
      const checkpoints = tx.getRepository(AuditCheckpointEntity);
      const [latest] = await checkpoints.find({ order: { seq: 'DESC' }, take: 1 });
      if (latest && latest.seq >= seq) return toCheckpoint(latest);
      const checkpoint = signCheckpoint(
        { seq, headHash: head.hash, time: new Date().toISOString(), count: seq },
        key.privateKey,
      );
      await checkpoints.insert({ ...checkpoint, count: checkpoint.count ?? seq });
      this.logger.info({ seq, keyId: key.keyId }, 'audit checkpoint signed');
      return checkpoint;
    });
  }

  /** A checkpoint that covers every record appended so far (studies call it when they end). */
  async checkpointNow(): Promise<Checkpoint> {
    const checkpoint = await this.checkpointIfNew();
    if (!checkpoint) throw new HubException(HubErrorCode.CONFLICT, 'The audit log is empty: nothing to checkpoint.');
    return checkpoint;
  }

  /** Stored checkpoints in seq order, after `afterSeq`. */
  async list(afterSeq: number, limit: number): Promise<Checkpoint[]> {
    const rows = await this.db
      .getRepository(AuditCheckpointEntity)
      .find({ where: { seq: MoreThan(afterSeq) }, order: { seq: 'ASC' }, take: limit });
    return rows.map(toCheckpoint);
  }
}
