import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createCertificateAuthority,
  decryptPrivateKeyAsync,
  encryptPrivateKeyAsync,
  generateKeyPairAsync,
  parseCertificate,
} from '@tessera/pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import type { HubConfig } from '../config/config.schema';
import { HubPkiService } from './hub-pki.service';
import { InMemoryPki } from './in-memory-pki.test-util';
import type { PkiKeyPrefetch } from './pki-key-prefetch';
import type { PkiRepository } from './pki.repository';

const PASSPHRASE = 'a passphrase for the unit spec';
const BOOT = new Date('2026-12-07T12:00:00.000Z');

let caKeyPem: string;
let serverKeyPem: string;
const dirs: string[] = [];

beforeAll(async () => {
  // Keys made once: each boot certifies these instead of searching for primes of its own.
  [caKeyPem, serverKeyPem] = await Promise.all([
    generateKeyPairAsync({ modulusBits: 2048 }).then((k) => k.privateKeyPem),
    generateKeyPairAsync({ modulusBits: 2048 }).then((k) => k.privateKeyPem),
  ]);
});
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-pki-unit-'));
  dirs.push(dir);
  return dir;
}

/** One store (the database) that several hubs (replicas, restarts) boot against, and the records they keep. */
function database() {
  const store = new InMemoryPki();
  const written: { event: AuditEvent; tx: number | undefined }[] = [];
  const audit = {
    record: (event: AuditEvent) => Promise.resolve(void written.push({ event, tx: store.openTransaction() })),
  } as unknown as AuditTrail;
  const records = () => written.filter((r) => r.tx === undefined || store.didCommit(r.tx)).map((r) => r.event);
  const hub = (config: Partial<HubConfig> = {}, recorder: AuditTrail = audit) =>
    new HubPkiService(
      store as unknown as PkiRepository,
      {
        caKeyPassphrase: PASSPHRASE,
        dataDir: tempDir(),
        serverNames: ['hub.example', '127.0.0.1'],
        ...config,
      } as HubConfig,
      recorder,
      { caKey: () => Promise.resolve(caKeyPem), serverKey: () => Promise.resolve(serverKeyPem) } as PkiKeyPrefetch,
    );
  return { store, records, hub };
}

