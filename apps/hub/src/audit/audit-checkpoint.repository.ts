import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Checkpoint } from '@tessera/audit';
import { Between, DataSource, LessThan, MoreThan, type EntityManager } from 'typeorm';
import { AuditCheckpointEntity, toCheckpoint } from './audit-checkpoint.entity';
import type { ChainLink } from './audit.repository';
import { AUDIT_CHAIN_LOCK, DatabaseAuditTrail } from './database-audit-trail';

/** The writes of one checkpoint's transaction, which holds the chain lock from reading the head to storing it. */
export interface CheckpointSigning {
  /** The chain's advisory lock (AUDIT_CHAIN_LOCK), the one every append holds: no record can be appended meanwhile. */
  lockChain(): Promise<void>;
  /** The chain's head, null while the chain is empty. */
  head(): Promise<ChainLink | null>;
  /** The checkpoint of the highest seq, null before the first. */
  latest(): Promise<Checkpoint | null>;
  insert(checkpoint: Checkpoint & { count: number }): Promise<void>;
}

/**
 * The data access of `audit_checkpoints`. A checkpoint is signed in the audit trail's transaction (the enclosing hub
 * transaction if there is one, else its own: DatabaseAuditTrail.inTransaction), under the chain lock.
 */
@Injectable()
export class AuditCheckpointRepository {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    private readonly trail: DatabaseAuditTrail,
  ) {}

  inTransaction<T>(work: (tx: CheckpointSigning) => Promise<T>): Promise<T> {
    return this.trail.inTransaction((tx) => work(signingIn(tx)));
  }

  /** At most `limit` checkpoints after `afterSeq`, in seq order. */
  async after(afterSeq: number, limit: number): Promise<Checkpoint[]> {
    const rows = await this.db
      .getRepository(AuditCheckpointEntity)
      .find({ where: { seq: MoreThan(afterSeq) }, order: { seq: 'ASC' }, take: limit });
    return rows.map(toCheckpoint);
  }

  /** The key's checkpoints from `fromSeq` to `toSeq` (both included), in seq order. */
  async between(fromSeq: number, toSeq: number, keyId: string): Promise<Checkpoint[]> {
    const rows = await this.db.getRepository(AuditCheckpointEntity).find({
      where: { seq: Between(fromSeq, toSeq), keyId },
      order: { seq: 'ASC' },
    });
    return rows.map(toCheckpoint);
  }

  /** The key's last checkpoint below `seq`, null when there is none. */
  async lastBefore(seq: number, keyId: string): Promise<Checkpoint | null> {
    const anchor = await this.db.getRepository(AuditCheckpointEntity).findOne({
      where: { seq: LessThan(seq), keyId },
      order: { seq: 'DESC' },
    });
    return anchor ? toCheckpoint(anchor) : null;
  }
}

function signingIn(tx: EntityManager): CheckpointSigning {
  const checkpoints = tx.getRepository(AuditCheckpointEntity);
  return {
    lockChain: async () => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [AUDIT_CHAIN_LOCK]);
    },
    head: async () => {
      const [head] = await tx.query<{ seq: string; hash: string }[]>(
        'SELECT "seq", "hash" FROM "audit_records" ORDER BY "seq" DESC LIMIT 1',
      );
      return head ? { seq: Number(head.seq), hash: head.hash } : null;
    },
    latest: async () => {
      const [latest] = await checkpoints.find({ order: { seq: 'DESC' }, take: 1 });
      return latest ? toCheckpoint(latest) : null;
    },
    insert: async (checkpoint) => {
      await checkpoints.insert(checkpoint);
    },
  };
}
