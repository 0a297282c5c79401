import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/**
 * The hub's Ed25519 key for checkpoints, receipts and report bundles. The private key is kept only as an encrypted
 * PKCS #8 PEM (the passphrase of TESSERA_CA_KEY_PASSPHRASE) and decrypted in memory. Append-only.
 */
@Entity('audit_signing_keys')
export class AuditSigningKeyEntity {
  /** publicKeyFingerprint: SHA-256 (hex) of the DER SubjectPublicKeyInfo. */
  @PrimaryColumn({ name: 'key_id', type: 'char', length: 64 })
  keyId!: string;

  @Column({ name: 'public_key_pem', type: 'text' })
  publicKeyPem!: string;

  @Column({ name: 'private_key_encrypted_pem', type: 'text' })
  privateKeyEncryptedPem!: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
