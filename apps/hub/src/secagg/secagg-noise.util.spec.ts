import { distributedNoisePlan, privacyMechanismOf } from '@tessera/dp';
import type { StudyPlan } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { distributedNoiseTrace } from './secagg-noise.util';

const SILOS = ['a', 'b', 'c', 'd'].map((x) => `00000000-0000-4000-8000-00000000000${x}`);

function plan(noise: 'distributed' | 'central'): StudyPlan {
  return heartDiseasePlan(SILOS, {
    privacy: {
      mode: 'dp-fedavg',
      unit: 'silo',
      targetEpsilon: 2,
      delta: 1e-5,
      clipNorm: 1,
      noiseMultiplier: 'derive',
      noise,
    },
    secureAggregation: { threshold: 3, modulusBits: 32, clipNorm: 1 },
    participation: { minSilosPerRound: 4, roundDeadlineSeconds: 60, maxRoundRetries: 1, onSiloFailure: 'continue' },
    release: { evaluation: { mode: 'none' }, trainingExamples: 'none' },
  });
}

describe('distributedNoiseTrace', () => {
  const round = { scale: 2 ** 20, threshold: 3, vectorLength: 14, survivors: SILOS };

  it('records what each silo added, the shares in the sum and the t the accountant charged for', () => {
    const p = plan('distributed');
    const m = privacyMechanismOf(p)!;
    const trace = distributedNoiseTrace(p, m, round);
    const expected = distributedNoisePlan({
      clipNorm: 1,
      scale: 2 ** 20,
      dimension: 14,
      shares: 3,
      noiseMultiplier: m.noiseMultiplier,
    });
    expect(trace).toEqual({ addedBy: 'silos', ...expected, sharesInSum: 4, sharesAccounted: 3 });
    expect(JSON.parse(JSON.stringify(trace))).toEqual(trace);
  });

  it('is null without distributed noise or without a mechanism', () => {
    const central = plan('central');
    expect(distributedNoiseTrace(central, privacyMechanismOf(central), round)).toBeNull();
    expect(distributedNoiseTrace(plan('distributed'), null, round)).toBeNull();
  });
});
