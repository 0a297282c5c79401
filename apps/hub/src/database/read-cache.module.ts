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
        { provide: ReadCache, useValue: new ReadCache(generation, READ_CACHE_OPTIONS) },
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
