import type { StudyPlan } from '@tessera/protocol';
import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** Every version a study's plan has had: approvals name a version and its hash. */
@Entity('study_plan_versions')
export class StudyPlanVersionEntity {
  @PrimaryColumn({ name: 'study_id', type: 'uuid' })
  studyId!: string;

  @PrimaryColumn({ type: 'integer' })
  version!: number;

  @Column({ name: 'plan_hash', type: 'char', length: 64 })
  planHash!: string;

  @Column({ type: 'jsonb' })
  plan!: StudyPlan;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
