import type { Checkpoint } from '@tessera/audit';
import { Column, Entity, PrimaryColumn } from 'typeorm';
import { BIGINT_AS_NUMBER } from './audit-record.entity';

/** A signed checkpoint of the audit chain at `seq` (docs/audit-format.md, "Checkpoint"). Append-only. */
@Entity('audit_checkpoints')
export class AuditCheckpointEntity {
  @PrimaryColumn({ type: 'bigint', transformer: BIGINT_AS_NUMBER })
  seq!: number;

  @Column({ name: 'head_hash', type: 'char', length: 64 })
  headHash!: string;

  /** The exact ISO string that was signed. */
  @Column({ type: 'text' })
  time!: string;

  @Column({ type: 'bigint', transformer: BIGINT_AS_NUMBER })
  count!: number;

  @Column({ name: 'key_id', type: 'char', length: 64 })
  keyId!: string;

  /** base64 Ed25519 signature. */
  @Column({ type: 'text' })
  signature!: string;
}

export function toCheckpoint(e: AuditCheckpointEntity): Checkpoint {
  return { seq: e.seq, headHash: e.headHash, time: e.time, count: e.count, keyId: e.keyId, signature: e.signature };
}
