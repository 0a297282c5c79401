import { createPrivateKey, type KeyObject } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { generateSigningKey, publicKeyFingerprint } from '@tessera/audit';
import type { AuditSigningKeyView } from '@tessera/protocol';
import { resolveGeneratedSecret } from '../common/generated-secret';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import { SYSTEM_ACTOR } from './audit-trail';
import { AuditSigningKeyRepository } from './audit-signing-key.repository';

/** The hub's public audit key, as auditors pin it (`tessera-verify --public-key`). */
export interface HubPublicKey {
  publicKeyPem: string;
  /** SHA-256 (hex) of the DER SubjectPublicKeyInfo: `openssl pkey -pubin -outform DER | sha256sum`. */
  keyId: string;
}

export interface HubSigningKey extends HubPublicKey {
  privateKey: KeyObject;
}

/**
 * The hub's Ed25519 audit signing key (RFC 8032): made on first use, stored as an encrypted PKCS #8 PEM under the
 * hub's CA passphrase (TESSERA_CA_KEY_PASSPHRASE, or the generated one in the data directory), decrypted only in
 * memory. Version 1 of the audit format has no key rotation: the first key stays the key.
 */
@Injectable()
export class AuditSigningKeyService {
  private loaded: Promise<HubSigningKey> | undefined;

  constructor(
    private readonly store: AuditSigningKeyRepository,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
  ) {}

  /** The signing key, created (and its creation recorded in the chain) on first use. */
  signingKey(): Promise<HubSigningKey> {
    this.loaded ??= this.loadOrCreate().catch((err: unknown) => {
      this.loaded = undefined;
      throw err;
    });
    return this.loaded;
  }

  async publicKey(): Promise<HubPublicKey> {
    const { publicKeyPem, keyId } = await this.signingKey();
    return { publicKeyPem, keyId };
  }

  /** Every key the hub ever stored, oldest first, the current (signing) key marked; made on first use like signingKey. */
  async keyList(): Promise<AuditSigningKeyView[]> {
    const { keyId: current } = await this.signingKey();
    const rows = await this.store.all();
    return rows.map((r) => ({
      keyId: r.keyId,
      publicKeyPem: r.publicKeyPem,
      createdAt: r.createdAt.toISOString(),
      current: r.keyId === current,
    }));
  }

  /** Every key the hub ever stored, by key id: what stored checkpoints are verified with. */
  async publicKeys(): Promise<Map<string, string>> {
    const rows = await this.store.all();
    return new Map(rows.map((r) => [r.keyId, r.publicKeyPem]));
  }

  private passphrase(): string {
    return resolveGeneratedSecret(this.config.caKeyPassphrase, this.config.dataDir, 'ca.passphrase');
  }

  private async loadOrCreate(): Promise<HubSigningKey> {
    const passphrase = this.passphrase();
    const row = await this.store.inTransaction(async (tx) => {
      await tx.lockKeys();
      const existing = await tx.first();
      if (existing) return existing;
      const pair = generateSigningKey();
      const keyId = publicKeyFingerprint(pair.publicKeyPem);
      const privateKeyEncryptedPem = createPrivateKey(pair.privateKeyPem)
        .export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase })
        .toString();
      const created = await tx.insert({ keyId, publicKeyPem: pair.publicKeyPem, privateKeyEncryptedPem });
      await tx.record({
        actor: SYSTEM_ACTOR,
        action: 'audit.signing-key.created',
        details: { keyId, algorithm: 'Ed25519' },
      });
      return created;
    });
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey({ key: row.privateKeyEncryptedPem, format: 'pem', passphrase });
    } catch (err) {
      throw new Error(
        `cannot decrypt the audit signing key ${row.keyId} (was TESSERA_CA_KEY_PASSPHRASE changed?): ${(err as Error).message}`,
      );
    }
    if (publicKeyFingerprint(privateKey) !== row.keyId) {
      throw new Error(`the stored audit signing key does not match its key id ${row.keyId}`);
    }
    return { keyId: row.keyId, publicKeyPem: row.publicKeyPem, privateKey };
  }
}
