import { type DynamicModule, Module } from '@nestjs/common';
import type { DataGeneration } from './data-generation';
import { ReadCache } from './read-cache';

/**
 * Console reads reused while nothing was written. 2 s bounds views that read the clock (an enrollment token shown
 * as pending until it expires); 2,000 entries (filtered audit pages, studies, silos) is a few MiB at most.
 */
const READ_CACHE_OPTIONS = { maxEntries: 2_000, maxAgeMs: 2_000 };

/** The hub's one ReadCache, for every feature's controllers (global: reads of any module may be reused). */
@Module({})
export class ReadCacheModule {
  static forRoot(generation: DataGeneration | null): DynamicModule {
    return {
      module: ReadCacheModule,
      global: true,
      providers: [{ provide: ReadCache, useValue: new ReadCache(generation, READ_CACHE_OPTIONS) }],
      exports: [ReadCache],
    };
  }
}
