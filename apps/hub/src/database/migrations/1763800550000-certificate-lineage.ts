import { createHash, X509Certificate } from 'node:crypto';
import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Certificate lineages and throttled refusal records (issue 14, items 2 and 7).
 *
 * - `silo_certificates.lineage_id`: an enrollment starts a lineage, each renewal joins its parent's; revoking any
 *   certificate revokes its whole lineage. `parent_serial` names the certificate a renewal was requested with.
 *   `public_key_sha256` (SHA-256 of the SubjectPublicKeyInfo DER) lets a renewal that brings back a known key be
 *   refused.
 * - `silo_identity_refusals`: per refused client certificate and reason (`reason_sha256` hashes the audit action and
 *   the reason text), the refusals not yet written to the audit log. Kept in the database, so a crash between two
 *   audit records loses no count.
 *
 * Existing rows: a lineage is rebuilt per silo from each enrollment certificate and the renewals issued after it
 * (re-enrollment always revoked every earlier certificate, so this grouping is exact); a lineage that already holds
 * a revoked certificate has its remaining certificates revoked, which closes the hole this migration fixes. The
 * parent of a renewal was not recorded before and stays NULL. Frozen: uses node:crypto only, never library code.
 */
export class CertificateLineage1763800550000 implements MigrationInterface {
  name = 'CertificateLineage1763800550000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE "silo_certificates"
        ADD COLUMN "lineage_id" uuid,
        ADD COLUMN "parent_serial" varchar(64) REFERENCES "silo_certificates" ("serial"),
        ADD COLUMN "public_key_sha256" char(64)`);
    await q.query(`UPDATE "silo_certificates" SET "lineage_id" = gen_random_uuid() WHERE "issued_via" = 'enrollment'`);
    await q.query(`
      UPDATE "silo_certificates" c SET "lineage_id" = COALESCE(
        (SELECT e."lineage_id" FROM "silo_certificates" e
          WHERE e."silo_id" = c."silo_id" AND e."issued_via" = 'enrollment' AND e."created_at" <= c."created_at"
          ORDER BY e."created_at" DESC LIMIT 1),
        gen_random_uuid())
      WHERE c."issued_via" = 'renewal'`);
    const rows = (await q.query(`SELECT "serial", "certificate_pem" FROM "silo_certificates"`)) as {
      serial: string;
      certificate_pem: string;
    }[];
    for (const row of rows) {
      const spki = new X509Certificate(row.certificate_pem).publicKey.export({ type: 'spki', format: 'der' });
      await q.query(`UPDATE "silo_certificates" SET "public_key_sha256" = $1 WHERE "serial" = $2`, [
        createHash('sha256').update(spki).digest('hex'),
        row.serial,
      ]);
    }
    await q.query(`
      UPDATE "silo_certificates" c
         SET "status" = 'revoked', "revoked_at" = r."revoked_at",
             "revocation_reason" = 'revoked with certificate ' || r."serial" || ' of the same lineage: '
               || COALESCE(r."revocation_reason", 'no reason given')
        FROM (SELECT DISTINCT ON ("lineage_id") "lineage_id", "serial", "revoked_at", "revocation_reason"
                FROM "silo_certificates" WHERE "status" = 'revoked'
               ORDER BY "lineage_id", "revoked_at" ASC NULLS LAST) r
       WHERE c."lineage_id" = r."lineage_id" AND c."status" <> 'revoked'`);
    await q.query(`
      ALTER TABLE "silo_certificates"
        ALTER COLUMN "lineage_id" SET NOT NULL,
        ALTER COLUMN "public_key_sha256" SET NOT NULL`);
    await q.query(`CREATE INDEX "silo_certificates_lineage" ON "silo_certificates" ("lineage_id")`);
    await q.query(`
      CREATE TABLE "silo_identity_refusals" (
        "fingerprint_sha256" char(64) NOT NULL,
        "reason_sha256" char(64) NOT NULL,
        "action" varchar(64) NOT NULL,
        "actor" jsonb NOT NULL,
        "subject" jsonb,
        "kind" varchar(32),
        "reason" text NOT NULL,
        "pending_count" integer NOT NULL DEFAULT 0 CHECK ("pending_count" >= 0),
        "pending_first_at" timestamptz,
        "pending_last_at" timestamptz,
        "pending_remote_addresses" text[] NOT NULL DEFAULT '{}',
        "last_recorded_at" timestamptz,
        PRIMARY KEY ("fingerprint_sha256", "reason_sha256"),
        CHECK (("pending_count" = 0) = ("pending_first_at" IS NULL))
      )`);
    await q.query(
      `CREATE INDEX "silo_identity_refusals_pending" ON "silo_identity_refusals" ("last_recorded_at")
         WHERE "pending_count" > 0`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "silo_identity_refusals"`);
    await q.query(`DROP INDEX "silo_certificates_lineage"`);
    await q.query(`
      ALTER TABLE "silo_certificates"
        DROP COLUMN "public_key_sha256",
        DROP COLUMN "parent_serial",
        DROP COLUMN "lineage_id"`);
  }
}
