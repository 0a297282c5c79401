import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

export type CertificateStatus = 'active' | 'superseded' | 'revoked';

/** A client certificate the hub issued to a silo's agent. The agent's private key never reaches the hub. */
@Entity('silo_certificates')
export class SiloCertificateEntity {
  /** Serial number, lowercase hex. */
  @PrimaryColumn({ type: 'varchar', length: 64 })
  serial!: string;

  @Column({ name: 'silo_id', type: 'uuid' })
  siloId!: string;

  @Column({ name: 'fingerprint_sha256', type: 'char', length: 64 })
  fingerprintSha256!: string;

  @Column({ name: 'not_before', type: 'timestamptz' })
  notBefore!: Date;

  @Column({ name: 'not_after', type: 'timestamptz' })
  notAfter!: Date;

  /**
   * The enrollment certificate and every renewal descending from it share one lineage: revoking any of them revokes
   * them all, so a renewal obtained with a stolen key cannot outlive the revocation of the key it came from.
   */
  @Column({ name: 'lineage_id', type: 'uuid' })
  lineageId!: string;

  /** The certificate a renewal was requested with; null for an enrollment (and for renewals from before lineages). */
  @Column({ name: 'parent_serial', type: 'varchar', length: 64, nullable: true })
  parentSerial!: string | null;

  /** SHA-256 of the certified key's SubjectPublicKeyInfo DER: a renewal must bring a key the silo never used. */
  @Column({ name: 'public_key_sha256', type: 'char', length: 64 })
  publicKeySha256!: string;

  @Column({ type: 'enum', enum: ['active', 'superseded', 'revoked'], enumName: 'certificate_status' })
  status!: CertificateStatus;

  @Column({ name: 'issued_via', type: 'varchar', length: 16 })
  issuedVia!: 'enrollment' | 'renewal';

  /** First request presented with it; a renewed certificate's first use supersedes its predecessor. */
  @Column({ name: 'first_used_at', type: 'timestamptz', nullable: true })
  firstUsedAt!: Date | null;

  @Column({ name: 'revoked_at', type: 'timestamptz', nullable: true })
  revokedAt!: Date | null;

  @Column({ name: 'revocation_reason', type: 'text', nullable: true })
  revocationReason!: string | null;

  @Column({ name: 'certificate_pem', type: 'text' })
  certificatePem!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
