import {
  createCertificateAuthority,
  createCsr,
  generateKeyPairAsync,
  parseCertificate,
  type CertificateAuthority,
  type KeyPairPem,
} from '@tessera/pki';
import type { CertificateGrant } from '@tessera/protocol';
import type { PinoLogger } from 'nestjs-pino';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { HubConfig } from '../config/config.schema';
import type { ReadCache } from '../database/read-cache';
import type { HubPkiService } from '../pki/hub-pki.service';
import { InMemorySilos } from './in-memory-silos.test-util';
import type { Refusal, RefusalRecorder } from './refusal-recorder.service';
import { SiloCertificatesService } from './silo-certificates.service';
import type { SiloIdentity } from './silo-identity';
import { SiloPresence } from './silo-presence.service';
import type { SilosRepository } from './silos.repository';
import { hashToken, SilosService } from './silos.service';

const ADMIN = { type: 'user', id: 'admin-1', name: 'root' } as const;
const HOUR = 3_600_000;

/**
 * One CA and a few agent key pairs for the file, generated once: RSA key generation is the slow part of these tests.
 * Each test starts a fresh store, so a key is new to every silo until the test hands it out twice (renewal refuses a
 * key its silo had certified; enrollment does not check).
 */
let ca: CertificateAuthority;
const keyPool: KeyPairPem[] = [];
let nextKey = 0;
beforeAll(async () => {
  ca = createCertificateAuthority({ commonName: 'Unit Test Silo CA', validityDays: 30, modulusBits: 2048 });
  keyPool.push(...(await Promise.all(Array.from({ length: 8 }, () => generateKeyPairAsync()))));
}, 60_000);

function generateKeyPair(): KeyPairPem {
  const keys = keyPool[nextKey++ % keyPool.length];
  if (!keys) throw new Error('the key pool is empty');
  return keys;
}

interface Recorded {
  readonly event: AuditEvent;
  /** The transaction the record was written in (undefined: outside any). */
  readonly tx: number | undefined;
}

function harness() {
  nextKey = 0;
  const store = new InMemorySilos();
  const written: Recorded[] = [];
  const audit = {
    record: (event: AuditEvent) => Promise.resolve(void written.push({ event, tx: store.openTransaction() })),
  } as unknown as AuditTrail;
  // A record joins its transaction (AmbientTransactions): one written in a transaction that rolled back is gone.
  const records = () => written.filter((r) => r.tx === undefined || store.didCommit(r.tx));
  const refusals: Refusal[] = [];
  const recorder = { record: (r: Refusal) => Promise.resolve(void refusals.push(r)) } as unknown as RefusalRecorder;
  const config = {
    siloCertificateDays: 30,
    enrollmentTokenHours: 24,
    publicSiloUrl: 'https://hub.example:8443',
    publicEnrollUrl: 'https://hub.example:8444',
  } as HubConfig;
  const pki = {
    certificateAuthority: () => ca,
    caFingerprintSha256: () => parseCertificate(ca.certificatePem).fingerprintSha256,
  } as unknown as HubPkiService;
  // Only flush() writes presence; these tests never flush.
  const presence = new SiloPresence({} as SilosRepository, {} as PinoLogger);
  const cache = { read: <T>(_key: string, load: () => Promise<T>) => load() } as unknown as ReadCache;
  const repository = store as unknown as SilosRepository;
  const silos = new SilosService(repository, config, pki, audit, presence);
  const certificates = new SiloCertificatesService(repository, config, pki, audit, recorder, presence, cache, silos);
  return { store, records, refusals, silos, certificates };
}

type Harness = ReturnType<typeof harness>;

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const err: unknown = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof HubException)) throw new Error(`expected a HubException, got ${String(err)}`);
  return err.code;
}

/** What an agent holds after enrollment or renewal. */
interface Held {
  keys: KeyPairPem;
  grant: CertificateGrant;
  identity: SiloIdentity;
}

function held(keys: KeyPairPem, grant: CertificateGrant, name: string): Held {
  const parsed = parseCertificate(grant.certificatePem);
  return {
    keys,
    grant,
    identity: {
      siloId: grant.siloId,
      name,
      certificateSerial: grant.serial,
      certificateFingerprintSha256: parsed.fingerprintSha256,
      certificateNotAfter: new Date(grant.notAfter),
    },
  };
}

async function registeredSilo(h: Harness, name = 'Basel') {
  const issued = await h.silos.register({ name, contact: 'it@basel.example' }, ADMIN);
  return { siloId: issued.silo.id, token: issued.bundle.token, name };
}

