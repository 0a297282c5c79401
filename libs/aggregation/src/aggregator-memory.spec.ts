import { describe, expect, it } from 'vitest';
import { AggregationErrorCode, AggregationException } from './aggregation.exception';
import { aggregationMemory, chooseAggregationVariant, formatBytes, screeningMemory } from './aggregator-memory';
import { refusalCode } from './robust.test-util';

const M10 = 10_000_000;

describe('aggregation memory descriptors', () => {
  it('FedAvg streams: one update, a float64 sum and the mean, whatever n', () => {
    const [streaming] = aggregationMemory({ aggregator: { kind: 'fedavg' } }, { updates: 64, parameters: M10 });
    expect(streaming).toMatchObject({ variant: 'streaming', holdsEveryUpdate: false, bytes: 16 * M10, passes: 1 });
  });

  it('coordinate median, 64 × 10M: 2.6 GB in memory, 58 MB blockwise', () => {
    const [inMemory, blockwise] = aggregationMemory(
      { aggregator: { kind: 'coordinate-median' } },
      { updates: 64, parameters: M10 },
    );
    // 4·n·m + 4·n·T + 4·m, T = 4096 (sort tile)
    expect(inMemory).toMatchObject({ variant: 'in-memory', holdsEveryUpdate: true, passes: 1 });
    expect(inMemory!.bytes).toBe(4 * 64 * M10 + 4 * 64 * 4096 + 4 * M10);
    // 4·n·B + 4·n·T + 4·m with B = 65,536: 16 MiB of blocks, 1 MiB of sort rows, 40 MB of result
    expect(blockwise).toMatchObject({ variant: 'blockwise', holdsEveryUpdate: false, passes: 1 });
    expect(blockwise!.bytes).toBe(4 * 64 * 65_536 + 4 * 64 * 4096 + 4 * M10);
    expect(blockwise!.formula).toBe('4nB + 4nT + 4m');
  });

  it('Krum and the geometric median: n² distances, two passes blockwise; the trimmed mean adds its float64 sums', () => {
    for (const aggregator of [{ kind: 'krum', byzantine: 3 } as const, { kind: 'geometric-median' } as const]) {
      const [inMemory, blockwise] = aggregationMemory({ aggregator }, { updates: 32, parameters: 1_000_000 });
      expect(inMemory!.bytes).toBe(4 * 32 * 1e6 + 8 * 32 * 32 + 8 * 65_536 + 4 * 1e6);
      expect(blockwise!.bytes).toBe(4 * 32 * 65_536 + 8 * 32 * 32 + 8 * 65_536 + 4 * 1e6);
      expect(blockwise!.passes).toBe(2);
    }
    const [, trimmed] = aggregationMemory(
      { aggregator: { kind: 'trimmed-mean', trimFraction: 0.1 } },
      { updates: 8, parameters: 100 },
    );
    // B and T shrink to m when the model is smaller than a block.
    expect(trimmed!.bytes).toBe(4 * 8 * 100 + 4 * 8 * 100 + 8 * 100 + 4 * 100);
  });

  it('norm bounding adds clipped copies in memory, scaled blocks and a norm pass blockwise (none when norms are known)', () => {
    const choice = { aggregator: { kind: 'coordinate-median' }, normBound: { mode: 'fixed', maxNorm: 1 } } as const;
    const plain = aggregationMemory({ aggregator: choice.aggregator }, { updates: 8, parameters: 1e6 });
    const [inMemory, blockwise] = aggregationMemory(choice, { updates: 8, parameters: 1e6 });
    expect(inMemory!.bytes - plain[0]!.bytes).toBe(4 * 8 * 1e6);
    expect(blockwise!.bytes - plain[1]!.bytes).toBe(4 * 8 * 65_536);
    expect(blockwise!.passes).toBe(2);
    expect(aggregationMemory(choice, { updates: 8, parameters: 1e6, normsKnown: true })[1]!.passes).toBe(1);
    const [fedavg] = aggregationMemory(
      { aggregator: { kind: 'fedavg' }, normBound: choice.normBound },
      { updates: 8, parameters: 1e6 },
    );
    expect(fedavg!.bytes).toBe(20 * 1e6);
  });

  it('screening: the reference vectors, 24 bytes of sums per update, and the updates or their blocks', () => {
    const [inMemory, blockwise] = screeningMemory({ updates: 10, parameters: 1000 }, { previousUpdate: true });
    expect(inMemory!.bytes).toBe(4 * 10 * 1000 + 8 * 1000 + 240);
    expect(blockwise!.bytes).toBe(4 * 10 * 1000 + 8 * 1000 + 240); // B = m here
  });

  it('chooses in memory when it fits, blockwise when only that fits', () => {
    const choice = { aggregator: { kind: 'geometric-median' } } as const;
    expect(chooseAggregationVariant(choice, { updates: 8, parameters: 1e6 }, 2 ** 30).variant).toBe('in-memory');
    expect(chooseAggregationVariant(choice, { updates: 64, parameters: M10 }, 2 ** 30).variant).toBe('blockwise');
  });

  it('refuses with a message naming the need, the variants and the budget', () => {
    let caught: unknown;
    try {
      chooseAggregationVariant(
        { aggregator: { kind: 'coordinate-median' } },
        { updates: 64, parameters: M10 },
        10 * 2 ** 20,
      );
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(AggregationException);
    const error = caught as AggregationException;
    expect(error.code).toBe(AggregationErrorCode.MemoryBudgetExceeded);
    expect(error.message).toBe(
      'coordinate-wise median of 64 updates × 10,000,000 parameters needs 2.42 GiB in-memory (1 pass, 4nm + 4nT + 4m) or ' +
        '55.1 MiB blockwise (1 pass, 4nB + 4nT + 4m); the configured aggregation memory is 10.0 MiB. ' +
        'Raise the budget, use smaller blocks, or plan fewer silos or a smaller model.',
    );
  });

  it('refuses bad shapes and budgets', () => {
    const choice = { aggregator: { kind: 'fedavg' } } as const;
    expect(refusalCode(() => aggregationMemory(choice, { updates: 0, parameters: 1 }))).toBe(
      AggregationErrorCode.InvalidParameter,
    );
    expect(refusalCode(() => aggregationMemory(choice, { updates: 1, parameters: 1.5 }))).toBe(
      AggregationErrorCode.InvalidParameter,
    );
    expect(refusalCode(() => aggregationMemory(choice, { updates: 1, parameters: 1, blockParameters: 0 }))).toBe(
      AggregationErrorCode.InvalidParameter,
    );
    expect(refusalCode(() => chooseAggregationVariant(choice, { updates: 1, parameters: 1 }, 0))).toBe(
      AggregationErrorCode.InvalidParameter,
    );
  });

  it('formats bytes in binary units', () => {
    expect([512, 1536, 10 * 2 ** 20, 2.56e9].map(formatBytes)).toEqual(['512 B', '1.50 KiB', '10.0 MiB', '2.38 GiB']);
  });
});
