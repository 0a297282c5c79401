import { describe, expect, it } from 'vitest';
import { type MachineShape, runSmoke, type TargetShape } from '../lib/smoke-run.test-util';

interface Rate {
  ms: { median: number; min: number; max: number; runs: number };
  gbps: number;
}
interface AggregationReport {
  benchmark: string;
  mode: string;
  machine: MachineShape;
  figures: { parameters: number; updates: number; fedAvgHubPath: Rate; fedAvgValidating: Rate; memoryCopy: Rate }[];
  ratios: { hubPathOverCopy: number; hubPathSpeedupOverValidating: number }[];
  targets: { atLeastHalfOfCopyBandwidth: TargetShape; fasterThanNumpy: TargetShape };
  pass: boolean;
}

// Keeps the script from rotting: --smoke (tiny sizes, no numpy) and the shape of its JSON. Speed is NOT asserted.
describe('aggregation benchmark (smoke)', () => {
  it('runs against the built library and writes the documented JSON', () => {
    const report = runSmoke('bench/aggregation/aggregation.bench.mjs', ['--no-numpy']) as AggregationReport;
    expect(report.benchmark).toBe('aggregation');
    expect(report.mode).toBe('smoke');
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.machine.node).toBe(process.version);
    expect(report.figures.map((f) => [f.parameters, f.updates])).toEqual([
      [10_000, 4],
      [10_000, 16],
      [100_000, 4],
      [100_000, 16],
    ]);
    for (const f of report.figures) {
      for (const rate of [f.fedAvgHubPath, f.fedAvgValidating, f.memoryCopy]) {
        expect(rate.gbps).toBeGreaterThan(0);
        expect(rate.ms.min).toBeLessThanOrEqual(rate.ms.median);
        expect(rate.ms.median).toBeLessThanOrEqual(rate.ms.max);
      }
    }
    expect(report.ratios).toHaveLength(4);
    expect(report.targets.atLeastHalfOfCopyBandwidth.target).toBe(0.5);
    expect(report.targets.fasterThanNumpy.met).toBeNull(); // --no-numpy
    expect(typeof report.pass).toBe('boolean');
  }, 60_000);
});
