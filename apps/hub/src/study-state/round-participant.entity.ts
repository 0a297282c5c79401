import type { EvaluationMetrics, FailureReport, PersonalizationMetrics, PrivacySpend } from '@tessera/protocol';
import { Column, Entity, PrimaryColumn } from 'typeorm';

export type ParticipantStatus = 'waiting' | 'uploaded' | 'evaluated' | 'failed' | 'late';

/** One silo in one round attempt: what it reported (hashes, counts, metrics — never data). */
@Entity('round_participants')
export class RoundParticipantEntity {
  @PrimaryColumn({ name: 'round_id', type: 'uuid' })
  roundId!: string;

  @PrimaryColumn({ name: 'silo_id', type: 'uuid' })
  siloId!: string;

  @Column({ type: 'varchar', length: 10 })
  status!: ParticipantStatus;

  /** sha256 of the whole framed upload (header and payload): the blob's name. */
  @Column({ name: 'update_hash', type: 'char', length: 64, nullable: true })
  updateHash!: string | null;

  @Column({ name: 'update_bytes', type: 'bigint', nullable: true })
  updateBytes!: string | null;

  @Column({ name: 'num_examples', type: 'integer', nullable: true })
  numExamples!: number | null;

  @Column({ name: 'l2_norm', type: 'double precision', nullable: true })
  l2Norm!: number | null;

  @Column({ name: 'train_loss', type: 'double precision', nullable: true })
  trainLoss!: number | null;

  @Column({ type: 'jsonb', nullable: true })
  evaluation!: EvaluationMetrics | null;

  /**
   * The final evaluation of a personalizing plan: the figures of the silo's personalized model and, when planned, of
   * its local-only baseline (migration 1763801953917). Null otherwise.
   */
  @Column({ type: 'jsonb', nullable: true })
  personalization!: PersonalizationMetrics | null;

  @Column({ type: 'jsonb', nullable: true })
  privacy!: PrivacySpend | null;

  @Column({ type: 'jsonb', nullable: true })
  failure!: Pick<FailureReport, 'code' | 'message'> | null;

  @Column({ name: 'reported_at', type: 'timestamptz', nullable: true })
  reportedAt!: Date | null;
}
