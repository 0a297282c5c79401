import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Silo health from facts (issue 19, item 2). The hub keeps what it sees of each silo's agent in memory
 * (SiloPresence) and writes it here periodically, so it survives a restart:
 *
 * - `last_seen_at` (existing) is the last request seen on the silo listener (mutual TLS), now to the request rather
 *   than to 30 s; `enroll_last_seen_at` the last request on the enrollment listener naming this silo's token.
 * - `agent_version`, `agent_platform`, `agent_node`: what the agent last said about itself (x-tessera-agent header).
 */
export class SiloPresence1763801150000 implements MigrationInterface {
  name = 'SiloPresence1763801150000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE "silos"
        ADD COLUMN "enroll_last_seen_at" timestamptz,
        ADD COLUMN "agent_version" varchar(40),
        ADD COLUMN "agent_platform" varchar(40),
        ADD COLUMN "agent_node" varchar(40)
    `);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE "silos"
        DROP COLUMN "agent_node",
        DROP COLUMN "agent_platform",
        DROP COLUMN "agent_version",
        DROP COLUMN "enroll_last_seen_at"
    `);
  }
}
