import { Inject, Injectable, Optional } from '@nestjs/common';
import {
  createCertificateAuthority,
  decryptPrivateKeyAsync,
  encryptPrivateKeyAsync,
  issueServerCertificate,
  parseCertificate,
  type CertificateAuthority,
} from '@tessera/pki';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { AuditTrail, SYSTEM_ACTOR } from '../audit/audit-trail';
import { resolveGeneratedSecret } from '../common/generated-secret';
import type { HubConfig } from '../config/config.schema';
import { HUB_CONFIG } from '../config/hub-config';
import type { HubPkiEntity } from './hub-pki.entity';
import { PkiKeyPrefetch } from './pki-key-prefetch';
import { PkiRepository, type PkiUnitOfWork } from './pki.repository';

const CA_VALIDITY_DAYS = 3650;
/** The hub re-issues its own TLS certificate at boot when less than this remains, or when its names changed. */
const SERVER_RENEW_BEFORE_MS = 30 * 86_400_000;

/** Everything a TLS listener needs. */
export interface ServerCredentials {
  certificatePem: string;
  privateKeyPem: string;
  caCertificatePem: string;
}

/**
 * The hub's certificate authority for silos, and the hub's own TLS certificate signed by it. Created on first boot,
 * kept in PostgreSQL with private keys encrypted under TESSERA_CA_KEY_PASSPHRASE, decrypted only in memory.
 */
@Injectable()
export class HubPkiService {
  private ca: CertificateAuthority | undefined;
  private server: ServerCredentials | undefined;
  private caFingerprint = '';

  constructor(
    private readonly rows: PkiRepository,
    @Inject(HUB_CONFIG) private readonly config: HubConfig,
    private readonly audit: AuditTrail,
    @Optional() keys?: PkiKeyPrefetch,
  ) {
    this.keys = keys ?? new PkiKeyPrefetch();
  }

  private readonly keys: PkiKeyPrefetch;
  /** Decryptions started before the PKI lock, by encrypted PEM: both keys' derivations run at once (restarts). */
  private decryptions = new Map<string, Promise<string>>();

  /** Loads (or on first boot creates) the CA and the server certificate. Idempotent. */
  async ensureReady(now = new Date()): Promise<void> {
    const passphrase = resolveGeneratedSecret(this.config.caKeyPassphrase, this.config.dataDir, 'ca.passphrase');
    // Each stored key costs 600,000 PBKDF2 rounds to decrypt: start both on the thread pool before taking the lock.
    // What the locked transaction finds is then decrypted already, unless another replica changed it meanwhile.
    const stored = await this.rows.stored();
    for (const row of stored) this.decrypted(row.privateKeyEncryptedPem, passphrase).catch(() => undefined);
    try {
      // Under the PKI lock: two replicas booting together must not both create a CA.
      await this.rows.underPkiLock(async (tx) => {
        const ca = await this.loadOrCreateCa(tx, passphrase, now);
        this.ca = ca;
        this.caFingerprint = parseCertificate(ca.certificatePem).fingerprintSha256;
        this.server = await this.loadOrIssueServer(tx, ca, passphrase, now);
      });
    } finally {
      this.decryptions.clear();
    }
  }

  /** The stored key decrypted, on the thread pool; one derivation per encrypted PEM while ensureReady runs. */
  private decrypted(encryptedPem: string, passphrase: string): Promise<string> {
    let decryption = this.decryptions.get(encryptedPem);
    if (!decryption) {
      decryption = decryptPrivateKeyAsync(encryptedPem, passphrase);
      this.decryptions.set(encryptedPem, decryption);
    }
    return decryption;
  }

  certificateAuthority(): CertificateAuthority {
    if (!this.ca) throw new Error('the hub PKI is not loaded yet');
    return this.ca;
  }

  caFingerprintSha256(): string {
    this.certificateAuthority();
    return this.caFingerprint;
  }

  serverCredentials(): ServerCredentials {
    if (!this.server) throw new Error('the hub PKI is not loaded yet');
    return this.server;
  }

