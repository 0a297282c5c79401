import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The end reason of a study stopped by this migration (frozen here: the migration means the same forever). */
const LEGACY_PLAN_STOP_REASON =
  'stopped by the upgrade: the plan predates the current plan format. It split records into training and test by a ' +
  "seeded shuffle of each silo's whole file (and could standardise and impute with the file's own statistics), so " +
  'one record changed where every other record went and how it was encoded: the differential-privacy guarantee of ' +
  'this release cannot hold for it. The plan cannot be converted (it declares no encoding constants, and the ' +
  'stewards approved it as stored); create a new study with a plan in the current format.';

/**
 * Studies whose stored plan predates the plan format of issue 13 (no `release` section; `schema.standardize` and a
 * seeded `schema.split`) can no longer run: their records were split by a seeded shuffle of each silo's whole file
 * (stratified by label when asked), and their features could be standardised and imputed with the file's own means
 * and standard deviations, so adding one record changed where every other record went and how it was encoded. The differential-privacy
 * guarantee of this release is stated for neighbouring datasets and cannot hold for such a plan, and the plan cannot
 * be converted (the encoding constants it would need were never declared, and the stewards approved what is stored).
 *
 * - Draft, awaiting-approval and running legacy studies become `stopped` with an end reason saying why; their open
 *   rounds are abandoned, so no task is offered any more. Completed, failed and already stopped ones are left as
 *   they are.
 * - The stored plan (`plan`, `plan_hash`, every `study_plan_versions` row) is not touched: its hash is what the
 *   stewards approved and what the audit chain records.
 * - `legacy_plan_stops` lists each study stopped here. The audit record of the stop is appended by the hub at its
 *   next boot (LegacyPlanStopsService) rather than here: the chain's records are hashed and linked by the audit
 *   library under the chain's lock, and a migration must not carry a frozen copy of that code.
 *
 * The test is on the JSON shape only (SQL, no library code), so this migration means the same forever.
 */
export class LegacyStudyPlans1763800700000 implements MigrationInterface {
  name = 'LegacyStudyPlans1763800700000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "legacy_plan_stops" (
        "study_id" uuid PRIMARY KEY REFERENCES "studies" ("id") ON DELETE CASCADE,
        "previous_status" "study_status" NOT NULL,
        "reason" text NOT NULL,
        "abandoned_rounds" integer NOT NULL CHECK ("abandoned_rounds" >= 0),
        "stopped_at" timestamptz NOT NULL,
        "audited_at" timestamptz
      )`);
    await q.query(`
      CREATE INDEX "legacy_plan_stops_unaudited" ON "legacy_plan_stops" ("stopped_at") WHERE "audited_at" IS NULL`);
    await q.query(
      `
      WITH legacy AS (
        SELECT "id", "status" FROM "studies"
         WHERE "status" IN ('draft', 'awaiting_approvals', 'running')
           AND (NOT ("plan" ? 'release')
                OR ("plan" -> 'schema') ? 'standardize'
                OR ("plan" -> 'schema' -> 'split') ? 'seed')
         FOR UPDATE
      ),
      abandoned AS (
        UPDATE "rounds" r
           SET "status" = 'abandoned', "closed_at" = now(), "close_reason" = 'study stopped: plan of an earlier format'
          FROM legacy
         WHERE r."study_id" = legacy."id" AND r."status" = 'open'
        RETURNING r."study_id"
      ),
      stopped AS (
        UPDATE "studies" s
           SET "status" = 'stopped', "end_reason" = $1, "ended_at" = now(), "updated_at" = now()
          FROM legacy
         WHERE s."id" = legacy."id"
        RETURNING s."id"
      )
      INSERT INTO "legacy_plan_stops" ("study_id", "previous_status", "reason", "abandoned_rounds", "stopped_at")
      SELECT legacy."id", legacy."status", $1,
             (SELECT count(*) FROM abandoned a WHERE a."study_id" = legacy."id"), now()
        FROM legacy JOIN stopped ON stopped."id" = legacy."id"`,
      [LEGACY_PLAN_STOP_REASON],
    );
  }

  async down(q: QueryRunner): Promise<void> {
    // The stops stay: running a legacy plan again would break the privacy guarantee this migration protects.
    await q.query(`DROP TABLE "legacy_plan_stops"`);
  }
}
