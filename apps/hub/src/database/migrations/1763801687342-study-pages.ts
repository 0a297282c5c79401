import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Study pages (issue 19, item 3): a study's lifecycle beyond its status, and the wizard's drafts kept on the hub.
 *
 * - `studies.paused_at`, `pause_reason`: set while an administrator has paused a running study (no new round opens).
 *   `paused_next_round`: the round the closer held back while paused ({ number, attempt, kind, modelHash }), opened
 *   on resume. The status stays 'running' so every reader of the status (agents, reports, ledger) is unchanged.
 * - `studies.archived_at`: archived studies are read-only and left out of the default list.
 * - `studies.cloned_from`: the study whose plan a draft was cloned from (no foreign key: the source may be any study).
 * - `study_drafts`: the wizard's form as typed, per administrator, optionally for a new version of a study.
 */
export class StudyPages1763801687342 implements MigrationInterface {
  name = 'StudyPages1763801687342';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE "studies"
        ADD COLUMN "paused_at" timestamptz,
        ADD COLUMN "pause_reason" text,
        ADD COLUMN "paused_next_round" jsonb,
        ADD COLUMN "archived_at" timestamptz,
        ADD COLUMN "cloned_from" uuid`);
    await q.query(`CREATE INDEX "studies_archived_at" ON "studies" ("archived_at")`);
    await q.query(`
      CREATE TABLE "study_drafts" (
        "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        "title" varchar(200) NOT NULL,
        "study_id" uuid REFERENCES "studies" ("id") ON DELETE CASCADE,
        "form" jsonb NOT NULL,
        "step" integer NOT NULL DEFAULT 0 CHECK ("step" >= 0 AND "step" < 100),
        "created_by" uuid NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "updated_at" timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX "study_drafts_created_by" ON "study_drafts" ("created_by", "updated_at")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "study_drafts"`);
    await q.query(`DROP INDEX "studies_archived_at"`);
    await q.query(`
      ALTER TABLE "studies"
        DROP COLUMN "cloned_from",
        DROP COLUMN "archived_at",
        DROP COLUMN "paused_next_round",
        DROP COLUMN "pause_reason",
        DROP COLUMN "paused_at"`);
  }
}
