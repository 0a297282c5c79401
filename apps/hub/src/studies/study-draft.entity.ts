import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

/** A study wizard's form as an administrator typed it, saved as it is edited (migration StudyPages1763801687342). */
@Entity('study_drafts')
export class StudyDraftEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'varchar', length: 200 })
  title!: string;

  /** A draft of a new plan version of this study; null for a new study. */
  @Column({ name: 'study_id', type: 'uuid', nullable: true })
  studyId!: string | null;

  /** The console's PlanDraft, opaque to the hub (text fields as typed, never judged until it becomes a plan). */
  @Column({ type: 'jsonb' })
  form!: Record<string, unknown>;

  @Column({ type: 'integer' })
  step!: number;

  @Column({ name: 'created_by', type: 'uuid' })
  createdBy!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
