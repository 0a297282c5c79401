import { type DynamicModule, Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { DataSource } from 'typeorm';
import { ConsoleViewInterceptor } from './console-view.interceptor';
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
 * ReadCache (reads reused while nothing was written; a person's console views up to 1 s old, their own writes
 * always included: ConsoleViewInterceptor) and its TransactionGate (a read never queues behind more than one
 * transaction for the database's one connection). All only with a generation, i.e. on the embedded database.
 */
@Module({})
export class ReadCacheModule {
  static forRoot(generation: DataGeneration | null): DynamicModule {
    return {
      module: ReadCacheModule,
      global: true,
      providers: [
        { provide: ReadCache, useValue: new ReadCache(generation, READ_CACHE_OPTIONS) },
        // A no-op on a server database (ReadCache off there).
        { provide: APP_INTERCEPTOR, useClass: ConsoleViewInterceptor },
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
