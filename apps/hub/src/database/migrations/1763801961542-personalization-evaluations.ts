import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The final evaluation of a personalizing plan under noisy evaluation releases one noisy histogram per model it
 * evaluates (the global model, the personalized one and the local-only baseline: docs/personalization.md), so one
 * charge may add up to three evaluation releases; migration 1763800600000 allowed 0 or 1.
 */
export class PersonalizationEvaluations1763801961542 implements MigrationInterface {
  name = 'PersonalizationEvaluations1763801961542';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "privacy_ledger" DROP CONSTRAINT "privacy_ledger_evaluation_added_check"`);
    await q.query(
      `ALTER TABLE "privacy_ledger" ADD CONSTRAINT "privacy_ledger_evaluation_added_check" CHECK ("evaluation_added" BETWEEN 0 AND 3)`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "privacy_ledger" DROP CONSTRAINT "privacy_ledger_evaluation_added_check"`);
    await q.query(
      `ALTER TABLE "privacy_ledger" ADD CONSTRAINT "privacy_ledger_evaluation_added_check" CHECK ("evaluation_added" IN (0, 1))`,
    );
  }
}
