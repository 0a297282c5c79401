import { Column, Entity, PrimaryColumn } from 'typeorm';

/** The protocol stage a silo's message belongs to. */
export type SecAggMessageStage = 'advertise' | 'share' | 'upload' | 'unmask';

/**
 * One silo's message at one stage, as received: a key advertisement, a share message (its shares encrypted to their
 * recipients), a masked-input header (never its vector, which went into the running sum), or an unmasking response.
 */
@Entity('secagg_messages')
export class SecAggMessageEntity {
  @PrimaryColumn({ name: 'round_id', type: 'uuid' })
  roundId!: string;

  @PrimaryColumn({ name: 'silo_id', type: 'uuid' })
  siloId!: string;

  @PrimaryColumn({ type: 'varchar', length: 10 })
  stage!: SecAggMessageStage;

  @Column({ type: 'jsonb' })
  body!: Record<string, unknown>;

  @Column({ name: 'received_at', type: 'timestamptz' })
  receivedAt!: Date;
}
