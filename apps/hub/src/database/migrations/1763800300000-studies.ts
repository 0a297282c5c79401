import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Studies, their plan versions, each silo's decisions, rounds and per-silo round participation. */
export class Studies1763800300000 implements MigrationInterface {
  name = 'Studies1763800300000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE TYPE "study_status" AS ENUM ('draft', 'awaiting_approvals', 'running', 'completed', 'stopped', 'failed')`,
    );
    await q.query(`
      CREATE TABLE "studies" (
        "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        "name" varchar(128) NOT NULL,
        "status" "study_status" NOT NULL DEFAULT 'draft',
        "plan_version" integer NOT NULL,
        "plan_hash" char(64) NOT NULL,
        "plan" jsonb NOT NULL,
        "privacy_cost" jsonb,
        "participants" jsonb NOT NULL DEFAULT '[]',
        "current_model_hash" char(64),
        "optimizer_state_hash" char(64),
        "end_reason" text,
        "created_by" uuid,
        "started_at" timestamptz,
        "ended_at" timestamptz,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`
      CREATE TABLE "study_plan_versions" (
        "study_id" uuid NOT NULL REFERENCES "studies" ("id"),
        "version" integer NOT NULL,
        "plan_hash" char(64) NOT NULL,
        "plan" jsonb NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY ("study_id", "version")
      )`);
    await q.query(`
      CREATE TABLE "study_decisions" (
        "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        "study_id" uuid NOT NULL REFERENCES "studies" ("id"),
        "silo_id" uuid NOT NULL REFERENCES "silos" ("id"),
        "plan_version" integer NOT NULL,
        "plan_hash" char(64) NOT NULL,
        "decision" varchar(8) NOT NULL CHECK ("decision" IN ('approve', 'reject')),
        "reason" text,
        "decided_at" timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX "study_decisions_study_silo" ON "study_decisions" ("study_id", "silo_id")`);
    await q.query(`
      CREATE TABLE "rounds" (
        "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        "study_id" uuid NOT NULL REFERENCES "studies" ("id"),
        "number" integer NOT NULL,
        "attempt" integer NOT NULL,
        "kind" varchar(8) NOT NULL CHECK ("kind" IN ('train', 'evaluate')),
        "status" varchar(10) NOT NULL CHECK ("status" IN ('open', 'closed', 'retried', 'failed', 'abandoned')),
        "model_hash" char(64) NOT NULL,
        "result_model_hash" char(64),
        "opened_at" timestamptz NOT NULL DEFAULT now(),
        "deadline_at" timestamptz NOT NULL,
        "closed_at" timestamptz,
        "close_reason" text,
        "summary" jsonb,
        CONSTRAINT "rounds_study_number_attempt" UNIQUE ("study_id", "number", "attempt")
      )`);
    await q.query(`CREATE INDEX "rounds_open" ON "rounds" ("status", "deadline_at")`);
    await q.query(`
      CREATE TABLE "round_participants" (
        "round_id" uuid NOT NULL REFERENCES "rounds" ("id"),
        "silo_id" uuid NOT NULL REFERENCES "silos" ("id"),
        "status" varchar(10) NOT NULL CHECK ("status" IN ('waiting', 'uploaded', 'evaluated', 'failed', 'late')),
        "update_hash" char(64),
        "update_bytes" bigint,
        "num_examples" integer,
        "l2_norm" double precision,
        "train_loss" double precision,
        "evaluation" jsonb,
        "privacy" jsonb,
        "failure" jsonb,
        "reported_at" timestamptz,
        PRIMARY KEY ("round_id", "silo_id")
      )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "round_participants"`);
    await q.query(`DROP TABLE "rounds"`);
    await q.query(`DROP TABLE "study_decisions"`);
    await q.query(`DROP TABLE "study_plan_versions"`);
    await q.query(`DROP TABLE "studies"`);
    await q.query(`DROP TYPE "study_status"`);
  }
}
