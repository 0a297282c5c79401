import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The tamper-evident audit log (docs/audit.md): hash-chained records, signed checkpoints and the hub's Ed25519
 * signing keys. All three tables are append-only at the database level: a statement trigger refuses UPDATE, DELETE
 * and TRUNCATE for every role that does not first disable it (which needs ownership of the table or superuser).
 */
export class AuditLog1763800200000 implements MigrationInterface {
  name = 'AuditLog1763800200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION "audit_refuse_change"() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME
          USING ERRCODE = 'insufficient_privilege';
      END
      $$`);
    // Second line of defence behind the writer's advisory lock: a record must extend the current head exactly, so
    // no code path (or replica) can fork the chain or leave a gap. The hash itself is checked by verification.
    await q.query(`
      CREATE FUNCTION "audit_records_link"() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        head record;
      BEGIN
        SELECT "seq", "hash" INTO head FROM "audit_records" ORDER BY "seq" DESC LIMIT 1;
        IF head IS NULL THEN
          IF NEW."seq" <> 1 OR NEW."prev_hash" <> repeat('0', 64) THEN
            RAISE EXCEPTION 'the first audit record must have seq 1 and the genesis prev_hash';
          END IF;
        ELSIF NEW."seq" <> head."seq" + 1 OR NEW."prev_hash" <> head."hash" THEN
          RAISE EXCEPTION 'audit record seq % does not extend the head (seq %)', NEW."seq", head."seq";
        END IF;
        RETURN NEW;
      END
      $$`);
    await q.query(`
      CREATE TABLE "audit_records" (
        "seq" bigint PRIMARY KEY CHECK ("seq" >= 1),
        "prev_hash" char(64) NOT NULL,
        "hash" char(64) NOT NULL,
        "time" text NOT NULL,
        "time_at" timestamptz NOT NULL,
        "actor" jsonb NOT NULL,
        "action" text NOT NULL,
        "subject" jsonb NOT NULL,
        "details" jsonb NOT NULL,
        "study_id" uuid,
        "silo_id" uuid,
        "actor_id" text NOT NULL,
        CONSTRAINT "audit_records_hash_unique" UNIQUE ("hash"),
        CONSTRAINT "audit_records_prev_hash_unique" UNIQUE ("prev_hash")
      )`);
    await q.query(`CREATE INDEX "audit_records_time_at" ON "audit_records" ("time_at")`);
    await q.query(`CREATE INDEX "audit_records_study" ON "audit_records" ("study_id", "seq")`);
    await q.query(`CREATE INDEX "audit_records_silo" ON "audit_records" ("silo_id", "seq")`);
    await q.query(`CREATE INDEX "audit_records_actor" ON "audit_records" ("actor_id", "seq")`);
    // text_pattern_ops lets `action LIKE 'silo.%'` (prefix filter) use the index whatever the collation.
    await q.query(`CREATE INDEX "audit_records_action" ON "audit_records" ("action" text_pattern_ops)`);
    await q.query(`
      CREATE TRIGGER "audit_records_link" BEFORE INSERT ON "audit_records"
        FOR EACH ROW EXECUTE FUNCTION "audit_records_link"()`);

    await q.query(`
      CREATE TABLE "audit_signing_keys" (
        "key_id" char(64) PRIMARY KEY,
        "public_key_pem" text NOT NULL,
        "private_key_encrypted_pem" text NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE "audit_checkpoints" (
        "seq" bigint PRIMARY KEY REFERENCES "audit_records" ("seq"),
        "head_hash" char(64) NOT NULL,
        "time" text NOT NULL,
        "count" bigint NOT NULL,
        "key_id" char(64) NOT NULL REFERENCES "audit_signing_keys" ("key_id"),
        "signature" text NOT NULL
      )`);

    for (const table of ['audit_records', 'audit_checkpoints', 'audit_signing_keys']) {
      await q.query(`
        CREATE TRIGGER "${table}_append_only" BEFORE UPDATE OR DELETE OR TRUNCATE ON "${table}"
          FOR EACH STATEMENT EXECUTE FUNCTION "audit_refuse_change"()`);
    }
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "audit_checkpoints"`);
    await q.query(`DROP TABLE "audit_signing_keys"`);
    await q.query(`DROP TABLE "audit_records"`);
    await q.query(`DROP FUNCTION "audit_records_link"()`);
    await q.query(`DROP FUNCTION "audit_refuse_change"()`);
  }
}
