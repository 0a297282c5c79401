import type { PrivacySpend } from '@tessera/protocol';
import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** One silo's privacy spend in one round, as the hub computed it, beside what the silo reported. */
@Entity('privacy_ledger')
export class PrivacyLedgerEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'study_id', type: 'uuid' })
  studyId!: string;

  @Column({ name: 'silo_id', type: 'uuid' })
  siloId!: string;

  @Column({ type: 'integer' })
  round!: number;

  @Column({ type: 'integer' })
  attempt!: number;

  @Column({ type: 'varchar', length: 10 })
  mechanism!: 'dp-sgd' | 'dp-fedavg';

  @Column({ type: 'varchar', length: 8 })
  unit!: 'record' | 'silo';

  @Column({ name: 'noise_multiplier', type: 'double precision' })
  noiseMultiplier!: number;

  @Column({ name: 'clip_norm', type: 'double precision' })
  clipNorm!: number;

  @Column({ name: 'sampling_rate', type: 'double precision' })
  samplingRate!: number;

  @Column({ type: 'integer' })
  steps!: number;

  @Column({ type: 'double precision' })
  delta!: number;

  /** How many rounds of this study the silo has spent privacy on, this one included. */
  @Column({ name: 'rounds_spent', type: 'integer' })
  roundsSpent!: number;

  @Column({ name: 'epsilon_round', type: 'double precision' })
  epsilonRound!: number;

  @Column({ name: 'epsilon_cumulative', type: 'double precision' })
  epsilonCumulative!: number;

  @Column({ type: 'varchar', length: 64 })
  accountant!: string;

  /** What the silo's agent reported; `agrees` is false when it differs from the hub's computation. */
  @Column({ type: 'jsonb', nullable: true })
  reported!: PrivacySpend | null;

  @Column({ type: 'boolean' })
  agrees!: boolean;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
