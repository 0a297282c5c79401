import { describe, expect, it } from 'vitest';

import {
  createSecAggConfig,
  parseSecAggConfig,
  recommendedThreshold,
  secAggConfigHash,
  SecAggConfig,
  toleratedNeighbourDropouts,
} from './parameters';
import { SecAggErrorCode } from './secagg.exception';
import { refusalCode, siloIds, testConfig } from './secagg-round.test-util';

describe('round configuration', () => {
  const base = testConfig({ participants: siloIds(6) });

  it('sorts the roster when built and refuses an unsorted or duplicated one when parsed', () => {
    const built = createSecAggConfig({ ...base, participants: [...base.participants].reverse() });
    expect(built.participants).toEqual(base.participants);
    expect(refusalCode(() => parseSecAggConfig({ ...base, participants: [...base.participants].reverse() }))).toBe(
      SecAggErrorCode.InvalidParameters,
    );
    expect(
      refusalCode(() => parseSecAggConfig({ ...base, participants: [base.participants[0], ...base.participants] })),
    ).toBe(SecAggErrorCode.InvalidParameters);
  });

  it('refuses inconsistent parameters with INVALID_PARAMETERS and unsafe moduli with MODULUS_TOO_SMALL', () => {
    const invalid: Partial<SecAggConfig>[] = [
      { neighbourCount: 6 }, // > n − 1
      { threshold: 6 }, // > k
      { threshold: 1 },
      { participants: siloIds(2), neighbourCount: 1, threshold: 1 },
      { roundSeed: 'xyz' },
      { vectorLength: 0 },
    ];
    for (const change of invalid) {
      expect(refusalCode(() => parseSecAggConfig({ ...base, ...change }))).toBe(SecAggErrorCode.InvalidParameters);
    }
    expect(refusalCode(() => parseSecAggConfig({ ...base, modulusBits: 16, scale: 2 ** 14 }))).toBe(
      SecAggErrorCode.ModulusTooSmall,
    );
    expect(refusalCode(() => parseSecAggConfig({ ...base, extra: 1 }))).toBe(SecAggErrorCode.InvalidParameters);
  });

  it('hashes every field: changing any one changes the hash every participant signs', () => {
    const hash = secAggConfigHash(base);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(secAggConfigHash(parseSecAggConfig(JSON.parse(JSON.stringify(base))))).toBe(hash);
    const changes: Partial<SecAggConfig>[] = [
      { roundId: 'round-2' },
      { participants: siloIds(7), neighbourCount: 6 },
      { neighbourCount: 4 },
      { threshold: 2 },
      { modulusBits: 31 },
      { clipNorm: 1.5 },
      { scale: 2 ** 19 },
      { vectorLength: 999 },
      { roundSeed: 'c'.repeat(64) },
    ];
    for (const change of changes) expect(secAggConfigHash(parseSecAggConfig({ ...base, ...change }))).not.toBe(hash);
  });

  it('recommends t = ⌊(k + c)/2⌋ + 1 and says how many neighbour dropouts that tolerates', () => {
    expect(recommendedThreshold(15)).toBe(8);
    expect(toleratedNeighbourDropouts(15, 8)).toBe(7);
    expect(recommendedThreshold(63, 10)).toBe(37);
    expect(refusalCode(() => recommendedThreshold(4, 5))).toBe(SecAggErrorCode.InvalidParameters);
  });
});
