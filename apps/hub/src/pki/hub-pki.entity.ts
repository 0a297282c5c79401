import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** The hub's own CA and TLS server certificate, private keys encrypted with TESSERA_CA_KEY_PASSPHRASE. */
@Entity('hub_pki')
export class HubPkiEntity {
  /** 'silo-ca' or 'server'. */
  @PrimaryColumn({ type: 'varchar', length: 32 })
  name!: string;

  @Column({ name: 'certificate_pem', type: 'text' })
  certificatePem!: string;

  /** PKCS#8 encrypted PEM; never logged, never served. */
  @Column({ name: 'private_key_encrypted_pem', type: 'text' })
  privateKeyEncryptedPem!: string;

  @Column({ name: 'fingerprint_sha256', type: 'char', length: 64 })
  fingerprintSha256!: string;

  @Column({ name: 'not_after', type: 'timestamptz' })
  notAfter!: Date;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
