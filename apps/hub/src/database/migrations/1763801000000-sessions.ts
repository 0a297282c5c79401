import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Sessions that can be refreshed and revoked (issue 19, item 1; ADR 0010), and usernames unique whatever their case.
 *
 * - `sessions`: one row per sign-in, the "family" of every refresh token that sign-in led to. It ends when revoked
 *   (sign-out, account disabled, password or role changed, a rotated refresh token presented again), after
 *   `idle_expires_at` (slid forward by each refresh) or at `expires_at` (fixed at sign-in).
 * - `session_refresh_tokens`: the SHA-256 of each refresh token ever issued in a session, never the token itself.
 *   A token is used once: refreshing marks it rotated and issues its successor; a rotated token presented again is
 *   a replay, and revokes its whole session.
 * - `users.must_change_password`: set by an administrator's temporary password; the session it signs in to may only
 *   change the password. `users.last_sign_in_at`: shown to administrators.
 * - Usernames: the unique constraint on the exact name becomes a unique index on `lower(username)`, so `admin` and
 *   `ADMIN` can no longer both exist. Existing accounts that clash keep the oldest (by creation, then id) under its
 *   name; each later one is renamed `<name>-renamed-<n>` (n = 2, 3, … its rank in the group) and disabled, since two names
 *   that differ only in case are a mistake or an impersonation, and an administrator should look before it signs in
 *   again. Each rename is listed in `username_case_renames`; the hub appends its audit record at the next boot
 *   (AccountRenamesService), as a migration must not carry a frozen copy of the audit library.
 */
export class Sessions1763801000000 implements MigrationInterface {
  name = 'Sessions1763801000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "username_case_renames" (
        "user_id" uuid PRIMARY KEY REFERENCES "users" ("id") ON DELETE CASCADE,
        "previous_username" varchar(64) NOT NULL,
        "new_username" varchar(64) NOT NULL,
        "kept_user_id" uuid NOT NULL,
        "renamed_at" timestamptz NOT NULL DEFAULT now(),
        "audited_at" timestamptz
      )`);
    await q.query(`
      WITH ranked AS (
        SELECT "id", "username",
               first_value("id") OVER w AS "kept_id",
               row_number() OVER w AS "n"
          FROM "users"
        WINDOW w AS (PARTITION BY lower("username") ORDER BY "created_at", "id")
      )
      INSERT INTO "username_case_renames" ("user_id", "previous_username", "new_username", "kept_user_id")
      SELECT "id", "username", left("username", 50) || '-renamed-' || "n", "kept_id"
        FROM ranked WHERE "n" > 1`);
    await q.query(`
      UPDATE "users" u SET "username" = r."new_username", "disabled" = true, "updated_at" = now()
        FROM "username_case_renames" r WHERE r."user_id" = u."id"`);
    await q.query(`ALTER TABLE "users" DROP CONSTRAINT "users_username_unique"`);
    await q.query(`CREATE UNIQUE INDEX "users_username_lower_unique" ON "users" (lower("username"))`);
    await q.query(`ALTER TABLE "users" ADD COLUMN "must_change_password" boolean NOT NULL DEFAULT false`);
    await q.query(`ALTER TABLE "users" ADD COLUMN "last_sign_in_at" timestamptz`);

    await q.query(`
      CREATE TABLE "sessions" (
        "id" uuid PRIMARY KEY DEFAULT gen_random_uuid(),
        "user_id" uuid NOT NULL REFERENCES "users" ("id") ON DELETE CASCADE,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        "refreshed_at" timestamptz NOT NULL DEFAULT now(),
        "idle_expires_at" timestamptz NOT NULL,
        "expires_at" timestamptz NOT NULL,
        "revoked_at" timestamptz,
        "revoked_reason" text,
        CHECK ("idle_expires_at" <= "expires_at"),
        CHECK (("revoked_at" IS NULL) = ("revoked_reason" IS NULL))
      )`);
    await q.query(`CREATE INDEX "sessions_user_live" ON "sessions" ("user_id") WHERE "revoked_at" IS NULL`);
    await q.query(`CREATE INDEX "sessions_expires_at" ON "sessions" ("expires_at")`);
    await q.query(`
      CREATE TABLE "session_refresh_tokens" (
        "token_hash" char(64) PRIMARY KEY CHECK ("token_hash" ~ '^[0-9a-f]{64}$'),
        "session_id" uuid NOT NULL REFERENCES "sessions" ("id") ON DELETE CASCADE,
        "issued_at" timestamptz NOT NULL DEFAULT now(),
        "rotated_at" timestamptz
      )`);
    await q.query(`CREATE INDEX "session_refresh_tokens_session" ON "session_refresh_tokens" ("session_id")`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "session_refresh_tokens"`);
    await q.query(`DROP TABLE "sessions"`);
    await q.query(`ALTER TABLE "users" DROP COLUMN "last_sign_in_at"`);
    await q.query(`ALTER TABLE "users" DROP COLUMN "must_change_password"`);
    await q.query(`DROP INDEX "users_username_lower_unique"`);
    // Names unique in lower case are unique as typed; renamed accounts keep their new names.
    await q.query(`ALTER TABLE "users" ADD CONSTRAINT "users_username_unique" UNIQUE ("username")`);
    await q.query(`DROP TABLE "username_case_renames"`);
  }
}
