import type { AuditActor, AuditRecord, AuditSubject, JsonObject } from '@tessera/audit';
import { Column, Entity, PrimaryColumn, type ValueTransformer } from 'typeorm';

/** PostgreSQL bigint arrives as a string; audit seqs stay far below 2^53, so a JS number is exact. */
export const BIGINT_AS_NUMBER: ValueTransformer = {
  to: (value: number | undefined) => value,
  from: (value: string | null) => (value === null ? null : Number(value)),
};

/**
 * One link of the hub's audit hash chain (docs/audit-format.md). The hashed fields are stored as hashed (`time` is
 * the exact string); `time_at`, `study_id`, `silo_id` and `actor_id` are plain copies for filtering only and are
 * not covered by the hash. Append-only: the database refuses UPDATE, DELETE and TRUNCATE. Not an API type.
 */
@Entity('audit_records')
export class AuditRecordEntity {
  @PrimaryColumn({ type: 'bigint', transformer: BIGINT_AS_NUMBER })
  seq!: number;

  @Column({ name: 'prev_hash', type: 'char', length: 64 })
  prevHash!: string;

  @Column({ type: 'char', length: 64 })
  hash!: string;

  @Column({ type: 'text' })
  time!: string;

  @Column({ name: 'time_at', type: 'timestamptz' })
  timeAt!: Date;

  @Column({ type: 'jsonb' })
  actor!: AuditActor;

  @Column({ type: 'text' })
  action!: string;

  @Column({ type: 'jsonb' })
  subject!: AuditSubject;

  @Column({ type: 'jsonb' })
  details!: JsonObject;

  @Column({ name: 'study_id', type: 'uuid', nullable: true })
  studyId!: string | null;

  @Column({ name: 'silo_id', type: 'uuid', nullable: true })
  siloId!: string | null;

  @Column({ name: 'actor_id', type: 'text' })
  actorId!: string;
}

/** The record exactly as it was hashed (the filter columns left out). */
export function toAuditRecord(e: AuditRecordEntity): AuditRecord {
  return {
    seq: e.seq,
    prevHash: e.prevHash,
    time: e.time,
    actor: e.actor,
    action: e.action,
    subject: e.subject,
    details: e.details,
    hash: e.hash,
  };
}
