import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificateAuthority, encryptPrivateKey, generateKeyPair } from '@tessera/pki';
import { afterAll, describe, expect, it } from 'vitest';
import { loadHubConfig } from '../config/hub-config';
import { startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { HubPkiService } from './hub-pki.service';
import { PkiKeyPrefetch } from './pki-key-prefetch';

/** What a hub's TLS listeners present, and the key that goes with it. */
function credentialsOf(hub: TestHub) {
  const credentials = hub.app.get(HubPkiService).serverCredentials();
  const server = new X509Certificate(credentials.certificatePem);
  const ca = new X509Certificate(credentials.caCertificatePem);
  return { credentials, server, ca };
}

describe('the hub PKI on the embedded database', () => {
  const dirs: string[] = [];
  const tempDir = (prefix: string) => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('makes its CA and server keys on a first boot, and finds the same ones, decrypted, after a restart', async () => {
    const dataDir = tempDir('tessera-pki-');
    const first = await startTestHub('embedded', { dataDir });
    let fingerprint: string;
    let serverPem: string;
    try {
      const { credentials, server, ca } = credentialsOf(first);
      expect(server.checkIssued(ca)).toBe(true);
      expect(server.verify(ca.publicKey)).toBe(true);
      expect(server.checkPrivateKey(createPrivateKey(credentials.privateKeyPem))).toBe(true);
      expect(ca.publicKey.asymmetricKeyDetails?.modulusLength).toBe(3072);
      expect(server.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
      fingerprint = first.app.get(HubPkiService).caFingerprintSha256();
      serverPem = credentials.certificatePem;
    } finally {
      await first.stop();
    }

    const second = await startTestHub('embedded', { dataDir });
    try {
      const { credentials, server } = credentialsOf(second);
      expect(second.app.get(HubPkiService).caFingerprintSha256()).toBe(fingerprint);
      expect(credentials.certificatePem).toBe(serverPem);
      expect(server.checkPrivateKey(createPrivateKey(credentials.privateKeyPem))).toBe(true);
      const ca = second.app.get(HubPkiService).certificateAuthority();
      expect(new X509Certificate(ca.certificatePem).checkPrivateKey(createPrivateKey(ca.privateKeyPem))).toBe(true);
    } finally {
      await second.stop();
    }
  });

  it('uses an operator CA from files, and issues its server certificate under it', async () => {
    const dataDir = tempDir('tessera-pki-operator-');
    const files = tempDir('tessera-pki-files-');
    const passphrase = 'an operator passphrase of some length';
    const operatorCa = createCertificateAuthority({
      commonName: 'Operator CA',
      validityDays: 365,
      privateKeyPem: generateKeyPair().privateKeyPem,
    });
    mkdirSync(files, { recursive: true });
    writeFileSync(join(files, 'ca.pem'), operatorCa.certificatePem);
    writeFileSync(join(files, 'ca.key'), encryptPrivateKey(operatorCa.privateKeyPem, passphrase));
    const env = {
      TESSERA_CA_CERT_FILE: join(files, 'ca.pem'),
      TESSERA_CA_KEY_FILE: join(files, 'ca.key'),
      TESSERA_CA_KEY_PASSPHRASE: passphrase,
    };
    const hub = await startTestHub('embedded', { dataDir, env });
    try {
      const { server } = credentialsOf(hub);
      expect(server.verify(new X509Certificate(operatorCa.certificatePem).publicKey)).toBe(true);
    } finally {
      await hub.stop();
    }
  });
});

describe('PkiKeyPrefetch.startEarly', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tessera-prefetch-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));
  const config = (env: Record<string, string> = {}) => loadHubConfig({ TESSERA_DATA_DIR: dataDir, ...env });

  it('starts the keys on a first boot of the embedded database only', async () => {
    const fresh = PkiKeyPrefetch.startEarly(config());
    expect(fresh.started).toBe(true);
    const key = createPrivateKey(await fresh.caKey());
    expect(key.asymmetricKeyDetails?.modulusLength).toBe(3072);
    expect(fresh.started).toBe(false);
    expect(createPrivateKey(await fresh.serverKey()).asymmetricKeyDetails?.modulusLength).toBe(2048);

    expect(PkiKeyPrefetch.startEarly(config({ DATABASE_URL: 'postgres://x@127.0.0.1/y' })).started).toBe(false);
    expect(
      PkiKeyPrefetch.startEarly(
        config({
          TESSERA_CA_CERT_FILE: '/nonexistent',
          TESSERA_CA_KEY_FILE: '/nonexistent',
          TESSERA_CA_KEY_PASSPHRASE: 'an operator passphrase of some length',
        }),
      ).started,
    ).toBe(false);
    mkdirSync(join(dataDir, 'pgdata'), { recursive: true });
    writeFileSync(join(dataDir, 'pgdata', 'PG_VERSION'), '17\n');
    expect(PkiKeyPrefetch.startEarly(config()).started).toBe(false);
  });
});
