import {
  coordinateBound,
  secAggConfigHash,
  SecAggErrorCode,
  SecAggException,
  type ShareKeysMessage,
} from '@tessera/secagg';
import { describe, expect, it } from 'vitest';
import { distributedNoisePlan, distributedNoiseTailFactor } from '@tessera/dp';
import { closeShare, sessionConfig, stageDeadlines, STAGE_FRACTIONS } from './secagg-stage.util';

const roster = ['a-silo', 'b-silo', 'c-silo', 'd-silo', 'e-silo'];
const seed = 'ab'.repeat(32);

describe('secure-aggregation stage decisions', () => {
  it('derives stage deadlines from the round span, in order, the last at the round deadline', () => {
    const opened = new Date('2026-12-06T10:00:00.000Z');
    const deadline = new Date('2026-12-06T10:10:00.000Z');
    const d = stageDeadlines(opened, deadline);
    expect(d.advertise.toISOString()).toBe('2026-12-06T10:02:30.000Z');
    expect(d.share.toISOString()).toBe('2026-12-06T10:04:00.000Z');
    expect(d.upload.toISOString()).toBe('2026-12-06T10:08:30.000Z');
    expect(d.unmask).toEqual(deadline);
    expect(STAGE_FRACTIONS.advertise).toBeLessThan(STAGE_FRACTIONS.share);
  });

  it('builds the complete graph by default, with the finest scale that cannot wrap for the roster', () => {
    const config = sessionConfig({
      roundId: 'r1',
      roster: [...roster].reverse(),
      plan: { threshold: 3, modulusBits: 16, clipNorm: 2 },
      vectorLength: 10,
      roundSeed: seed,
    });
    expect(config.participants).toEqual(roster);
    expect(config.neighbourCount).toBe(4);
    expect(roster.length * coordinateBound(config.clipNorm, config.scale)).toBeLessThanOrEqual(2 ** 15 - 1);
    expect(roster.length * coordinateBound(config.clipNorm, config.scale * 1.01)).toBeGreaterThan(2 ** 15 - 1);
  });

  it('with distributed noise, leaves room for the n noise shares: the scale fits their 2^-40 tail, or is refused', () => {
    const plain = sessionConfig({
      roundId: 'r1',
      roster,
      plan: { threshold: 3, modulusBits: 32, clipNorm: 2 },
      vectorLength: 1000,
      roundSeed: seed,
    });
    const noisy = sessionConfig({
      roundId: 'r1',
      roster,
      plan: { threshold: 3, modulusBits: 32, clipNorm: 2 },
      vectorLength: 1000,
      roundSeed: seed,
      distributedNoiseMultiplier: 3,
    });
    const sigma = distributedNoisePlan({
      clipNorm: 2,
      scale: noisy.scale,
      dimension: 1000,
      shares: 3,
      noiseMultiplier: 3,
    }).siloSigma;
    const tail = distributedNoiseTailFactor(1000) * Math.sqrt(roster.length) * sigma;
    expect(roster.length * coordinateBound(2, noisy.scale) + tail).toBeLessThanOrEqual(2 ** 31 - 1);
    // n·C·s + M·√n·z·(C·s + √d)/√t ≤ 2^31 − 1: about (5 + 33)/5 times coarser than without noise here.
    expect(noisy.scale).toBeLessThan(plain.scale / 5);
    expect(() =>
      sessionConfig({
        roundId: 'r1',
        roster,
        plan: { threshold: 3, modulusBits: 8, clipNorm: 2 },
        vectorLength: 1000,
        roundSeed: seed,
        distributedNoiseMultiplier: 3,
      }),
    ).toThrow(/cannot fit 2\^8 at any scale: raise modulusBits/);
  });

  it('keeps the plan neighbourhood, and refuses a roster too small for the threshold', () => {
    expect(
      sessionConfig({
        roundId: 'r1',
        roster,
        plan: { threshold: 2, neighbourCount: 2, modulusBits: 32, clipNorm: 1 },
        vectorLength: 3,
        roundSeed: seed,
      }).neighbourCount,
    ).toBe(2);
    const tooFew = () =>
      sessionConfig({
        roundId: 'r1',
        roster: roster.slice(0, 3),
        plan: { threshold: 3, modulusBits: 32, clipNorm: 1 },
        vectorLength: 3,
        roundSeed: seed,
      });
    expect(tooFew).toThrow(SecAggException);
    expect(tooFew).toThrow(/3 silos are in the round; threshold t = 3 needs at least 4/);
  });

  it('turns too few sharers into a failure naming the library code, never a partial routing', () => {
    const config = sessionConfig({
      roundId: 'r1',
      roster,
      plan: { threshold: 3, modulusBits: 32, clipNorm: 1 },
      vectorLength: 3,
      roundSeed: seed,
    });
    const outcome = closeShare(config, []);
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.failure).toMatch(new RegExp(`^${SecAggErrorCode.TooFewSurvivors}: `));
  });

  it('fails at once when t sharers are left but none has t mask partners; routes t + 1 (complete graph)', () => {
    const four = roster.slice(0, 4);
    const config = sessionConfig({
      roundId: 'r1',
      roster: four,
      plan: { threshold: 2, modulusBits: 32, clipNorm: 1 },
      vectorLength: 3,
      roundSeed: seed,
    });
    const configHash = secAggConfigHash(config);
    // What routing reads of an accepted message (checkShareMessage vetted the rest on arrival): a share to every other.
    const sharing = (from: string): ShareKeysMessage => ({
      participantId: from,
      configHash,
      selfMaskCommitment: '00'.repeat(32),
      shares: four
        .filter((to) => to !== from)
        .map((to) => ({ from, to, nonce: 'AAAAAAAAAAAAAAAA', ciphertext: 'A'.repeat(108) + '==' })),
    });
    // Two of four shared (t = 2): each has one partner, so neither can mask and nothing could ever be unmasked.
    const two = closeShare(config, [sharing('a-silo'), sharing('b-silo')]);
    expect(two.ok).toBe(false);
    expect(!two.ok && two.failure).toMatch(
      /^TOO_FEW_SURVIVORS: Only 0 of the 2 participants that completed sharing have t = 2 mask partners/,
    );
    const three = closeShare(config, [sharing('a-silo'), sharing('b-silo'), sharing('c-silo')]);
    expect(three.ok && three.value.sharers.map((s) => s.maskPartners.length)).toEqual([2, 2, 2]);
  });
});
