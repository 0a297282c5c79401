import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Personalization at the final evaluation (issue 20, item 5; docs/personalization.md).
 *
 * - `round_participants.personalization`: what a silo reported of its own models at the final evaluation (the
 *   figures of its personalized model and, when planned, of its local-only baseline), beside `evaluation` (the global
 *   model's). Null for every other row.
 * - `privacy_ledger.personalization_added`: personalization charges (0 or 1) a charge adds: the DP-SGD steps of the
 *   fine-tuning and the local baseline, composed with the training rounds'. 0 for every row before this migration.
 */
export class Personalization1763801953917 implements MigrationInterface {
  name = 'Personalization1763801953917';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "round_participants" ADD COLUMN "personalization" jsonb`);
    await q.query(
      `ALTER TABLE "privacy_ledger" ADD COLUMN "personalization_added" integer NOT NULL DEFAULT 0 CHECK ("personalization_added" IN (0, 1))`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "privacy_ledger" DROP COLUMN "personalization_added"`);
    await q.query(`ALTER TABLE "round_participants" DROP COLUMN "personalization"`);
  }
}
