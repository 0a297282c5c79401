import { Column, CreateDateColumn, Entity, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

export type SiloStatus = 'registered' | 'enrolled' | 'suspended';

/** A hospital taking part in studies, known by the certificates the hub issued to its agent. */
@Entity('silos')
export class SiloEntity {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ type: 'varchar', length: 128 })
  name!: string;

  /** Who to call at the hospital (IT team): free text, never patient data. */
  @Column({ type: 'varchar', length: 256 })
  contact!: string;

  @Column({ type: 'enum', enum: ['registered', 'enrolled', 'suspended'], enumName: 'silo_status' })
  status!: SiloStatus;

  @Column({ name: 'suspended_reason', type: 'text', nullable: true })
  suspendedReason!: string | null;

  @Column({ name: 'last_seen_at', type: 'timestamptz', nullable: true })
  lastSeenAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
