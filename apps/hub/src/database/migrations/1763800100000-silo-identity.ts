import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The hub's own PKI material, silos, one-time enrollment tokens and issued silo certificates. */
export class SiloIdentity1763800100000 implements MigrationInterface {
  name = 'SiloIdentity1763800100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "hub_pki" (
        "name" varchar(32) PRIMARY KEY,
        "certificate_pem" text NOT NULL,
        "private_key_encrypted_pem" text NOT NULL,
        "fingerprint_sha256" char(64) NOT NULL,
        "not_after" timestamptz NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE TYPE "silo_status" AS ENUM ('registered', 'enrolled', 'suspended')`);
    await q.query(`
      CREATE TABLE "silos" (
        "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        "name" varchar(128) NOT NULL,
        "contact" varchar(256) NOT NULL,
        "status" "silo_status" NOT NULL DEFAULT 'registered',
        "suspended_reason" text,
        "last_seen_at" timestamptz,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "silos_name_unique" UNIQUE ("name")
      )`);
    await q.query(`
      CREATE TABLE "enrollment_tokens" (
        "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        "silo_id" uuid NOT NULL REFERENCES "silos" ("id"),
        "token_hash" char(64) NOT NULL,
        "expires_at" timestamptz NOT NULL,
        "used_at" timestamptz,
        "withdrawn_at" timestamptz,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "enrollment_tokens_hash_unique" UNIQUE ("token_hash")
      )`);
    await q.query(`CREATE INDEX "enrollment_tokens_silo" ON "enrollment_tokens" ("silo_id")`);
    await q.query(`CREATE TYPE "certificate_status" AS ENUM ('active', 'superseded', 'revoked')`);
    await q.query(`
      CREATE TABLE "silo_certificates" (
        "serial" varchar(64) PRIMARY KEY,
        "silo_id" uuid NOT NULL REFERENCES "silos" ("id"),
        "fingerprint_sha256" char(64) NOT NULL,
        "not_before" timestamptz NOT NULL,
        "not_after" timestamptz NOT NULL,
        "status" "certificate_status" NOT NULL DEFAULT 'active',
        "issued_via" varchar(16) NOT NULL CHECK ("issued_via" IN ('enrollment', 'renewal')),
        "first_used_at" timestamptz,
        "revoked_at" timestamptz,
        "revocation_reason" text,
        "certificate_pem" text NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "silo_certificates_fingerprint_unique" UNIQUE ("fingerprint_sha256")
      )`);
    await q.query(`CREATE INDEX "silo_certificates_silo" ON "silo_certificates" ("silo_id")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "silo_certificates"`);
    await q.query(`DROP TYPE "certificate_status"`);
    await q.query(`DROP TABLE "enrollment_tokens"`);
    await q.query(`DROP TABLE "silos"`);
    await q.query(`DROP TYPE "silo_status"`);
    await q.query(`DROP TABLE "hub_pki"`);
  }
}
