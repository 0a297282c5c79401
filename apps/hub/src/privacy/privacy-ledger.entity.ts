import type { PrivacySpend } from '@tessera/protocol';
import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn } from 'typeorm';

/**
 * One privacy charge: a task the hub issued to a silo that makes it spend privacy (a training round, a noisy
 * evaluation), as the hub computed it when it issued the task, beside what the silo reported later. At most one
 * per study, silo, round and task kind (migration 1763800600000).
 */
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

  /** The attempt that issued the task (a retried attempt of the same round charges nothing more). */
  @Column({ type: 'integer' })
  attempt!: number;

  /** The kind of task charged. */
  @Column({ type: 'varchar', length: 8 })
  kind!: 'train' | 'evaluate';

  /** 'issued': charged when the task was issued; 'accepted': a row from before issue 13, charged on acceptance. */
  @Column({ name: 'charged_on', type: 'varchar', length: 8 })
  chargedOn!: 'issued' | 'accepted';

  /** Training rounds this charge adds (0 or 1). */
  @Column({ name: 'training_added', type: 'integer' })
  trainingAdded!: number;

  /** Noisy evaluation releases this charge adds (0 or 1). */
  @Column({ name: 'evaluation_added', type: 'integer' })
  evaluationAdded!: number;

  /** Personalization charges this charge adds (0 or 1; migration 1763801953917). */
  @Column({ name: 'personalization_added', type: 'integer', default: 0 })
  personalizationAdded!: number;

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

  /** DP-SGD steps (or DP-FedAvg releases) of one training round. */
  @Column({ type: 'integer' })
  steps!: number;

  @Column({ type: 'double precision' })
  delta!: number;

  /** Training rounds the silo has been charged for in this study after this charge (the hub's figure). */
  @Column({ name: 'training_rounds', type: 'integer' })
  trainingRounds!: number;

  /** Noisy evaluation releases charged in this study after this charge (the hub's figure). */
  @Column({ name: 'evaluation_releases', type: 'integer' })
  evaluationReleases!: number;

  /** ε this charge added to the study's charged ε (max of training and evaluation parts). */
  @Column({ name: 'epsilon_round', type: 'double precision' })
  epsilonRound!: number;

  /** The study's charged ε for the silo after this charge, at `delta`. */
  @Column({ name: 'epsilon_cumulative', type: 'double precision' })
  epsilonCumulative!: number;

  @Column({ type: 'varchar', length: 64 })
  accountant!: string;

  /** What the silo's agent reported for this task (null until it does, or if it never does). */
  @Column({ type: 'jsonb', nullable: true })
  reported!: PrivacySpend | null;

  /** Whether the report agrees with this charge (null until a report arrives). */
  @Column({ type: 'boolean', nullable: true })
  agrees!: boolean | null;

  @Column({ name: 'reported_at', type: 'timestamptz', nullable: true })
  reportedAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
