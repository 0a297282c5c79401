import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Sign-in with a hospital's identity provider (ADR 0010). An account is linked to one identity, the pair
 * (issuer, subject) of the provider's ID token, never to an e-mail address or a name the provider lets people
 * change. Both columns are set together or not at all, and one identity opens at most one account.
 */
export class OidcIdentities1763802200000 implements MigrationInterface {
  name = 'OidcIdentities1763802200000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "users" ADD COLUMN "oidc_issuer" text`);
    await q.query(`ALTER TABLE "users" ADD COLUMN "oidc_subject" text`);
    await q.query(
      `ALTER TABLE "users" ADD CONSTRAINT "users_oidc_identity_check" CHECK (("oidc_issuer" IS NULL) = ("oidc_subject" IS NULL))`,
    );
    await q.query(
      `CREATE UNIQUE INDEX "users_oidc_identity_unique" ON "users" ("oidc_issuer", "oidc_subject") WHERE "oidc_issuer" IS NOT NULL`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "users_oidc_identity_unique"`);
    await q.query(`ALTER TABLE "users" DROP CONSTRAINT "users_oidc_identity_check"`);
    await q.query(`ALTER TABLE "users" DROP COLUMN "oidc_subject"`);
    await q.query(`ALTER TABLE "users" DROP COLUMN "oidc_issuer"`);
  }
}
