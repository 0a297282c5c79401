import { describe, expect, it } from 'vitest';
import { type MachineShape, runSmoke } from '../lib/smoke-run.test-util';

interface RobustFigure {
  aggregator: string;
  variant: string;
  updates: number;
  parameters: number;
  ms: { median: number; min: number; max: number; runs: number };
  peakBytes: number;
  predictedBytes: number;
  predictedBeyondInputsBytes: number;
  passes: number;
  timeOverFedAvg: number | null;
  cpuOverFedAvg: number | null;
  trace?: string[];
}
interface RobustReport {
  benchmark: string;
  mode: string;
  machine: MachineShape;
  figures: RobustFigure[];
  screeningCalibration: {
    parameters: number;
    trials: number;
    falseFlagRounds: number;
    missedScaledRounds: number;
    missedSignFlipRounds: number;
  }[];
}

// Keeps the script from rotting: --smoke (m = 20,000, n = 8, one run per case) and the shape of its JSON. Speed and
// memory are NOT asserted, only that every case ran and reported what the documentation reads from it.
describe('robust aggregation benchmark (smoke)', () => {
  it('runs every aggregator in memory and blockwise against the built library and writes the documented JSON', () => {
    const report = runSmoke('bench/aggregation/robust.bench.mjs', [], 180_000) as RobustReport;
    expect(report.benchmark).toBe('robust-aggregation');
    expect(report.mode).toBe('smoke');
    expect(report.machine.node).toBe(process.version);
    const names = [...new Set(report.figures.map((f) => f.aggregator))];
    expect(names).toEqual([
      'fedavg',
      'median',
      'trimmed-mean',
      'krum',
      'multi-krum',
      'geometric-median',
      'median+norm-bound',
      'screening',
    ]);
    for (const f of report.figures) {
      expect(['in-memory', 'blockwise']).toContain(f.variant);
      expect([f.updates, f.parameters]).toEqual([8, 20_000]);
      expect(f.ms.min).toBeLessThanOrEqual(f.ms.max);
      expect(f.peakBytes).toBeGreaterThanOrEqual(0);
      expect(f.predictedBytes).toBeGreaterThan(0);
      expect(f.timeOverFedAvg).toBeGreaterThan(0);
      expect(f.cpuOverFedAvg).toBeGreaterThan(0);
    }
    const krum = report.figures.find((f) => f.aggregator === 'krum' && f.variant === 'blockwise');
    expect(krum?.trace).toEqual(['krum']);
    expect(krum?.passes).toBe(2);
    const bounded = report.figures.find((f) => f.aggregator === 'median+norm-bound');
    expect(bounded?.trace).toEqual(['norm-bound', 'coordinate-median']);
    // At the defaults (seeded rounds): no honest silo flagged and every ×10 update caught, while a sign flip among
    // updates this noisy stays within the cosine floor every time — the documented price of flagging no honest
    // hospital (docs/aggregation.md); a plan lowers the floor to catch it.
    expect(report.screeningCalibration).toEqual([
      { parameters: 200, trials: 20, falseFlagRounds: 0, missedScaledRounds: 0, missedSignFlipRounds: 20 },
    ]);
  }, 200_000);
});
