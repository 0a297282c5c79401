import { DataSource } from 'typeorm';
import { dataSourceOptions } from './data-source';
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
