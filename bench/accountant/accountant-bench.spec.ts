import { describe, expect, it } from 'vitest';
import { runSmoke } from '../lib/smoke-run.test-util';

// Keeps the script from rotting: --smoke and the shape of its JSON. Speed is NOT asserted.
describe('accountant benchmark (smoke)', () => {
  it('runs against the built library and writes the documented JSON', () => {
    const report = runSmoke('bench/accountant/accountant.bench.mjs') as {
      benchmark: string;
      mode: string;
      orders: number;
      figures: { epsilon: { median: number; runs: number } };
      targets: { epsilonUnder10ms: { target: number; comparison: string } };
    };
    expect(report.benchmark).toBe('accountant');
    expect(report.mode).toBe('smoke');
    expect(report.orders).toBeGreaterThan(100);
    expect(report.figures.epsilon.runs).toBe(3);
    expect(report.targets.epsilonUnder10ms).toMatchObject({ target: 10, comparison: '<=' });
  });
});
