import { randomUUID } from 'node:crypto';
import { createCertificateAuthority, createCsr, generateKeyPair, issueSiloCertificate } from '@tessera/pki';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServerDatabase } from '../testing/test-hub.test-util';
import { MIGRATIONS } from '../database/data-source';
import { CertificateLineage1763800550000 } from '../database/migrations/1763800550000-certificate-lineage';

/** A certificate row as the hub wrote it before lineages existed. */
interface LegacyRow {
  serial: string;
  via: 'enrollment' | 'renewal';
  status: 'active' | 'superseded' | 'revoked';
  minutesAgo: number;
  reason?: string;
  publicKeySha256: string;
}

describe('migration CertificateLineage1763800550000 on existing certificates', () => {
  let database: { url: string; drop(): Promise<void> };
  let db: DataSource;
  const ca = createCertificateAuthority({ commonName: 'Migration test CA', validityDays: 30 });

  function connect(migrations: (typeof MIGRATIONS)[number][]): DataSource {
    return new DataSource({ type: 'postgres', url: database.url, migrations, migrationsTableName: 'migrations' });
  }

  async function insert(siloId: string, row: Omit<LegacyRow, 'publicKeySha256'>): Promise<LegacyRow> {
    const keys = generateKeyPair();
    const issued = issueSiloCertificate({ ca, csr: createCsr({ privateKeyPem: keys.privateKeyPem, siloId }), siloId });
    await db.query(
      `INSERT INTO silo_certificates (serial, silo_id, fingerprint_sha256, not_before, not_after, status, issued_via,
         revoked_at, revocation_reason, certificate_pem, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now() - make_interval(mins => $11))`,
      [
        row.serial,
        siloId,
        issued.fingerprintSha256,
        issued.notBefore,
        issued.notAfter,
        row.status,
        row.via,
        row.status === 'revoked' ? new Date() : null,
        row.reason ?? null,
        issued.certificatePem,
        row.minutesAgo,
      ],
    );
    return { ...row, publicKeySha256: issued.publicKeySha256 };
  }

  beforeAll(async () => {
    database = await createServerDatabase();
    const index = MIGRATIONS.indexOf(CertificateLineage1763800550000);
    expect(index).toBeGreaterThan(0);
    db = connect(MIGRATIONS.slice(0, index));
    await db.initialize();
    await db.runMigrations();
  });
  afterAll(async () => {
    if (db?.isInitialized) await db.destroy();
    await database?.drop();
  });

  it('rebuilds lineages from enrollments, hashes every key, and revokes what a revoked serial left alive', async () => {
    const [compromised, healthy] = [randomUUID(), randomUUID()];
    for (const [id, name] of [
      [compromised, 'Compromised'],
      [healthy, 'Healthy'],
    ] as const) {
      await db.query(`INSERT INTO silos (id, name, contact, status) VALUES ($1, $2, 'it@x.org', 'enrolled')`, [
        id,
        name,
      ]);
    }
    // Compromised: an old lineage revoked by re-enrollment, then a new one whose enrollment certificate the
    // administrator revoked after a thief had renewed it (the hole the migration closes).
    const rows = [
      await insert(compromised, {
        serial: 'a1',
        via: 'enrollment',
        status: 'revoked',
        minutesAgo: 300,
        reason: 're-enrollment',
      }),
      await insert(compromised, {
        serial: 'a2',
        via: 'renewal',
        status: 'revoked',
        minutesAgo: 250,
        reason: 're-enrollment',
      }),
      await insert(compromised, {
        serial: 'b1',
        via: 'enrollment',
        status: 'revoked',
        minutesAgo: 200,
        reason: 'stolen',
      }),
      await insert(compromised, { serial: 'b2', via: 'renewal', status: 'active', minutesAgo: 100 }),
      // Healthy: enrolled, renewed twice, the older ones superseded.
      await insert(healthy, { serial: 'c1', via: 'enrollment', status: 'superseded', minutesAgo: 300 }),
      await insert(healthy, { serial: 'c2', via: 'renewal', status: 'superseded', minutesAgo: 200 }),
      await insert(healthy, { serial: 'c3', via: 'renewal', status: 'active', minutesAgo: 100 }),
    ];
    await db.destroy();
    db = connect(MIGRATIONS);
    await db.initialize();
    await db.runMigrations();

    const after = await db.query<
      {
        serial: string;
        lineage_id: string;
        parent_serial: string | null;
        public_key_sha256: string;
        status: string;
        revocation_reason: string | null;
      }[]
    >(`SELECT serial, lineage_id, parent_serial, public_key_sha256, status, revocation_reason FROM silo_certificates`);
    const by = new Map(after.map((r) => [r.serial, r]));
    const lineage = (serial: string) => by.get(serial)!.lineage_id;
    expect(lineage('a2')).toBe(lineage('a1'));
    expect(lineage('b2')).toBe(lineage('b1'));
    expect(lineage('b1')).not.toBe(lineage('a1'));
    expect(new Set(['c1', 'c2', 'c3'].map(lineage)).size).toBe(1);
    expect(lineage('c1')).not.toBe(lineage('b1'));
    for (const row of rows) expect(by.get(row.serial)!.public_key_sha256).toBe(row.publicKeySha256);
    expect(after.every((r) => r.parent_serial === null)).toBe(true);

    expect(by.get('b2')).toMatchObject({
      status: 'revoked',
      revocation_reason: 'revoked with certificate b1 of the same lineage: stolen',
    });
    expect(by.get('b1')).toMatchObject({ status: 'revoked', revocation_reason: 'stolen' });
    expect(['c1', 'c2', 'c3'].map((s) => by.get(s)!.status)).toEqual(['superseded', 'superseded', 'active']);

    const [refusals] = await db.query<{ n: number }[]>(`SELECT count(*)::int AS n FROM silo_identity_refusals`);
    expect(refusals!.n).toBe(0);
  });
});
