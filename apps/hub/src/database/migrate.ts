import { createHash } from 'node:crypto';
import { DataSource } from 'typeorm';
import { dataSourceOptions, MIGRATIONS } from './data-source';
import type { DatabaseEndpoint } from './embedded-postgres';

/** Any 64-bit number unique to Tessera: two hubs starting together must not both run the migrations. */
const MIGRATION_LOCK = 7_262_637_361_001;

/**
 * Applies pending migrations on one connection, under a PostgreSQL advisory lock, each in its own transaction.
 * Returns the names of the migrations applied.
 */
export async function runMigrations(db: DatabaseEndpoint): Promise<string[]> {
  const ds = new DataSource({ ...dataSourceOptions({ ...db, poolSize: 1 }), migrationsTransactionMode: 'each' });
  await ds.initialize();
  try {
    await ds.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
    try {
      const applied = await ds.runMigrations({ transaction: 'each' });
      return applied.map((m) => m.name);
    } finally {
      await ds.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    }
  } finally {
    await ds.destroy();
  }
}

/**
 * Names the schema the migrations make: SHA-256 over each migration's name and code, so a changed migration (in
 * development) names another schema. The embedded database keeps a migrated new cluster under this name and starts
 * the next new one from it (ADR 0002).
 */
export function schemaKey(): string {
  const hash = createHash('sha256');
  for (const migration of MIGRATIONS) hash.update(`${migration.name}\n${String(migration)}\n`);
  return hash.digest('hex').slice(0, 32);
}
