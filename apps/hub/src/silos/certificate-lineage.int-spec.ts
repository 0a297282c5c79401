import { randomBytes } from 'node:crypto';
import { createCsr, generateKeyPair, parseCertificate, type KeyPairPem } from '@tessera/pki';
import { SILO_API, type CertificateGrant } from '@tessera/protocol';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubPkiService } from '../pki/hub-pki.service';
import { tlsCall, type TlsIdentity } from '../testing/agent-process.test-util';
import { ADMIN, DATABASE_KINDS, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { REFUSAL_RECORD_INTERVAL_MS, RefusalRecorder } from './refusal-recorder.service';
import type { EnrollmentIssued } from './silos.service';

/** A key pair and the certificate the hub issued for it: what an agent (or a thief) holds. */
interface Held extends TlsIdentity {
  key: string;
  cert: string;
  serial: string;
  fingerprint: string;
}

function held(keys: KeyPairPem, grant: CertificateGrant): Held {
  const cert = grant.certificatePem;
  return { key: keys.privateKeyPem, cert, serial: grant.serial, fingerprint: parseCertificate(cert).fingerprintSha256 };
}

type Answer = Awaited<ReturnType<typeof tlsCall>>;

function statusOf(answer: Answer): number {
  if ('tlsError' in answer) throw new Error(`TLS refused: ${answer.tlsError}`);
  return answer.status;
}

describe.each(DATABASE_KINDS)('certificate lineages and bounded renewals on the %s database', (kind) => {
  let hub: TestHub;
  let admin: Record<string, string>;
  let caPem: string;
  let db: DataSource;
  let silos = 0;

  /** Registers a silo and enrolls it with a fresh key over the enrollment listener, as the agent does. */
  async function enrolledSilo(): Promise<{ siloId: string; first: Held }> {
    silos += 1;
    const res = await api(hub, 'POST', '/api/silos', {
      headers: admin,
      json: { name: `Lineage ${kind} ${silos}`, contact: 'it@example.org' },
    });
    expect(res.status).toBe(201);
    const { bundle, silo } = res.body as EnrollmentIssued;
    const keys = generateKeyPair();
    const csrPem = createCsr({ privateKeyPem: keys.privateKeyPem, siloId: silo.id });
    const enrolled = await tlsCall(hub.enrollUrl, 'POST', SILO_API.enroll, caPem, {}, { token: bundle.token, csrPem });
    expect(enrolled).toMatchObject({ status: 200 });
    return { siloId: silo.id, first: held(keys, (enrolled as { body: CertificateGrant }).body) };
  }

  function renewRaw(siloId: string, holder: Held, privateKeyPem: string): Promise<Answer> {
    const csrPem = createCsr({ privateKeyPem, siloId });
    return tlsCall(hub.siloUrl, 'POST', SILO_API.renew, caPem, holder, { csrPem });
  }

  async function renew(siloId: string, holder: Held): Promise<Held> {
    const keys = generateKeyPair();
    const answer = await renewRaw(siloId, holder, keys.privateKeyPem);
    expect(answer).toMatchObject({ status: 200 });
    return held(keys, (answer as { body: CertificateGrant }).body);
  }

  const me = (holder: Held): Promise<Answer> => tlsCall(hub.siloUrl, 'GET', SILO_API.me, caPem, holder);

  async function revoke(siloId: string, serial: string, reason: string): Promise<void> {
    const res = await api(hub, 'POST', `/api/silos/${siloId}/certificates/${serial}/revoke`, {
      headers: admin,
      json: { reason },
    });
    expect(res.status).toBe(200);
  }

  async function certificateCount(siloId: string): Promise<number> {
    const [row] = await db.query<
      {
        n: number;
      }[]
    >('SELECT count(*)::int AS n FROM silo_certificates WHERE silo_id = $1', [siloId]);
    return row!.n;
  }

  /** The audit records of one action for one certificate, with their aggregated counts. */
  async function refusalRecords(action: string, fingerprint: string): Promise<{ count: number; reason: string }[]> {
    const rows = await db.query<{ details: { count: number; reason: string } }[]>(
      `SELECT details FROM audit_records WHERE action = $1 AND details->>'fingerprintSha256' = $2 ORDER BY seq`,
      [action, fingerprint],
    );
    return rows.map((r) => r.details);
  }

  async function pendingRefusals(fingerprint: string): Promise<number> {
    const [row] = await db.query<{ n: number }[]>(
      `SELECT coalesce(sum(pending_count), 0)::int AS n FROM silo_identity_refusals WHERE fingerprint_sha256 = $1`,
      [fingerprint],
    );
    return row!.n;
  }

  /** Moves every certificate of a silo two hours into the past (issuance times only; the X.509 validity is kept). */
  async function backdate(siloId: string): Promise<void> {
    await db.query(`UPDATE silo_certificates SET created_at = created_at - interval '2 hours' WHERE silo_id = $1`, [
      siloId,
    ]);
  }

  const sum = (records: { count: number }[]): number => records.reduce((total, r) => total + r.count, 0);

  beforeAll(async () => {
    hub = await startTestHub(kind);
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    caPem = hub.app.get(HubPkiService).serverCredentials().caCertificatePem;
    db = hub.app.get(DataSource);
  });
  afterAll(async () => {
    await hub?.dispose();
  });

  it('revoking the stolen serial also refuses the certificate renewed with it (the attack of issue 14)', async () => {
    const { siloId, first: stolen } = await enrolledSilo();
    const renewedByThief = await renew(siloId, stolen);
    await revoke(siloId, stolen.serial, 'key found on a shared drive');

    const refused = await me(renewedByThief);
    expect(refused).toMatchObject({ status: 401, body: { error: 'SILO_IDENTITY_REFUSED' } });
    expect(JSON.stringify(refused)).toContain(`revoked with certificate ${stolen.serial} of the same lineage`);
    expect(await me(stolen)).toMatchObject({ status: 401 });
    // Nor can the renewed certificate renew itself out of the lineage.
    expect(await renewRaw(siloId, renewedByThief, generateKeyPair().privateKeyPem)).toMatchObject({ status: 401 });
    // The administrator sees every certificate of the lineage revoked.
    const view = await api(hub, 'GET', `/api/silos/${siloId}`, { headers: admin });
    const certs = (view.body as { certificates: { serial: string; status: string }[] }).certificates;
    expect(certs.map((c) => c.status)).toEqual(['revoked', 'revoked']);
  });

  it('revoking the renewed certificate refuses the one it was renewed from, used or not', async () => {
    const { siloId, first } = await enrolledSilo();
    const renewed = await renew(siloId, first);
    expect(await me(first)).toMatchObject({ status: 200 }); // still valid: the renewal is unused
    await revoke(siloId, renewed.serial, 'renewal nobody at the silo asked for');
    expect(await me(first)).toMatchObject({ status: 401, body: { error: 'SILO_IDENTITY_REFUSED' } });
    expect(await me(renewed)).toMatchObject({ status: 401 });
    // Revoking again is a conflict: the whole lineage is already revoked.
    const again = await api(hub, 'POST', `/api/silos/${siloId}/certificates/${first.serial}/revoke`, {
      headers: admin,
      json: { reason: 'twice' },
    });
    expect(again.status).toBe(409);
  });

  it('a renewal already in use is revoked with an older, superseded serial of its lineage', async () => {
    const { siloId, first } = await enrolledSilo();
    const renewed = await renew(siloId, first);
    expect(await me(renewed)).toMatchObject({ status: 200 }); // first use: `first` is superseded
    expect(JSON.stringify(await me(first))).toContain('replaced by a renewed one');
    await revoke(siloId, first.serial, 'the old laptop was stolen');
    expect(await me(renewed)).toMatchObject({ status: 401, body: { error: 'SILO_IDENTITY_REFUSED' } });
  });

  it('twenty concurrent renewals with the same CSR give at most one new certificate', async () => {
    const { siloId, first } = await enrolledSilo();
    const { privateKeyPem } = generateKeyPair();
    const answers = await Promise.all(Array.from({ length: 20 }, () => renewRaw(siloId, first, privateKeyPem)));
    const statuses = answers.map(statusOf);
    expect(statuses.filter((s) => s === 200)).toHaveLength(1);
    expect(statuses.filter((s) => s >= 400 && s < 500)).toHaveLength(19);
    expect(await certificateCount(siloId)).toBe(2);
  });

  it('twenty concurrent renewals with twenty fresh keys: exactly one wins, the others are told why', async () => {
    const { siloId, first } = await enrolledSilo();
    const keys = Array.from({ length: 20 }, () => generateKeyPair());
    const answers = await Promise.all(keys.map((k) => renewRaw(siloId, first, k.privateKeyPem)));
    expect(answers.map(statusOf).filter((s) => s === 200)).toHaveLength(1);
    const refused = answers.filter((a) => statusOf(a) !== 200);
    expect(refused).toHaveLength(19);
    for (const r of refused) expect(r).toMatchObject({ status: 409, body: { error: 'RENEWAL_PENDING' } });
    expect(JSON.stringify(refused[0])).toContain('has not been used yet');
    expect(await certificateCount(siloId)).toBe(2);

    // Every refusal is in the audit trail: aggregated, with counts that add up once flushed.
    await hub.app.get(RefusalRecorder).flush({ all: true });
    const records = await refusalRecords('silo.certificate.renewal.refused', first.fingerprint);
    expect(records.length).toBeGreaterThanOrEqual(1);
    expect(records.length).toBeLessThanOrEqual(2);
    expect(sum(records)).toBe(19);
  });

  it('refuses a renewal that brings back the current key or an earlier key of the lineage', async () => {
    const { siloId, first } = await enrolledSilo();
    const sameKey = await renewRaw(siloId, first, first.key);
    expect(sameKey).toMatchObject({ status: 400, body: { error: 'CSR_REJECTED' } });
    expect(JSON.stringify(sameKey)).toContain('a renewal must bring a new key pair');

    const renewed = await renew(siloId, first);
    expect(await me(renewed)).toMatchObject({ status: 200 });
    // Even once the interval has passed, the old key stays refused.
    await backdate(siloId);
    expect(await renewRaw(siloId, renewed, first.key)).toMatchObject({ status: 400, body: { error: 'CSR_REJECTED' } });
    expect(await certificateCount(siloId)).toBe(2);
  });

  it('limits renewals of a fresh certificate to one an hour, and lets a lost renewal be replaced', async () => {
    const { siloId, first } = await enrolledSilo();
    const renewed = await renew(siloId, first);
    expect(await me(renewed)).toMatchObject({ status: 200 });
    const tooSoon = await renewRaw(siloId, renewed, generateKeyPair().privateKeyPem);
    expect(tooSoon).toMatchObject({ status: 429, body: { error: 'RENEWAL_RATE_LIMITED' } });
    expect(JSON.stringify(tooSoon)).toContain('Retry after');

    // Two hours later: renewed again, but the agent crashed before saving the new certificate.
    await backdate(siloId);
    const lost = await renew(siloId, renewed);
    // Until the grace time has passed, the lost certificate blocks any further renewal of the lineage...
    const blocked = await renewRaw(siloId, renewed, generateKeyPair().privateKeyPem);
    expect(blocked).toMatchObject({ status: 409, body: { error: 'RENEWAL_PENDING' } });
    // ...then a new renewal supersedes it, and only the replacement works.
    await backdate(siloId);
    const replacement = await renew(siloId, renewed);
    expect(JSON.stringify(await me(lost))).toContain('replaced by a renewed one');
    expect(await me(replacement)).toMatchObject({ status: 200 });
    expect(await me(renewed)).toMatchObject({ status: 401 });
  });

  it('aggregates 200 refused requests of a revoked certificate into a few audit records that count all 200', async () => {
    const { siloId, first } = await enrolledSilo();
    await revoke(siloId, first.serial, 'decommissioned');
    const before = await refusalRecords('silo.identity.refused', first.fingerprint);
    expect(before).toEqual([]);

    let refused = 0;
    for (let batch = 0; batch < 20; batch += 1) {
      const answers = await Promise.all(Array.from({ length: 10 }, () => me(first)));
      refused += answers.filter((a) => statusOf(a) === 401).length;
    }
    expect(refused).toBe(200);

    // Before any flush: the first refusal is recorded at once, the rest are counted in the database (so a crash
    // would lose none of them).
    const immediate = await refusalRecords('silo.identity.refused', first.fingerprint);
    expect(immediate.length).toBeGreaterThanOrEqual(1);
    expect(immediate.length).toBeLessThanOrEqual(2);
    expect(sum(immediate) + (await pendingRefusals(first.fingerprint))).toBe(200);

    await hub.app.get(RefusalRecorder).flush({ all: true });
    const records = await refusalRecords('silo.identity.refused', first.fingerprint);
    expect(records.length).toBeLessThanOrEqual(3);
    expect(sum(records)).toBe(200);
    expect(await pendingRefusals(first.fingerprint)).toBe(0);
    expect(records.every((r) => r.reason.includes('revoked: decommissioned'))).toBe(true);
  });

  it('records the repeats of an interval as one record at the next refusal after it, first and last time included', async () => {
    const recorder = hub.app.get(RefusalRecorder);
    const fingerprint = randomBytes(32).toString('hex');
    const refusal = {
      action: 'silo.identity.refused' as const,
      actor: { type: 'system' as const, id: 'silo-listener' },
      fingerprintSha256: fingerprint,
      reason: 'This client certificate is not one the hub issued to an enrolled silo.',
    };
    const t0 = Date.now();
    const at = (ms: number): Date => new Date(t0 + ms);
    await recorder.record({ ...refusal, remoteAddress: '192.0.2.1' }, at(0));
    for (const ms of [1_000, 2_000, 3_000]) await recorder.record({ ...refusal, remoteAddress: '192.0.2.2' }, at(ms));
    expect(await refusalRecords('silo.identity.refused', fingerprint)).toHaveLength(1);
    expect(await pendingRefusals(fingerprint)).toBe(3);
    // Nothing is due yet: a periodic flush leaves the pending count alone.
    expect(await recorder.flush({}, at(30_000))).toBe(0);

    await recorder.record({ ...refusal, remoteAddress: '192.0.2.3' }, at(REFUSAL_RECORD_INTERVAL_MS + 1_000));
    const records = await refusalRecords('silo.identity.refused', fingerprint);
    expect(records).toEqual([
      expect.objectContaining({ count: 1, firstAt: at(0).toISOString(), remoteAddresses: ['192.0.2.1'] }),
      expect.objectContaining({
        count: 4,
        firstAt: at(1_000).toISOString(),
        lastAt: at(REFUSAL_RECORD_INTERVAL_MS + 1_000).toISOString(),
        remoteAddresses: ['192.0.2.2', '192.0.2.3'],
      }),
    ]);
    expect(await pendingRefusals(fingerprint)).toBe(0);
  });
});
