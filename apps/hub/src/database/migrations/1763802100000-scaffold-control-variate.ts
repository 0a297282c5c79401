import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * SCAFFOLD plans (ADR 0019): the hub's control variate c, a float32 blob of the model's length, named by the study
 * like the server optimizer's state. Null until the first SCAFFOLD round is aggregated (c = 0) and for every other
 * algorithm.
 */
export class ScaffoldControlVariate1763802100000 implements MigrationInterface {
  name = 'ScaffoldControlVariate1763802100000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "studies" ADD "control_variate_hash" char(64)`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "studies" DROP COLUMN "control_variate_hash"`);
  }
}
