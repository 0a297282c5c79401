import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Secure aggregation's state at the hub (issue 16, items 2 and 3; docs/secure-aggregation.md). Everything the hub
 * keeps for a round's protocol lives here, so a hub killed at any stage resumes from the database; none of it is a
 * secret (every relayed share is encrypted to its recipient).
 *
 * - `secagg_sessions`: one row per round attempt run under secure aggregation — its configuration and hash, the stage
 *   and each stage's deadline, and what the hub decided when it closed a stage (the accepted advertisements and the
 *   exclusions, the share routing, the unmasking plan). `masked_sum` is the running sum modulo 2^k of the masked
 *   inputs accepted so far (packed as @tessera/secagg's encodeMaskedVector), `contributors` who is in it: an
 *   individual masked vector is added to the sum in the transaction that accepts it and never stored.
 * - `secagg_messages`: each silo's message at each stage (advertisement, share message, masked-input header without
 *   its vector, unmasking response), one per silo and stage.
 */
export class SecureAggregation1763801300000 implements MigrationInterface {
  name = 'SecureAggregation1763801300000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "secagg_sessions" (
        "round_id" uuid PRIMARY KEY REFERENCES "rounds" ("id") ON DELETE CASCADE,
        "config" jsonb NOT NULL,
        "config_hash" char(64) NOT NULL,
        "stage" varchar(10) NOT NULL
          CHECK ("stage" IN ('advertise', 'share', 'upload', 'unmask', 'complete', 'failed')),
        "advertise_until" timestamptz NOT NULL,
        "share_until" timestamptz NOT NULL,
        "upload_until" timestamptz NOT NULL,
        "unmask_until" timestamptz NOT NULL,
        "advertised" jsonb,
        "exclusions" jsonb NOT NULL DEFAULT '[]',
        "routing" jsonb,
        "unmasking_plan" jsonb,
        "masked_sum" bytea,
        "contributors" jsonb NOT NULL DEFAULT '[]',
        "failure" text,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CHECK ("advertise_until" <= "share_until" AND "share_until" <= "upload_until" AND "upload_until" <= "unmask_until")
      )`);
    await q.query(`
      CREATE TABLE "secagg_messages" (
        "round_id" uuid NOT NULL REFERENCES "secagg_sessions" ("round_id") ON DELETE CASCADE,
        "silo_id" uuid NOT NULL REFERENCES "silos" ("id"),
        "stage" varchar(10) NOT NULL CHECK ("stage" IN ('advertise', 'share', 'upload', 'unmask')),
        "body" jsonb NOT NULL,
        "received_at" timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY ("round_id", "silo_id", "stage")
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "secagg_messages"`);
    await q.query(`DROP TABLE "secagg_sessions"`);
  }
}
