import { describe, expect, it } from 'vitest';
import { gaugeReading } from './privacy-gauge.js';

describe('gaugeReading', () => {
  it('is not an alarm at 90 % or 100 % of the plan: spending, then complete', () => {
    expect(gaugeReading({ spent: 0.9, target: 1, planned: 1 }).state).toBe('spending');
    const done = gaugeReading({ spent: 0.98, target: 1, planned: 0.98 });
    expect(done).toMatchObject({ state: 'complete', label: 'planned budget spent' });
    expect(done.fraction).toBeCloseTo(0.98, 12);
  });

  it('is red only beyond the target, beyond the planned ε, or beyond the planned rounds', () => {
    expect(gaugeReading({ spent: 1.2, target: 1, planned: 0.98 })).toMatchObject({
      state: 'over',
      fraction: 1,
      label: "over the study's target",
    });
    expect(gaugeReading({ spent: 0.99, target: 1, planned: 0.9 })).toMatchObject({
      state: 'over',
      label: 'beyond the approved plan',
    });
    expect(gaugeReading({ spent: 0.5, target: 1, planned: 0.9, trainingRounds: 6, plannedRounds: 5 })).toMatchObject({
      state: 'over',
      label: 'more rounds than the plan',
    });
  });

  it('compares against the target when the planned ε is unknown, within floating-point slack', () => {
    expect(gaugeReading({ spent: 1 + 1e-9, target: 1 }).state).toBe('complete');
    expect(gaugeReading({ spent: 0.5, target: 1, planned: null }).state).toBe('spending');
  });

  it('reads nothing spent as spending, and a plan without DP as none', () => {
    expect(gaugeReading({ spent: null, target: 2, planned: 1.9 })).toMatchObject({ state: 'spending', fraction: 0 });
    expect(gaugeReading({ spent: null, target: null })).toMatchObject({ state: 'none', fraction: 0 });
  });
});
