import { describe, expect, it } from 'vitest';
import { ConfigError, loadHubConfig } from './hub-config';

describe('aggregation memory configuration', () => {
  it('defaults to 512 MiB and blocks of 65,536 coordinates', () => {
    const config = loadHubConfig({});
    expect(config.aggregationMemory).toBe(512 * 2 ** 20);
    expect(config.aggregationBlockParameters).toBe(65_536);
  });

  it.each([
    ['300', 300],
    ['64kb', 64 * 1024],
    ['2GB', 2 * 2 ** 30],
    ['100mb', 100 * 2 ** 20],
  ])('reads %s as %d bytes', (given, bytes) => {
    expect(loadHubConfig({ TESSERA_AGGREGATION_MEMORY: given }).aggregationMemory).toBe(bytes);
  });

  it.each(['lots', '0', '1.5gb', '-1mb', '10tb'])('refuses %s, naming the variable', (given) => {
    let problem: unknown;
    try {
      loadHubConfig({ TESSERA_AGGREGATION_MEMORY: given });
    } catch (err) {
      problem = err;
    }
    expect(problem).toBeInstanceOf(ConfigError);
    expect((problem as ConfigError).problems.map((p) => p.variable)).toEqual(['TESSERA_AGGREGATION_MEMORY']);
  });

  it('sums on one thread per core by default; takes 0 (main thread) to 64 threads and refuses anything else', () => {
    expect(loadHubConfig({}).aggregationThreads).toBe('auto');
    expect(loadHubConfig({ TESSERA_AGGREGATION_THREADS: '0' }).aggregationThreads).toBe(0);
    expect(loadHubConfig({ TESSERA_AGGREGATION_THREADS: '3' }).aggregationThreads).toBe(3);
    for (const bad of ['-1', '65', '1.5', 'many']) {
      expect(() => loadHubConfig({ TESSERA_AGGREGATION_THREADS: bad })).toThrow(/TESSERA_AGGREGATION_THREADS/);
    }
  });

  it('refuses a block size of 0', () => {
    expect(() => loadHubConfig({ TESSERA_AGGREGATION_BLOCK_PARAMETERS: '0' })).toThrow(
      /TESSERA_AGGREGATION_BLOCK_PARAMETERS/,
    );
  });
});
