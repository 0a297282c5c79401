import { randomBytes, randomUUID } from 'node:crypto';
import { decodeEnrollmentBundle } from '@tessera/protocol';
import type { PinoLogger } from 'nestjs-pino';
import { beforeEach, describe, expect, it } from 'vitest';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { HubConfig } from '../config/config.schema';
import type { HubPkiService } from '../pki/hub-pki.service';
import { InMemorySilos, UniqueViolation } from './in-memory-silos.test-util';
import type { CertificateStatus } from './silo-certificate.entity';
import { SiloPresence } from './silo-presence.service';
import type { SilosRepository } from './silos.repository';
import { hashToken, SilosService } from './silos.service';

const ADMIN = { type: 'user', id: 'admin-1', name: 'root' } as const;

function harness() {
  const store = new InMemorySilos();
  const written: { event: AuditEvent; tx: number | undefined }[] = [];
  const audit = {
    record: (event: AuditEvent) => Promise.resolve(void written.push({ event, tx: store.openTransaction() })),
  } as unknown as AuditTrail;
  // A record joins its transaction (AmbientTransactions): one written in a transaction that rolled back is gone.
  const records = () => written.filter((r) => r.tx === undefined || store.didCommit(r.tx));
  const config = {
    siloCertificateDays: 30,
    enrollmentTokenHours: 24,
    siloHost: '0.0.0.0',
    siloPort: 8443,
    enrollHost: '0.0.0.0',
    enrollPort: 8444,
  } as HubConfig;
  const pki = { caFingerprintSha256: () => 'ca'.repeat(32) } as unknown as HubPkiService;
  const presence = new SiloPresence({} as SilosRepository, {} as PinoLogger);
  const service = new SilosService(store as unknown as SilosRepository, config, pki, audit, presence);
  return { store, records, service };
}

/** A certificate row as issuance leaves it (the CA's work is SiloCertificatesService's, tested in its spec). */
async function certificateOf(
  store: InMemorySilos,
  siloId: string,
  status: CertificateStatus = 'active',
  lineageId: string = randomUUID(),
): Promise<string> {
  const serial = randomBytes(8).toString('hex');
  await store.inTransaction((tx) =>
    tx.insertCertificate({
      serial,
      siloId,
      fingerprintSha256: randomBytes(32).toString('hex'),
      notBefore: new Date(),
      notAfter: new Date(Date.now() + 86_400_000),
      status,
      issuedVia: 'enrollment',
      lineageId,
      parentSerial: null,
      publicKeySha256: randomBytes(32).toString('hex'),
      certificatePem: 'unused',
    }),
  );
  return serial;
}

