import type { SecAggStageName } from '@tessera/protocol';
import type {
  KeyAdvertisement,
  ParticipantExclusion,
  SecAggConfig,
  ShareRouting,
  UnmaskingPlan,
} from '@tessera/secagg';
import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * One round attempt run under secure aggregation: everything the hub decided so far, none of it secret. The masked
 * sum is the running sum of accepted masked inputs (packed with encodeMaskedVector); no individual input is kept.
 */
@Entity('secagg_sessions')
export class SecAggSessionEntity {
  @PrimaryColumn({ name: 'round_id', type: 'uuid' })
  roundId!: string;

  @Column({ type: 'jsonb' })
  config!: SecAggConfig;

  @Column({ name: 'config_hash', type: 'char', length: 64 })
  configHash!: string;

  @Column({ type: 'varchar', length: 10 })
  stage!: SecAggStageName;

  @Column({ name: 'advertise_until', type: 'timestamptz' })
  advertiseUntil!: Date;

  @Column({ name: 'share_until', type: 'timestamptz' })
  shareUntil!: Date;

  @Column({ name: 'upload_until', type: 'timestamptz' })
  uploadUntil!: Date;

  @Column({ name: 'unmask_until', type: 'timestamptz' })
  unmaskUntil!: Date;

  /** The advertisements accepted when the advertise stage closed (relayed to every participant). */
  @Column({ type: 'jsonb', nullable: true })
  advertised!: KeyAdvertisement[] | null;

  /** Every silo set aside so far, with the stage and the reason. */
  @Column({ type: 'jsonb' })
  exclusions!: ParticipantExclusion[];

  @Column({ type: 'jsonb', nullable: true })
  routing!: ShareRouting | null;

  @Column({ name: 'unmasking_plan', type: 'jsonb', nullable: true })
  unmaskingPlan!: UnmaskingPlan | null;

  @Column({ name: 'masked_sum', type: 'bytea', nullable: true })
  maskedSum!: Buffer | null;

  @Column({ type: 'jsonb' })
  contributors!: string[];

  @Column({ type: 'text', nullable: true })
  failure!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
