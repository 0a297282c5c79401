import { Inject, Injectable, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { signCheckpoint, type Checkpoint } from '@tessera/audit';
import { InjectPinoLogger, PinoLogger } from 'nestjs-pino';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import { AuditCheckpointRepository } from './audit-checkpoint.repository';
import { AuditSigningKeyService } from './audit-signing-key.service';
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
    private readonly store: AuditCheckpointRepository,
    @Inject(HUB_CONFIG) config: HubConfig,
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
    return this.store.inTransaction(async (tx) => {
      // Holding the chain lock: no record can be appended between reading the head and storing its checkpoint,
      // and two replicas cannot sign the same head twice.
      await tx.lockChain();
      const head = await tx.head();
      if (!head) return null;
      const seq = head.seq;
      const latest = await tx.latest();
      if (latest && latest.seq >= seq) return latest;
      const checkpoint = signCheckpoint(
        { seq, headHash: head.hash, time: new Date().toISOString(), count: seq },
        key.privateKey,
      );
      await tx.insert({ ...checkpoint, count: checkpoint.count ?? seq });
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
  list(afterSeq: number, limit: number): Promise<Checkpoint[]> {
    return this.store.after(afterSeq, limit);
  }
}