describe('SilosService over its repository', () => {
  let h: ReturnType<typeof harness>;
  beforeEach(() => {
    h = harness();
  });

  it('registers a silo with a token whose hash alone is stored, and audits in the transaction', async () => {
    const issued = await h.service.register({ name: 'Basel', contact: 'it@basel.example' }, ADMIN);
    expect(issued.silo).toMatchObject({ name: 'Basel', status: 'registered', certificate: null });
    expect(issued.silo.enrollmentPending?.expiresAt).toBe(issued.bundle.expiresAt);
    expect(decodeEnrollmentBundle(issued.bundleText)).toEqual(issued.bundle);
    expect(issued.bundle).toMatchObject({ enrollUrl: 'https://0.0.0.0:8444', hubSiloUrl: 'https://0.0.0.0:8443' });
    expect(h.store.tokens.map((t) => t.tokenHash)).toEqual([hashToken(issued.bundle.token)]);
    expect(h.records().map((r) => [r.event.action, r.tx !== undefined])).toEqual([['silo.registered', true]]);
  });

  it('refuses a name in use with CONFLICT; of two registrations racing for a name, the unique index keeps one', async () => {
    await h.service.register({ name: 'Basel', contact: 'a' }, ADMIN);
    const taken = await h.service.register({ name: 'Basel', contact: 'b' }, ADMIN).catch((e: unknown) => e);
    expect((taken as HubException).code).toBe(HubErrorCode.CONFLICT);

    const race = await Promise.allSettled([
      h.service.register({ name: 'Zurich', contact: 'a' }, ADMIN),
      h.service.register({ name: 'Zurich', contact: 'b' }, ADMIN),
    ]);
    expect(race.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(race.find((o) => o.status === 'rejected')!.reason).toBeInstanceOf(UniqueViolation);
    expect(h.store.silos.filter((s) => s.name === 'Zurich')).toHaveLength(1);
    expect(h.records().filter((r) => r.event.action === 'silo.registered')).toHaveLength(2);
  });

  it('re-enrolls: every unrevoked certificate of the silo revoked, older tokens withdrawn, other silos untouched', async () => {
    const basel = (await h.service.register({ name: 'Basel', contact: 'a' }, ADMIN)).silo.id;
    const zurich = (await h.service.register({ name: 'Zurich', contact: 'b' }, ADMIN)).silo.id;
    const lineage = randomUUID();
    const active = await certificateOf(h.store, basel, 'active', lineage);
    const superseded = await certificateOf(h.store, basel, 'superseded', lineage);
    const alreadyRevoked = await certificateOf(h.store, basel, 'revoked');
    const other = await certificateOf(h.store, zurich);
    await h.store.inTransaction((tx) => tx.updateSilo(basel, { status: 'enrolled' }));

    const issued = await h.service.reEnroll(basel, ADMIN);
    const status = new Map(h.store.certificates.map((c) => [c.serial, c.status]));
    expect([active, superseded, alreadyRevoked, other].map((s) => status.get(s))).toEqual([
      'revoked',
      'revoked',
      'revoked',
      'active',
    ]);
    expect(issued.silo.status).toBe('registered');
    const baselTokens = h.store.tokens.filter((t) => t.siloId === basel);
    expect(baselTokens.map((t) => t.withdrawnAt !== null)).toEqual([true, false]);
    expect(baselTokens[1]!.tokenHash).toBe(hashToken(issued.bundle.token));
    expect(h.store.tokens.find((t) => t.siloId === zurich)!.withdrawnAt).toBeNull();
    const record = h.records().find((r) => r.event.action === 'silo.re-enrollment.issued');
    expect(record?.tx).toBeDefined();
    expect(record?.event.details).toMatchObject({ revokedSerials: [active, superseded] });
  });

  it('resumes to enrolled only with an active certificate, and refuses to resume a silo not suspended', async () => {
    const basel = (await h.service.register({ name: 'Basel', contact: 'a' }, ADMIN)).silo.id;
    await expect(h.service.resume(basel, ADMIN)).rejects.toThrow('not suspended');
    expect((await h.service.suspend(basel, 'audit', ADMIN)).status).toBe('suspended');
    expect((await h.service.resume(basel, ADMIN)).status).toBe('registered');
    await certificateOf(h.store, basel);
    await h.service.suspend(basel, 'audit', ADMIN);
    expect(await h.service.resume(basel, ADMIN)).toMatchObject({ status: 'enrolled', suspendedReason: null });
    // Every suspension and resumption, the refused one too, decides under the silo's lock.
    expect(h.store.lockLog.filter((k) => k === `silo:${basel}`)).toHaveLength(5);
    const changes = h.records().filter((r) => ['silo.suspended', 'silo.resumed'].includes(r.event.action));
    expect(changes.map((r) => r.event.action)).toEqual([
      'silo.suspended',
      'silo.resumed',
      'silo.suspended',
      'silo.resumed',
    ]);
    expect(changes.every((r) => r.tx !== undefined)).toBe(true);
    expect(await h.service.resume(randomUUID(), ADMIN).catch((e: HubException) => e.code)).toBe(HubErrorCode.NOT_FOUND);
  });

  it("lists silos oldest first with each one's newest active certificate and its latest in any status", async () => {
    const basel = (await h.service.register({ name: 'Basel', contact: 'a' }, ADMIN)).silo.id;
    await h.service.register({ name: 'Zurich', contact: 'b' }, ADMIN);
    const older = await certificateOf(h.store, basel);
    const newer = await certificateOf(h.store, basel);
    const revoked = await certificateOf(h.store, basel, 'revoked');
    const [first, second] = await h.service.list();
    expect(first).toMatchObject({
      name: 'Basel',
      certificate: { serial: newer, status: 'active' },
      latestCertificate: { serial: revoked, status: 'revoked' },
    });
    expect(second).toMatchObject({ name: 'Zurich', certificate: null, latestCertificate: null });
    expect((await h.service.get(basel)).certificates.map((c) => c.serial)).toEqual([revoked, newer, older]);
  });
});