async function enrolledSilo(h: Harness, name = 'Basel'): Promise<Held> {
  const { siloId, token } = await registeredSilo(h, name);
  const keys = generateKeyPair();
  const grant = await h.certificates.enroll(
    token,
    createCsr({ privateKeyPem: keys.privateKeyPem, siloId }),
    '10.0.0.7',
  );
  return held(keys, grant, name);
}

async function renewed(h: Harness, from: Held, now?: Date): Promise<Held> {
  const keys = generateKeyPair();
  const csr = createCsr({ privateKeyPem: keys.privateKeyPem, siloId: from.identity.siloId });
  return held(keys, await h.certificates.renew(from.identity, csr, now), from.identity.name);
}

describe('SiloCertificatesService: enrollment', () => {
  let h: Harness;
  beforeEach(() => {
    h = harness();
  });

  it('trades the token and a CSR for a certificate that starts a lineage, burns the token, audits in the transaction', async () => {
    const first = await enrolledSilo(h);
    const [cert] = h.store.certificates;
    expect(cert).toMatchObject({
      serial: first.grant.serial,
      status: 'active',
      issuedVia: 'enrollment',
      parentSerial: null,
      siloId: first.identity.siloId,
    });
    expect(first.grant.hubSiloUrl).toBe('https://hub.example:8443');
    expect(h.store.tokens.map((t) => t.usedAt !== null)).toEqual([true]);
    expect(h.store.silos[0]!.status).toBe('enrolled');
    const enrolled = h.records().find((r) => r.event.action === 'silo.enrolled');
    expect(enrolled?.tx).toBeDefined();
    expect(enrolled?.event.subject).toEqual({ siloId: first.identity.siloId, certificateSerial: first.grant.serial });
  });

  it('refuses a used, replaced, expired or unknown token, records the refusal outside any transaction', async () => {
    const { siloId, token } = await registeredSilo(h);
    const csr = () => createCsr({ privateKeyPem: generateKeyPair().privateKeyPem, siloId });
    await h.certificates.enroll(token, csr(), '10.0.0.7');
    expect(await codeOf(h.certificates.enroll(token, csr(), '10.0.0.7'))).toBe(HubErrorCode.ENROLLMENT_TOKEN_INVALID);

    const replaced = (await h.silos.reEnroll(siloId, ADMIN)).bundle.token;
    await h.silos.reEnroll(siloId, ADMIN);
    await expect(h.certificates.enroll(replaced, csr(), '10.0.0.7')).rejects.toThrow('replaced by a newer one');

    h.store.seedToken({ siloId, tokenHash: hashToken('stale'), expiresAt: new Date(Date.now() - 1) });
    await expect(h.certificates.enroll('stale', csr(), '10.0.0.7')).rejects.toThrow('has expired');
    await expect(h.certificates.enroll('never-issued', csr(), '10.0.0.7')).rejects.toThrow('is unknown');

    const refused = h.records().filter((r) => r.event.action === 'silo.enrollment.refused');
    expect(refused).toHaveLength(4);
    expect(refused.every((r) => r.tx === undefined)).toBe(true);
    // The unknown token names no silo; the others do.
    expect(refused.map((r) => r.event.subject)).toEqual([{ siloId }, { siloId }, { siloId }, undefined]);
    expect(h.store.certificates.filter((c) => c.status === 'active')).toHaveLength(0);
  });

  it('of two enrollments racing with one token, exactly one gets a certificate (the token row is locked)', async () => {
    const { siloId, token } = await registeredSilo(h);
    const csr = () => createCsr({ privateKeyPem: generateKeyPair().privateKeyPem, siloId });
    const [a, b] = [csr(), csr()];
    const outcomes = await Promise.allSettled([
      h.certificates.enroll(token, a, '10.0.0.7'),
      h.certificates.enroll(token, b, '10.0.0.8'),
    ]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(h.store.certificates).toHaveLength(1);
    expect(h.store.lockLog.filter((k) => k.startsWith('token:'))).toHaveLength(2);
  });

  it('leaves the token unused when the CA refuses the CSR (the transaction rolls back)', async () => {
    const { siloId, token } = await registeredSilo(h);
    const otherSilo = createCsr({ privateKeyPem: generateKeyPair().privateKeyPem, siloId: crypto.randomUUID() });
    expect(await codeOf(h.certificates.enroll(token, otherSilo, '10.0.0.7'))).toBe(HubErrorCode.CSR_REJECTED);
    expect(h.store.tokens.map((t) => t.usedAt)).toEqual([null]);
    expect(h.store.silos[0]!.status).toBe('registered');
    const good = createCsr({ privateKeyPem: generateKeyPair().privateKeyPem, siloId });
    await expect(h.certificates.enroll(token, good, '10.0.0.7')).resolves.toMatchObject({ siloId });
  });

  it('refuses a suspended silo and keeps its token', async () => {
    const { siloId, token } = await registeredSilo(h);
    await h.silos.suspend(siloId, 'audit pending', ADMIN);
    const csr = createCsr({ privateKeyPem: generateKeyPair().privateKeyPem, siloId });
    expect(await codeOf(h.certificates.enroll(token, csr, '10.0.0.7'))).toBe(HubErrorCode.SILO_SUSPENDED);
    expect(h.store.tokens.at(-1)!.usedAt).toBeNull();
  });
});

describe('SiloCertificatesService: renewal and first use', () => {
  let h: Harness;
  beforeEach(() => {
    h = harness();
  });

  it('continues the presenting lineage, under the silo lock, with the record in the transaction', async () => {
    const first = await enrolledSilo(h);
    const second = await renewed(h, first);
    const certs = h.store.certificates;
    expect(certs.map((c) => [c.issuedVia, c.status, c.parentSerial])).toEqual([
      ['enrollment', 'active', null],
      ['renewal', 'active', first.grant.serial],
    ]);
    expect(certs[1]!.lineageId).toBe(certs[0]!.lineageId);
    expect(h.store.lockLog.at(-1)).toBe(`silo:${first.identity.siloId}`);
    const record = h.records().find((r) => r.event.action === 'silo.certificate.renewed');
    expect(record?.tx).toBeDefined();
    expect(record?.event.details).toMatchObject({
      previousSerial: first.grant.serial,
      notAfter: second.grant.notAfter,
    });
  });

  it('allows one outstanding renewal: a second before the first is used is refused and counted as a refusal', async () => {
    const first = await enrolledSilo(h);
    await renewed(h, first);
    const again = renewed(h, first);
    expect(await codeOf(again)).toBe(HubErrorCode.RENEWAL_PENDING);
    expect(h.refusals).toEqual([
      expect.objectContaining({
        action: 'silo.certificate.renewal.refused',
        kind: 'pending',
        fingerprintSha256: first.identity.certificateFingerprintSha256,
      }),
    ]);
    expect(h.store.certificates).toHaveLength(2);
  });

  it('supersedes an unused renewal older than the grace time when the silo renews again', async () => {
    const first = await enrolledSilo(h);
    const lost = await renewed(h, first);
    const later = new Date(Date.now() + 2 * HOUR);
    await renewed(h, first, later);
    expect(h.store.certificates.find((c) => c.serial === lost.grant.serial)!.status).toBe('superseded');
    const record = h
      .records()
      .filter((r) => r.event.action === 'silo.certificate.renewed')
      .at(-1);
    expect(record?.event.details).toMatchObject({ supersededUnusedSerials: [lost.grant.serial] });
  });

  it('of two renewals racing with one certificate, exactly one is issued', async () => {
    const first = await enrolledSilo(h);
    const outcomes = await Promise.allSettled([renewed(h, first), renewed(h, first)]);
    expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    const refused = outcomes.find((o) => o.status === 'rejected');
    expect((refused!.reason as HubException).code).toBe(HubErrorCode.RENEWAL_PENDING);
    expect(h.store.certificates.filter((c) => c.issuedVia === 'renewal')).toHaveLength(1);
  });

  it('refuses a key the silo already had certified, before anything is written', async () => {
    const first = await enrolledSilo(h);
    const reused = createCsr({ privateKeyPem: first.keys.privateKeyPem, siloId: first.identity.siloId });
    expect(await codeOf(h.certificates.renew(first.identity, reused))).toBe(HubErrorCode.CSR_REJECTED);
    expect(h.refusals.map((r) => r.kind)).toEqual(['key-reused']);
    expect(h.store.certificates).toHaveLength(1);
  });

  it("refuses a CSR for another silo without taking the silo's lock", async () => {
    const first = await enrolledSilo(h);
    const locks = h.store.lockLog.length;
    const foreign = createCsr({ privateKeyPem: generateKeyPair().privateKeyPem, siloId: crypto.randomUUID() });
    expect(await codeOf(h.certificates.renew(first.identity, foreign))).toBe(HubErrorCode.CSR_REJECTED);
    expect(h.refusals.map((r) => r.kind)).toEqual(['csr']);
    expect(h.store.lockLog).toHaveLength(locks);
  });

  it("retires the parent at the renewal's first use; the parent is then refused, and renewing from it too", async () => {
    const first = await enrolledSilo(h);
    const second = await renewed(h, first);
    const identity = await h.certificates.identify(second.identity.certificateFingerprintSha256);
    expect(identity).toMatchObject({ siloId: first.identity.siloId, certificateSerial: second.grant.serial });
    const statuses = new Map(h.store.certificates.map((c) => [c.serial, c.status]));
    expect(statuses.get(first.grant.serial)).toBe('superseded');
    expect(h.store.certificates.find((c) => c.serial === second.grant.serial)!.firstUsedAt).not.toBeNull();

    await expect(h.certificates.identify(first.identity.certificateFingerprintSha256)).rejects.toThrow(
      'was replaced by a renewed one',
    );
    expect(await codeOf(renewed(h, first))).toBe(HubErrorCode.SILO_IDENTITY_REFUSED);
    expect(h.refusals.map((r) => r.kind)).toEqual(['not-current']);
  });

  it('refuses unknown, expired and suspended identities', async () => {
    const first = await enrolledSilo(h);
    const fingerprint = first.identity.certificateFingerprintSha256;
    expect(await codeOf(h.certificates.identify('0'.repeat(64)))).toBe(HubErrorCode.SILO_IDENTITY_REFUSED);
    const afterExpiry = new Date(first.identity.certificateNotAfter.getTime() + 1);
    await expect(h.certificates.identify(fingerprint, afterExpiry)).rejects.toThrow('expired');
    await h.silos.suspend(first.identity.siloId, 'contract ended', ADMIN);
    await expect(h.certificates.identify(fingerprint)).rejects.toThrow('This silo is suspended: contract ended.');
  });
});

describe('SiloCertificatesService: revocation', () => {
  let h: Harness;
  beforeEach(() => {
    h = harness();
  });

  it('revokes the whole lineage, pending renewal included, and no other silo; the record joins the transaction', async () => {
    const first = await enrolledSilo(h);
    const pending = await renewed(h, first);
    const other = await enrolledSilo(h, 'Zurich');
    const view = await h.certificates.revokeCertificate(first.identity.siloId, first.grant.serial, 'key stolen', ADMIN);
    expect(view).toMatchObject({ serial: first.grant.serial, status: 'revoked', revocationReason: 'key stolen' });
    const bySerial = new Map(h.store.certificates.map((c) => [c.serial, c]));
    expect(bySerial.get(pending.grant.serial)).toMatchObject({
      status: 'revoked',
      revocationReason: `key stolen (revoked with certificate ${first.grant.serial} of the same lineage)`,
    });
    expect(bySerial.get(other.grant.serial)!.status).toBe('active');
    const record = h.records().find((r) => r.event.action === 'silo.certificate.revoked');
    expect(record?.tx).toBeDefined();
    expect(record?.event.details).toMatchObject({ revokedSerials: [first.grant.serial, pending.grant.serial] });

    // The renewal obtained before the revocation is refused on its first use.
    await expect(h.certificates.identify(pending.identity.certificateFingerprintSha256)).rejects.toThrow(
      'was revoked: key stolen (revoked with certificate',
    );
  });

  it('answers CONFLICT for a lineage already revoked and NOT_FOUND for a serial of another silo', async () => {
    const first = await enrolledSilo(h);
    const other = await enrolledSilo(h, 'Zurich');
    await h.certificates.revokeCertificate(first.identity.siloId, first.grant.serial, 'lost', ADMIN);
    expect(
      await codeOf(h.certificates.revokeCertificate(first.identity.siloId, first.grant.serial, 'again', ADMIN)),
    ).toBe(HubErrorCode.CONFLICT);
    expect(
      await codeOf(h.certificates.revokeCertificate(first.identity.siloId, other.grant.serial, 'wrong silo', ADMIN)),
    ).toBe(HubErrorCode.NOT_FOUND);
    expect(h.store.certificates.find((c) => c.serial === other.grant.serial)!.status).toBe('active');
  });

  it('does not revive a certificate revoked while its first use waited for the silo lock', async () => {
    const first = await enrolledSilo(h);
    const second = await renewed(h, first);
    // The identity check reads the certificate (active), then the revocation commits, then the first use runs.
    const fingerprint = second.identity.certificateFingerprintSha256;
    const revocation = h.certificates.revokeCertificate(first.identity.siloId, second.grant.serial, 'lost', ADMIN);
    const use = h.certificates.identify(fingerprint);
    await revocation;
    await expect(use).rejects.toThrow('was revoked');
    expect(h.store.certificates.find((c) => c.serial === second.grant.serial)!.firstUsedAt).toBeNull();
  });
});
