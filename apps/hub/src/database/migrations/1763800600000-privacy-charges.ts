import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The privacy ledger charges what silos spend (issue 13): a row is written when the hub ISSUES a task that makes a
 * silo spend privacy (a training task, a noisy evaluation), not when its update is accepted, so late, lost and
 * refused uploads are charged too. At most one charge per (study, silo, round, task kind): a retried attempt of a
 * round re-sends the same release and is not charged again. The silo's own report is attached to the charge when it
 * arrives (`reported`, `agrees`, `reported_at`).
 *
 * Rows written before this migration were recorded on acceptance, one per accepted update (attempts included); they
 * keep `charged_on = 'accepted'` so an auditor can tell the two rules apart, and are left out of the once-per-round
 * index.
 */
export class PrivacyCharges1763800600000 implements MigrationInterface {
  name = 'PrivacyCharges1763800600000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "privacy_ledger" RENAME COLUMN "rounds_spent" TO "training_rounds"`);
    await q.query(`
      ALTER TABLE "privacy_ledger"
        ADD COLUMN "kind" varchar(8) NOT NULL DEFAULT 'train' CHECK ("kind" IN ('train', 'evaluate')),
        ADD COLUMN "training_added" integer NOT NULL DEFAULT 1 CHECK ("training_added" IN (0, 1)),
        ADD COLUMN "evaluation_added" integer NOT NULL DEFAULT 0 CHECK ("evaluation_added" IN (0, 1)),
        ADD COLUMN "evaluation_releases" integer NOT NULL DEFAULT 0,
        ADD COLUMN "charged_on" varchar(8) NOT NULL DEFAULT 'accepted' CHECK ("charged_on" IN ('accepted', 'issued')),
        ADD COLUMN "reported_at" timestamptz`);
    await q.query(`UPDATE "privacy_ledger" SET "reported_at" = "created_at" WHERE "reported" IS NOT NULL`);
    // New rows must say what they are: no defaults from here on.
    await q.query(`
      ALTER TABLE "privacy_ledger"
        ALTER COLUMN "kind" DROP DEFAULT,
        ALTER COLUMN "training_added" DROP DEFAULT,
        ALTER COLUMN "evaluation_added" DROP DEFAULT,
        ALTER COLUMN "evaluation_releases" DROP DEFAULT,
        ALTER COLUMN "charged_on" DROP DEFAULT,
        ALTER COLUMN "agrees" DROP NOT NULL`);
    await q.query(
      `CREATE UNIQUE INDEX "privacy_ledger_charge_once" ON "privacy_ledger" ("study_id", "silo_id", "round", "kind")
        WHERE "charged_on" = 'issued'`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "privacy_ledger_charge_once"`);
    await q.query(`DELETE FROM "privacy_ledger" WHERE "charged_on" = 'issued' AND "reported" IS NULL`);
    await q.query(`UPDATE "privacy_ledger" SET "agrees" = false WHERE "agrees" IS NULL`);
    await q.query(`
      ALTER TABLE "privacy_ledger"
        ALTER COLUMN "agrees" SET NOT NULL,
        DROP COLUMN "reported_at",
        DROP COLUMN "charged_on",
        DROP COLUMN "evaluation_releases",
        DROP COLUMN "evaluation_added",
        DROP COLUMN "training_added",
        DROP COLUMN "kind"`);
    await q.query(`ALTER TABLE "privacy_ledger" RENAME COLUMN "training_rounds" TO "rounds_spent"`);
  }
}