  private async loadOrCreateCa(tx: PkiUnitOfWork, passphrase: string, now: Date): Promise<CertificateAuthority> {
    const existing = await tx.ca();
    if (this.config.caCertificateFile && this.config.caKeyFile) {
      return this.caFromFiles(tx, existing, passphrase, this.config.caCertificateFile, this.config.caKeyFile);
    }
    if (existing) {
      return {
        certificatePem: existing.certificatePem,
        privateKeyPem: await this.decrypted(existing.privateKeyEncryptedPem, passphrase),
      };
    }
    const ca = createCertificateAuthority({
      commonName: 'Tessera silo CA',
      validityDays: CA_VALIDITY_DAYS,
      now,
      privateKeyPem: await this.keys.caKey(),
    });
    const parsed = parseCertificate(ca.certificatePem);
    await tx.insertCa({
      certificatePem: ca.certificatePem,
      privateKeyEncryptedPem: await encryptPrivateKeyAsync(ca.privateKeyPem, passphrase),
      fingerprintSha256: parsed.fingerprintSha256,
      notAfter: parsed.notAfter,
    });
    await this.audit.record({
      actor: SYSTEM_ACTOR,
      action: 'pki.ca.created',
      details: { fingerprintSha256: parsed.fingerprintSha256, notAfter: parsed.notAfter.toISOString() },
    });
    return ca;
  }

  /** An operator-provided CA (an organisation's own, or a restored backup): recorded so the fingerprint is known. */
  private async caFromFiles(
    tx: PkiUnitOfWork,
    existing: HubPkiEntity | null,
    passphrase: string,
    certFile: string,
    keyFile: string,
  ): Promise<CertificateAuthority> {
    const certificatePem = readFileSync(certFile, 'utf8');
    const encrypted = readFileSync(keyFile, 'utf8');
    const ca = { certificatePem, privateKeyPem: await decryptPrivateKeyAsync(encrypted, passphrase) };
    const parsed = parseCertificate(certificatePem);
    if (!parsed.isCa) throw new Error(`${certFile} is not a CA certificate`);
    if (existing?.fingerprintSha256 !== parsed.fingerprintSha256) {
      await tx.replaceCa({
        certificatePem,
        privateKeyEncryptedPem: encrypted,
        fingerprintSha256: parsed.fingerprintSha256,
        notAfter: parsed.notAfter,
      });
      // A different CA invalidates the server certificate signed by the previous one.
      await tx.dropServer();
      await this.audit.record({
        actor: SYSTEM_ACTOR,
        action: 'pki.ca.loaded',
        details: { fingerprintSha256: parsed.fingerprintSha256, previous: existing?.fingerprintSha256 ?? null },
      });
    }
    return ca;
  }

  private async loadOrIssueServer(
    tx: PkiUnitOfWork,
    ca: CertificateAuthority,
    passphrase: string,
    now: Date,
  ): Promise<ServerCredentials> {
    const hostnames = this.config.serverNames.filter((n) => isIP(n) === 0);
    const ips = this.config.serverNames.filter((n) => isIP(n) !== 0);
    const existing = await tx.server();
    if (existing) {
      const parsed = parseCertificate(existing.certificatePem);
      const sameNames =
        [...parsed.dnsNames].sort().join() === [...hostnames].sort().join() &&
        [...parsed.ipAddresses].sort().join() === [...ips].sort().join();
      if (sameNames && parsed.notAfter.getTime() - now.getTime() > SERVER_RENEW_BEFORE_MS) {
        return {
          certificatePem: existing.certificatePem,
          privateKeyPem: await this.decrypted(existing.privateKeyEncryptedPem, passphrase),
          caCertificatePem: ca.certificatePem,
        };
      }
    }
    const issued = issueServerCertificate({ ca, hostnames, ips, now, privateKeyPem: await this.keys.serverKey() });
    await tx.saveServer({
      certificatePem: issued.certificatePem,
      privateKeyEncryptedPem: await encryptPrivateKeyAsync(issued.privateKeyPem, passphrase),
      fingerprintSha256: issued.fingerprintSha256,
      notAfter: issued.notAfter,
    });
    await this.audit.record({
      actor: SYSTEM_ACTOR,
      action: 'pki.server-certificate.issued',
      details: { serial: issued.serialHex, names: this.config.serverNames, notAfter: issued.notAfter.toISOString() },
    });
    return {
      certificatePem: issued.certificatePem,
      privateKeyPem: issued.privateKeyPem,
      caCertificatePem: ca.certificatePem,
    };
  }
}