// Each stored key costs 600,000 PBKDF2 rounds to encrypt or decrypt: a boot takes seconds on a loaded machine.
describe('HubPkiService over its repository', { timeout: 120_000 }, () => {
  it('creates the CA and its server certificate on a first boot, stores the keys encrypted, and records both', async () => {
    const db = database();
    const pki = db.hub();
    await pki.ensureReady(BOOT);
    const ca = db.store.row('silo-ca')!;
    const server = db.store.row('server')!;
    expect(ca.fingerprintSha256).toBe(pki.caFingerprintSha256());
    expect(ca.privateKeyEncryptedPem).not.toContain('BEGIN PRIVATE KEY');
    expect(await decryptPrivateKeyAsync(ca.privateKeyEncryptedPem, PASSPHRASE)).toBe(
      pki.certificateAuthority().privateKeyPem,
    );
    const credentials = pki.serverCredentials();
    const cert = new X509Certificate(credentials.certificatePem);
    expect(cert.checkIssued(new X509Certificate(credentials.caCertificatePem))).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(credentials.privateKeyPem))).toBe(true);
    expect(server.certificatePem).toBe(credentials.certificatePem);
    expect(db.records().map((r) => r.action)).toEqual(['pki.ca.created', 'pki.server-certificate.issued']);
    expect(db.store.writeLog).toEqual(['insert:silo-ca', 'save:server']);
  });

  it('finds the same CA and certificate after a restart, decrypted, and writes nothing', async () => {
    const db = database();
    const first = db.hub();
    await first.ensureReady(BOOT);
    const again = db.hub();
    await again.ensureReady(new Date(BOOT.getTime() + 86_400_000));
    expect(again.caFingerprintSha256()).toBe(first.caFingerprintSha256());
    expect(again.certificateAuthority()).toEqual(first.certificateAuthority());
    expect(again.serverCredentials()).toEqual(first.serverCredentials());
    expect(db.store.writeLog).toEqual(['insert:silo-ca', 'save:server']);
    expect(db.records()).toHaveLength(2);
  });

  it('two replicas booting together store one CA, and both serve it', async () => {
    const db = database();
    const [a, b] = [db.hub(), db.hub()];
    await Promise.all([a.ensureReady(BOOT), b.ensureReady(BOOT)]);
    expect(a.caFingerprintSha256()).toBe(b.caFingerprintSha256());
    expect(db.store.row('silo-ca')!.fingerprintSha256).toBe(a.caFingerprintSha256());
    expect(a.serverCredentials()).toEqual(b.serverCredentials());
    expect(db.records().map((r) => r.action)).toEqual(['pki.ca.created', 'pki.server-certificate.issued']);
    expect(db.store.lockLog).toHaveLength(2);
  });

  it('re-issues the server certificate under the same CA when its names change or it nears its end', async () => {
    const db = database();
    const first = db.hub();
    await first.ensureReady(BOOT);
    const renamed = db.hub({ serverNames: ['hub.example', 'hub2.example', '127.0.0.1'] });
    await renamed.ensureReady(BOOT);
    const dnsNames = parseCertificate(renamed.serverCredentials().certificatePem).dnsNames;
    expect([...dnsNames].sort()).toEqual(['hub.example', 'hub2.example']);
    expect(renamed.caFingerprintSha256()).toBe(first.caFingerprintSha256());
    const days = (n: number) => new Date(BOOT.getTime() + n * 86_400_000);
    const unchanged = db.hub({ serverNames: ['hub.example', 'hub2.example', '127.0.0.1'] });
    await unchanged.ensureReady(days(59)); // 31 days left of 90: kept
    expect(unchanged.serverCredentials().certificatePem).toBe(renamed.serverCredentials().certificatePem);
    const late = db.hub({ serverNames: ['hub.example', 'hub2.example', '127.0.0.1'] });
    await late.ensureReady(days(61)); // 29 days left: re-issued
    expect(late.serverCredentials().certificatePem).not.toBe(renamed.serverCredentials().certificatePem);
    expect(db.records().map((r) => r.action)).toEqual([
      'pki.ca.created',
      'pki.server-certificate.issued',
      'pki.server-certificate.issued',
      'pki.server-certificate.issued',
    ]);
  });

  it('keeps nothing of a first boot whose record could not be written', async () => {
    const db = database();
    const failing = { record: () => Promise.reject(new Error('audit trail unavailable')) } as unknown as AuditTrail;
    await expect(db.hub({}, failing).ensureReady(BOOT)).rejects.toThrow('audit trail unavailable');
    expect(await db.store.stored()).toEqual([]);
    const retried = db.hub();
    await retried.ensureReady(BOOT);
    expect(db.store.row('silo-ca')!.fingerprintSha256).toBe(retried.caFingerprintSha256());
  });

  it("takes an operator's CA from files over the hub's own, drops the certificate the old CA signed, and records it once", async () => {
    const db = database();
    const own = db.hub();
    await own.ensureReady(BOOT);
    const operatorCa = createCertificateAuthority({
      commonName: 'Operator CA',
      validityDays: 3650,
      now: BOOT,
      privateKeyPem: caKeyPem,
    });
    const dir = tempDir();
    const caCertificateFile = join(dir, 'ca.pem');
    const caKeyFile = join(dir, 'ca.key');
    writeFileSync(caCertificateFile, operatorCa.certificatePem);
    writeFileSync(caKeyFile, await encryptPrivateKeyAsync(operatorCa.privateKeyPem, PASSPHRASE));
    const operator = db.hub({ caCertificateFile, caKeyFile });
    await operator.ensureReady(BOOT);
    const fingerprint = parseCertificate(operatorCa.certificatePem).fingerprintSha256;
    expect(operator.caFingerprintSha256()).toBe(fingerprint);
    expect(db.store.row('silo-ca')!.fingerprintSha256).toBe(fingerprint);
    const cert = new X509Certificate(operator.serverCredentials().certificatePem);
    expect(cert.checkIssued(new X509Certificate(operatorCa.certificatePem))).toBe(true);
    await db.hub({ caCertificateFile, caKeyFile }).ensureReady(BOOT);
    expect(db.records().map((r) => [r.action, r.details?.previous])).toEqual([
      ['pki.ca.created', undefined],
      ['pki.server-certificate.issued', undefined],
      ['pki.ca.loaded', own.caFingerprintSha256()],
      ['pki.server-certificate.issued', undefined],
    ]);
    expect(db.store.writeLog.slice(2)).toEqual(['save:silo-ca', 'delete:server', 'save:server']);
  });
});
