import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Signed webhooks for study events (issue 19, item 4; docs/operator-guide.md, "Notifications").
 *
 * - `webhook_endpoints`: where to send which events. `secret` is the HMAC key; the hub needs it in the clear to sign,
 *   so it is stored as generated (protect database backups as you protect the hub's other secrets).
 * - `webhook_deliveries`: the outbox. One row per event and endpoint; `body` is the exact JSON that is signed and
 *   sent. A replica claims due rows with FOR UPDATE SKIP LOCKED and a lease (`claim`, `lease_until`), so at most one
 *   replica sends a given row at a time, and a crashed replica's claim lapses.
 * - `webhook_attempts`: the delivery log, one row per HTTP attempt.
 * - `webhook_feed`: how far the audit log has been turned into deliveries (one row). Events come from audit records,
 *   which commit in the same transaction as the state change they describe, in seq order (the chain lock).
 *   Starts at the current head: history is not replayed to endpoints.
 */
export class Webhooks1763801500000 implements MigrationInterface {
  name = 'Webhooks1763801500000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "webhook_endpoints" (
        "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        "url" text NOT NULL CHECK (length("url") <= 2048),
        "description" varchar(200) NOT NULL DEFAULT '',
        "events" text[] NOT NULL CHECK (cardinality("events") > 0),
        "secret" text NOT NULL,
        "enabled" boolean NOT NULL DEFAULT true,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE "webhook_deliveries" (
        "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        "endpoint_id" uuid NOT NULL REFERENCES "webhook_endpoints" ("id") ON DELETE CASCADE,
        "event_id" varchar(64) NOT NULL,
        "event_type" varchar(64) NOT NULL,
        "body" text NOT NULL,
        "status" varchar(16) NOT NULL CHECK ("status" IN ('pending', 'delivering', 'delivered', 'failed')),
        "attempts" integer NOT NULL DEFAULT 0 CHECK ("attempts" >= 0),
        "next_attempt_at" timestamptz NOT NULL DEFAULT now(),
        "claim" uuid,
        "lease_until" timestamptz,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "finished_at" timestamptz,
        UNIQUE ("endpoint_id", "event_id")
      )`);
    await q.query(
      `CREATE INDEX "webhook_deliveries_due" ON "webhook_deliveries" ("next_attempt_at")
         WHERE "status" IN ('pending', 'delivering')`,
    );
    await q.query(`CREATE INDEX "webhook_deliveries_endpoint" ON "webhook_deliveries" ("endpoint_id", "created_at")`);
    await q.query(`
      CREATE TABLE "webhook_attempts" (
        "id" bigserial PRIMARY KEY,
        "delivery_id" uuid NOT NULL REFERENCES "webhook_deliveries" ("id") ON DELETE CASCADE,
        "endpoint_id" uuid NOT NULL REFERENCES "webhook_endpoints" ("id") ON DELETE CASCADE,
        "attempt" integer NOT NULL CHECK ("attempt" >= 1),
        "at" timestamptz NOT NULL,
        "status_code" integer,
        "duration_ms" integer NOT NULL CHECK ("duration_ms" >= 0),
        "error" text
      )`);
    await q.query(`CREATE INDEX "webhook_attempts_endpoint" ON "webhook_attempts" ("endpoint_id", "id")`);
    await q.query(`
      CREATE TABLE "webhook_feed" (
        "id" smallint PRIMARY KEY CHECK ("id" = 1),
        "audit_seq" bigint NOT NULL
      )`);
    await q.query(
      `INSERT INTO "webhook_feed" ("id", "audit_seq") SELECT 1, coalesce(max("seq"), 0) FROM "audit_records"`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "webhook_feed"`);
    await q.query(`DROP TABLE "webhook_attempts"`);
    await q.query(`DROP TABLE "webhook_deliveries"`);
    await q.query(`DROP TABLE "webhook_endpoints"`);
  }
}
