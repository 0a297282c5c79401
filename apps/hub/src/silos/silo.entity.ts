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

  /** Last request seen on the silo listener (mutual TLS); written by SiloPresence. */
  @Column({ name: 'last_seen_at', type: 'timestamptz', nullable: true })
  lastSeenAt!: Date | null;

  /** Last request seen on the enrollment listener with one of this silo's tokens. */
  @Column({ name: 'enroll_last_seen_at', type: 'timestamptz', nullable: true })
  enrollLastSeenAt!: Date | null;

  /** What the agent last said about itself (x-tessera-agent): release, os-arch, Node.js version. */
  @Column({ name: 'agent_version', type: 'varchar', length: 40, nullable: true })
  agentVersion!: string | null;

  @Column({ name: 'agent_platform', type: 'varchar', length: 40, nullable: true })
  agentPlatform!: string | null;

  @Column({ name: 'agent_node', type: 'varchar', length: 40, nullable: true })
  agentNode!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
