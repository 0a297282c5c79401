import { type DynamicModule, Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { DataGeneration } from './data-generation';
import { ReadCache } from './read-cache';
import { TransactionGate } from './transaction-gate';

/**
 * Console reads reused while nothing was written. 2 s bounds views that read the clock (an enrollment token shown
 * as pending until it expires); 2,000 entries (filtered audit pages, studies, silos) is a few MiB at most.
 */
const READ_CACHE_OPTIONS = { maxEntries: 2_000, maxAgeMs: 2_000 };

/**
 * Tells the generation which relations exist, so that a write moves only the tables it names (until then every
 * write moves all). Tables and sequences are written by statements that name them; a view's rows come from other
 * tables, so a read of one depends on every write.
 */
export async function learnRelations(db: DataSource, generation: DataGeneration): Promise<void> {
  const rows = await db.query<{ name: string; derived: boolean }[]>(
    `SELECT c."relname" AS "name", c."relkind" IN ('v', 'm') AS "derived"
       FROM "pg_class" c JOIN "pg_namespace" n ON n."oid" = c."relnamespace"
      WHERE n."nspname" = current_schema() AND c."relkind" IN ('r', 'p', 'f', 'S', 'v', 'm')`,
  );
  generation.know(
    rows.filter((r) => !r.derived).map((r) => r.name),
    rows.filter((r) => r.derived).map((r) => r.name),
  );
}

/**
 * What keeps console reads fast on the embedded database, for every feature's controllers (global): the hub's one
 * ReadCache (reads reused while nothing was written) and its TransactionGate (a read never queues behind more than
 * one transaction for the database's one connection). Both only with a generation, i.e. on the embedded database.
 */
@Module({})
export class ReadCacheModule {
  static forRoot(generation: DataGeneration | null): DynamicModule {
    return {
      module: ReadCacheModule,
      global: true,
      providers: [
        {
          provide: ReadCache,
          inject: [DataSource],
          useFactory: async (db: DataSource) => {
            if (generation) await learnRelations(db, generation);
            return new ReadCache(generation, READ_CACHE_OPTIONS);
          },
        },
        {
          provide: TransactionGate,
          inject: [DataSource],
          useFactory: (db: DataSource) => (generation ? TransactionGate.install(db) : null),
        },
      ],
      exports: [ReadCache],
    };
  }
}
