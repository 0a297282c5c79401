import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The hub's privacy ledger: one row per silo per round in which it spent privacy, with the mechanism. */
export class PrivacyLedger1763800400000 implements MigrationInterface {
  name = 'PrivacyLedger1763800400000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "privacy_ledger" (
        "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        "study_id" uuid NOT NULL REFERENCES "studies" ("id"),
        "silo_id" uuid NOT NULL REFERENCES "silos" ("id"),
        "round" integer NOT NULL,
        "attempt" integer NOT NULL,
        "mechanism" varchar(10) NOT NULL,
        "unit" varchar(8) NOT NULL,
        "noise_multiplier" double precision NOT NULL,
        "clip_norm" double precision NOT NULL,
        "sampling_rate" double precision NOT NULL,
        "steps" integer NOT NULL,
        "delta" double precision NOT NULL,
        "rounds_spent" integer NOT NULL,
        "epsilon_round" double precision NOT NULL,
        "epsilon_cumulative" double precision NOT NULL,
        "accountant" varchar(64) NOT NULL,
        "reported" jsonb,
        "agrees" boolean NOT NULL,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "privacy_ledger_once" UNIQUE ("study_id", "silo_id", "round", "attempt")
      )`);
    await q.query(`CREATE INDEX "privacy_ledger_study_silo" ON "privacy_ledger" ("study_id", "silo_id")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "privacy_ledger"`);
  }
}
