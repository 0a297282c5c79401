import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createCertificateAuthority,
  createCsr,
  encryptPrivateKey,
  generateKeyPair,
  issueSiloCertificate,
  parseCertificate,
  type KeyPairPem,
} from '@tessera/pki';
import { SILO_API, type EnrollmentBundle } from '@tessera/protocol';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubPkiService } from '../pki/hub-pki.service';
import { runAgent, tlsCall } from '../testing/agent-process.test-util';
import { ADMIN, DATABASE_KINDS, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { EnrollmentTokenEntity } from './enrollment-token.entity';
import { hashToken, type EnrollmentIssued } from './silos.service';

interface AgentDir {
  dir: string;
  env: Record<string, string>;
}

function identityOf(agent: AgentDir): { key: string; cert: string; serial: string } {
  const idDir = join(agent.dir, 'identity');
  const record = JSON.parse(readFileSync(join(idDir, 'identity.json'), 'utf8')) as {
    keyFile: string;
    certificateFile: string;
    serial: string;
  };
  return {
    key: readFileSync(join(idDir, record.keyFile), 'utf8'),
    cert: readFileSync(join(idDir, record.certificateFile), 'utf8'),
    serial: record.serial,
  };
}

describe.each(DATABASE_KINDS)('silo identity on the %s database', (kind) => {
  let hub: TestHub;
  let admin: Record<string, string>;
  let caPem: string;
  let siloKeys: KeyPairPem;
  const dirs: string[] = [];

  function newAgent(): AgentDir {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-agent-'));
    dirs.push(dir);
    return { dir, env: { TESSERA_STATE_DIR: dir } };
  }

  async function register(name: string): Promise<EnrollmentIssued> {
    const res = await api(hub, 'POST', '/api/silos', { headers: admin, json: { name, contact: 'it@example.org' } });
    expect(res.status).toBe(201);
    return res.body as EnrollmentIssued;
  }

  async function enrollRaw(bundle: EnrollmentBundle, csrPem: string) {
    return tlsCall(hub.enrollUrl, 'POST', SILO_API.enroll, caPem, {}, { token: bundle.token, csrPem });
  }

  async function tokenState(bundle: EnrollmentBundle) {
    return hub.app
      .get(DataSource)
      .getRepository(EnrollmentTokenEntity)
      .findOneOrFail({ where: { tokenHash: hashToken(bundle.token) } });
  }

  beforeAll(async () => {
    hub = await startTestHub(kind);
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    caPem = hub.app.get(HubPkiService).serverCredentials().caCertificatePem;
    siloKeys = generateKeyPair();
  });
  afterAll(async () => {
    await hub?.dispose();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('enrolls two agents in separate processes, each reaching its own identity over mutual TLS', async () => {
    const [a, b] = await Promise.all([register(`Hospital A ${kind}`), register(`Hospital B ${kind}`)]);
    expect(a.bundle.token.length).toBeGreaterThanOrEqual(43); // 256 bits, base64url
    expect(a.bundle.caFingerprintSha256).toBe(parseCertificate(caPem).fingerprintSha256);
    const agentA = newAgent();
    const agentB = newAgent();
    const [ea, eb] = await Promise.all([
      runAgent(['enroll', '--bundle', a.bundleText], agentA.env),
      runAgent(['enroll', '--bundle', b.bundleText], agentB.env),
    ]);
    expect(ea.stderr).toBe('');
    expect(ea.code).toBe(0);
    expect(eb.code).toBe(0);

    const idA = identityOf(agentA);
    expect(statSync(join(agentA.dir, 'identity', `${idA.serial}.key`)).mode & 0o777).toBe(0o600);
    // The hub never saw the private key: only the certificate for its public half.
    const rows = await hub.app.get(DataSource).query<
      {
        certificate_pem: string;
      }[]
    >('SELECT certificate_pem FROM silo_certificates');
    expect(JSON.stringify(rows)).not.toContain('PRIVATE KEY');

    const [sa, sb] = await Promise.all([
      runAgent(['status', '--json'], agentA.env),
      runAgent(['status', '--json'], agentB.env),
    ]);
    expect(sa.code).toBe(0);
    const statusA = JSON.parse(sa.stdout) as { siloId: string; hub: { reachable: boolean; siloStatus: string } };
    const statusB = JSON.parse(sb.stdout) as { siloId: string };
    expect(statusA).toMatchObject({ siloId: a.silo.id, hub: { reachable: true, siloStatus: 'enrolled' } });
    expect(statusB.siloId).toBe(b.silo.id);

    // The burnt token cannot enroll anyone again.
    const again = await runAgent(['enroll', '--bundle', a.bundleText], newAgent().env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already used');
  });

  it('renews without a restart; the old certificate works until the new one is first used, then is refused', async () => {
    const { bundleText, silo } = await register(`Renewing ${kind}`);
    const agent = newAgent();
    expect((await runAgent(['enroll', '--bundle', bundleText], agent.env)).code).toBe(0);
    const before = identityOf(agent);

    const notDue = await runAgent(['renew'], agent.env);
    expect(notDue.stdout).toContain('not due');
    const renewed = await runAgent(['renew', '--force'], agent.env);
    expect(renewed.code).toBe(0);
    const after = identityOf(agent);
    expect(after.serial).not.toBe(before.serial);
    expect(after.key).not.toBe(before.key); // a fresh key pair

    expect(await tlsCall(hub.siloUrl, 'GET', SILO_API.me, caPem, before)).toMatchObject({ status: 200 });
    const me = await tlsCall(hub.siloUrl, 'GET', SILO_API.me, caPem, after);
    expect(me).toMatchObject({ status: 200, body: { siloId: silo.id, certificate: { serial: after.serial } } });
    const old = await tlsCall(hub.siloUrl, 'GET', SILO_API.me, caPem, before);
    expect(old).toMatchObject({ status: 401, body: { error: 'SILO_IDENTITY_REFUSED' } });
    expect(JSON.stringify(old)).toContain('replaced by a renewed one');
  });

  it('refuses a revoked certificate on the very next request, without a restart', async () => {
    const { bundleText, silo } = await register(`Revoked ${kind}`);
    const agent = newAgent();
    await runAgent(['enroll', '--bundle', bundleText], agent.env);
    const id = identityOf(agent);
    expect(await tlsCall(hub.siloUrl, 'GET', SILO_API.me, caPem, id)).toMatchObject({ status: 200 });
    const revoked = await api(hub, 'POST', `/api/silos/${silo.id}/certificates/${id.serial}/revoke`, {
      headers: admin,
      json: { reason: 'key copied to a USB stick' },
    });
    expect(revoked.status).toBe(200);
    const t0 = Date.now();
    const refused = await tlsCall(hub.siloUrl, 'GET', SILO_API.me, caPem, id);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(refused).toMatchObject({ status: 401, body: { error: 'SILO_IDENTITY_REFUSED' } });
    expect(JSON.stringify(refused)).toContain('revoked: key copied to a USB stick');
    const agentStatus = await runAgent(['status'], agent.env);
    expect(agentStatus.code).toBe(1);
    expect(agentStatus.stdout).toContain('NOT reachable');
  });

  it('refuses a suspended silo until it is resumed', async () => {
    const { bundleText, silo } = await register(`Suspended ${kind}`);
    const agent = newAgent();
    await runAgent(['enroll', '--bundle', bundleText], agent.env);
    const id = identityOf(agent);
    await api(hub, 'POST', `/api/silos/${silo.id}/suspend`, { headers: admin, json: { reason: 'audit pending' } });
    expect(await tlsCall(hub.siloUrl, 'GET', SILO_API.me, caPem, id)).toMatchObject({
      status: 403,
      body: { error: 'SILO_SUSPENDED' },
    });
    await api(hub, 'POST', `/api/silos/${silo.id}/resume`, { headers: admin });
    expect(await tlsCall(hub.siloUrl, 'GET', SILO_API.me, caPem, id)).toMatchObject({ status: 200 });
  });

  it('re-enrollment revokes the silo’s old certificates and leaves other silos untouched', async () => {
    const [one, other] = await Promise.all([register(`Re-enrolled ${kind}`), register(`Bystander ${kind}`)]);
    const agentOne = newAgent();
    const agentOther = newAgent();
    await runAgent(['enroll', '--bundle', one.bundleText], agentOne.env);
    await runAgent(['enroll', '--bundle', other.bundleText], agentOther.env);
    const oldOne = identityOf(agentOne);
    const fresh = await api(hub, 'POST', `/api/silos/${one.silo.id}/enrollment`, { headers: admin });
    expect(fresh.status).toBe(201);
    expect(await tlsCall(hub.siloUrl, 'GET', SILO_API.me, caPem, oldOne)).toMatchObject({ status: 401 });
    expect(await tlsCall(hub.siloUrl, 'GET', SILO_API.me, caPem, identityOf(agentOther))).toMatchObject({
      status: 200,
    });
    const reenrolled = await runAgent(
      ['enroll', '--force', '--bundle', (fresh.body as EnrollmentIssued).bundleText],
      agentOne.env,
    );
    expect(reenrolled.code).toBe(0);
    expect(await tlsCall(hub.siloUrl, 'GET', SILO_API.me, caPem, identityOf(agentOne))).toMatchObject({ status: 200 });
  });

  it('refuses connections without a valid client certificate at the TLS handshake', async () => {
    const noCert = await tlsCall(hub.siloUrl, 'GET', SILO_API.me, caPem, {});
    expect(noCert).toHaveProperty('tlsError');

    const foreignCa = createCertificateAuthority({ commonName: 'Someone else', validityDays: 30 });
    const someSilo = '0b9a3f5e-1c2d-4e5f-8a9b-112233445566';
    const foreign = issueSiloCertificate({
      ca: foreignCa,
      csr: createCsr({ privateKeyPem: siloKeys.privateKeyPem, siloId: someSilo }),
      siloId: someSilo,
    });
    expect(
      await tlsCall(hub.siloUrl, 'GET', SILO_API.me, caPem, {
        key: siloKeys.privateKeyPem,
        cert: foreign.certificatePem,
      }),
    ).toHaveProperty('tlsError');
    // Self-signed: a "CA" that is the leaf itself.
    const selfSigned = createCertificateAuthority({
      commonName: someSilo,
      validityDays: 30,
      privateKeyPem: siloKeys.privateKeyPem,
    });
    expect(
      await tlsCall(hub.siloUrl, 'GET', SILO_API.me, caPem, {
        key: siloKeys.privateKeyPem,
        cert: selfSigned.certificatePem,
      }),
    ).toHaveProperty('tlsError');
  });

  it('refuses a certificate signed by the hub CA that the hub never recorded', async () => {
    const { silo } = await register(`Unrecorded ${kind}`);
    // For instance forged with a stolen copy of the CA key: the CA signature alone is not enough.
    const unrecorded = issueSiloCertificate({
      ca: hub.app.get(HubPkiService).certificateAuthority(),
      csr: createCsr({ privateKeyPem: siloKeys.privateKeyPem, siloId: silo.id }),
      siloId: silo.id,
    });
    expect(
      await tlsCall(hub.siloUrl, 'GET', SILO_API.me, caPem, {
        key: siloKeys.privateKeyPem,
        cert: unrecorded.certificatePem,
      }),
    ).toMatchObject({ status: 401, body: { error: 'SILO_IDENTITY_REFUSED' } });
  });

  it('refuses bad enrollments with a clear error, leaving the token unburnt', async () => {
    const { bundle, silo } = await register(`Careful ${kind}`);
    const other = await register(`Other ${kind}`);
    const refusedCsr = async (csrPem: string, expected: RegExp) => {
      const res = await enrollRaw(bundle, csrPem);
      expect(res).toMatchObject({ status: 400, body: { error: 'CSR_REJECTED' } });
      expect(JSON.stringify(res)).toMatch(expected);
      expect((await tokenState(bundle)).usedAt).toBeNull();
    };
    await refusedCsr(
      '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' + 'x'.repeat(80),
      /CSR_MALFORMED/,
    );
    // Signature that does not match the key: flip one byte of the signature.
    const good = createCsr({ privateKeyPem: siloKeys.privateKeyPem, siloId: silo.id });
    const der = Buffer.from(good.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
    der[der.length - 5]! ^= 0xff;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`;
    await refusedCsr(tampered, /CSR_SIGNATURE_INVALID/);
    // Another silo's identity.
    await refusedCsr(
      createCsr({ privateKeyPem: siloKeys.privateKeyPem, siloId: other.silo.id }),
      /CSR_IDENTITY_MISMATCH/,
    );

    const unknown = await enrollRaw({ ...bundle, token: 'A'.repeat(43) }, good);
    expect(unknown).toMatchObject({ status: 401, body: { error: 'ENROLLMENT_TOKEN_INVALID' } });

    // The token still works for a good CSR after all these refusals; then it is burnt.
    expect(await enrollRaw(bundle, good)).toMatchObject({ status: 200 });
    const reused = await enrollRaw(bundle, good);
    expect(reused).toMatchObject({ status: 401, body: { error: 'ENROLLMENT_TOKEN_INVALID' } });
    expect(JSON.stringify(reused)).toContain('already used');
  });

  it('refuses an expired token', async () => {
    const { bundle, silo } = await register(`Late ${kind}`);
    await hub.app
      .get(DataSource)
      .getRepository(EnrollmentTokenEntity)
      .update({ tokenHash: hashToken(bundle.token) }, { expiresAt: new Date(Date.now() - 1000) });
    const res = await enrollRaw(bundle, createCsr({ privateKeyPem: siloKeys.privateKeyPem, siloId: silo.id }));
    expect(res).toMatchObject({ status: 401, body: { error: 'ENROLLMENT_TOKEN_INVALID' } });
    expect(JSON.stringify(res)).toContain('expired');
  });

  it('an agent whose pinned fingerprint does not match the hub refuses to send its CSR', async () => {
    const { bundle } = await register(`Pinned ${kind}`);
    const wrongPin = Buffer.from(JSON.stringify({ ...bundle, caFingerprintSha256: 'ab'.repeat(32) })).toString(
      'base64url',
    );
    const res = await runAgent(['enroll', '--bundle', wrongPin], newAgent().env);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('nothing was sent');
    expect((await tokenState(bundle)).usedAt).toBeNull();
  });

  it('keeps silo routes and people routes on their own listeners', async () => {
    const { bundleText } = await register(`Listener ${kind}`);
    const agent = newAgent();
    await runAgent(['enroll', '--bundle', bundleText], agent.env);
    const id = identityOf(agent);
    // A valid silo certificate cannot reach an administrator route.
    const onSilo = await tlsCall(hub.siloUrl, 'GET', '/api/silos', caPem, id);
    expect(onSilo).toMatchObject({ status: 403, body: { error: 'FORBIDDEN' } });
    // Silo routes are not served on the people's listener.
    expect((await api(hub, 'GET', SILO_API.me)).status).toBe(403);
    // Enrollment is not served on the silo listener, nor silo routes on the enrollment listener.
    expect(await tlsCall(hub.siloUrl, 'GET', SILO_API.caCertificate, caPem, id)).toMatchObject({ status: 403 });
    expect(await tlsCall(hub.enrollUrl, 'GET', SILO_API.me, caPem, {})).toMatchObject({ status: 403 });
  });

  it('shows silos with their certificate and enrollment state to admins and auditors', async () => {
    const list = await api(hub, 'GET', '/api/silos', { headers: admin });
    expect(list.status).toBe(200);
    const silos = list.body as { name: string; status: string; certificate: unknown }[];
    expect(silos.find((s) => s.name === `Hospital A ${kind}`)).toMatchObject({ status: 'enrolled' });
    expect(JSON.stringify(list.body)).not.toContain('token');
  });
});

describe('a hub running on an operator-provided CA', () => {
  it('uses the CA from files, and refuses an expired certificate it issued at the TLS handshake', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-ca-'));
    const passphrase = 'operator passphrase 123';
    const longAgo = new Date(Date.now() - 60 * 86_400_000);
    const ca = createCertificateAuthority({ commonName: 'Operator CA', validityDays: 3650, now: longAgo });
    writeFileSync(join(dir, 'ca.crt'), ca.certificatePem);
    writeFileSync(join(dir, 'ca.key'), encryptPrivateKey(ca.privateKeyPem, passphrase), { mode: 0o600 });
    const hub = await startTestHub('server', {
      env: {
        TESSERA_CA_CERT_FILE: join(dir, 'ca.crt'),
        TESSERA_CA_KEY_FILE: join(dir, 'ca.key'),
        TESSERA_CA_KEY_PASSPHRASE: passphrase,
      },
    });
    try {
      expect(hub.app.get(HubPkiService).caFingerprintSha256()).toBe(
        parseCertificate(ca.certificatePem).fingerprintSha256,
      );
      const admin = await signIn(hub, ADMIN.username, ADMIN.password);
      const { silo } = (
        await api(hub, 'POST', '/api/silos', { headers: admin, json: { name: 'Old', contact: 'it@x.org' } })
      ).body as EnrollmentIssued;
      const keys = generateKeyPair();
      const expired = issueSiloCertificate({
        ca,
        csr: createCsr({ privateKeyPem: keys.privateKeyPem, siloId: silo.id }),
        siloId: silo.id,
        validityDays: 30,
        now: new Date(Date.now() - 40 * 86_400_000),
      });
      expect(
        await tlsCall(hub.siloUrl, 'GET', SILO_API.me, ca.certificatePem, {
          key: keys.privateKeyPem,
          cert: expired.certificatePem,
        }),
      ).toHaveProperty('tlsError');
    } finally {
      await hub.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
