import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Rounds close in three steps (issue 15, item 2): a short transaction decides and CLAIMS the round (status
 * 'closing', a random claim token and a lease), the aggregation runs outside any transaction, and a second short
 * transaction commits the result only if the claim is still the one it made. A round stays 'closing' while it is
 * aggregated; uploads to it are refused like those to a closed round.
 *
 * The lease is renewed while the holder works and is judged by the database's clock (one clock for every replica):
 * a hub that dies while aggregating leaves a claim that another hub, or the same one restarted, takes over once the
 * lease has run out.
 */
export class RoundCloseClaim1763800900000 implements MigrationInterface {
  name = 'RoundCloseClaim1763800900000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "rounds" DROP CONSTRAINT "rounds_status_check"`);
    await q.query(`
      ALTER TABLE "rounds" ADD CONSTRAINT "rounds_status_check"
        CHECK ("status" IN ('open', 'closing', 'closed', 'retried', 'failed', 'abandoned'))`);
    await q.query(`ALTER TABLE "rounds" ADD COLUMN "close_claim" uuid`);
    await q.query(`ALTER TABLE "rounds" ADD COLUMN "close_claim_expires_at" timestamptz`);
    // A claim exists exactly while the round is closing.
    await q.query(`
      ALTER TABLE "rounds" ADD CONSTRAINT "rounds_close_claim_while_closing"
        CHECK (("status" = 'closing') = ("close_claim" IS NOT NULL AND "close_claim_expires_at" IS NOT NULL))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`UPDATE "rounds" SET "status" = 'open' WHERE "status" = 'closing'`);
    await q.query(`ALTER TABLE "rounds" DROP CONSTRAINT "rounds_close_claim_while_closing"`);
    await q.query(`ALTER TABLE "rounds" DROP COLUMN "close_claim_expires_at"`);
    await q.query(`ALTER TABLE "rounds" DROP COLUMN "close_claim"`);
    await q.query(`ALTER TABLE "rounds" DROP CONSTRAINT "rounds_status_check"`);
    await q.query(`
      ALTER TABLE "rounds" ADD CONSTRAINT "rounds_status_check"
        CHECK ("status" IN ('open', 'closed', 'retried', 'failed', 'abandoned'))`);
  }
}
