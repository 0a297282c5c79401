import type { StudyPlan, StudyStatus } from '@tessera/protocol';
import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

/** The privacy mechanism the hub derived for a DP plan, shown to stewards before they approve. */
export interface PrivacyCost {
  mechanism: 'dp-sgd' | 'dp-fedavg';
  unit: 'record' | 'silo';
  /** σ, relative to the clipping norm C. */
  noiseMultiplier: number;
  clipNorm: number;
  samplingRate: number;
  stepsPerRound: number;
  rounds: number;
  /** ε of the whole planned study at δ. */
  epsilon: number;
  targetEpsilon: number;
  delta: number;
  accountant: string;
}

/** A round attempt the closer would have opened, held back while the study is paused. */
export interface HeldRound {
  number: number;
  attempt: number;
  kind: 'train' | 'evaluate';
  modelHash: string;
}

@Entity('studies')
export class StudyEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'varchar', length: 128 })
  name!: string;

  @Column({
    type: 'enum',
    enum: ['draft', 'awaiting_approvals', 'running', 'completed', 'stopped', 'failed'],
    enumName: 'study_status',
  })
  status!: StudyStatus;

  @Column({ name: 'plan_version', type: 'integer' })
  planVersion!: number;

  @Column({ name: 'plan_hash', type: 'char', length: 64 })
  planHash!: string;

  /**
   * The plan as approved, never rewritten. A row written by an earlier release may hold a plan of an earlier format
   * (migration LegacyStudyPlans1763800700000): check it with storedPlanOf (stored-plan.util) before reading anything
   * the current format added.
   */
  @Column({ type: 'jsonb' })
  plan!: StudyPlan;

  @Column({ name: 'privacy_cost', type: 'jsonb', nullable: true })
  privacyCost!: PrivacyCost | null;

  /** Silos taking part: those that approved the plan version the study started with. */
  @Column({ type: 'jsonb' })
  participants!: string[];

  @Column({ name: 'current_model_hash', type: 'char', length: 64, nullable: true })
  currentModelHash!: string | null;

  @Column({ name: 'optimizer_state_hash', type: 'char', length: 64, nullable: true })
  optimizerStateHash!: string | null;

  /** SCAFFOLD plans: the hub's control variate c (a float32 blob; ADR 0019); null means c = 0. */
  @Column({ name: 'control_variate_hash', type: 'char', length: 64, nullable: true })
  controlVariateHash!: string | null;

  @Column({ name: 'end_reason', type: 'text', nullable: true })
  endReason!: string | null;

  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy!: string | null;

  @Column({ name: 'started_at', type: 'timestamptz', nullable: true })
  startedAt!: Date | null;

  @Column({ name: 'ended_at', type: 'timestamptz', nullable: true })
  endedAt!: Date | null;

  /** Set while paused by an administrator: no new round opens (migration StudyPages1763801687342). */
  @Column({ name: 'paused_at', type: 'timestamptz', nullable: true })
  pausedAt!: Date | null;

  @Column({ name: 'pause_reason', type: 'text', nullable: true })
  pauseReason!: string | null;

  /** The round the closer held back while the study was paused; opened on resume. */
  @Column({ name: 'paused_next_round', type: 'jsonb', nullable: true })
  pausedNextRound!: HeldRound | null;

  /** Archived: read-only, left out of the default list. */
  @Column({ name: 'archived_at', type: 'timestamptz', nullable: true })
  archivedAt!: Date | null;

  @Column({ name: 'cloned_from', type: 'uuid', nullable: true })
  clonedFrom!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
