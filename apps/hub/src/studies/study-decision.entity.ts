import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** A data steward's decision on one exact plan version, recorded when the silo's agent sends it. */
@Entity('study_decisions')
export class StudyDecisionEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'study_id', type: 'uuid' })
  studyId!: string;

  @Column({ name: 'silo_id', type: 'uuid' })
  siloId!: string;

  @Column({ name: 'plan_version', type: 'integer' })
  planVersion!: number;

  @Column({ name: 'plan_hash', type: 'char', length: 64 })
  planHash!: string;

  @Column({ type: 'varchar', length: 8 })
  decision!: 'approve' | 'reject';

  @Column({ type: 'text', nullable: true })
  reason!: string | null;

  @Column({ name: 'decided_at', type: 'timestamptz' })
  decidedAt!: Date;
}
