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
  kernels: Record<
    string,
    { fused: { kernel: string; threads: number }; twoCores: { kernel: string; threads: number } }
  >;
  figures: {
    parameters: number;
    updates: number;
    fedAvgFused: Rate;
    fedAvgFusedTwoCores: Rate;
    fedAvgFusedStreaming: Rate;
    fedAvgPerUpdate: Rate;
    fedAvgScalar: Rate;
    memoryCopy: Rate;
    bitIdenticalToScalar: boolean;
  }[];
  ratios: { fusedOverCopy: number; twoCoresOverCopy: number; fusedOverScalar: number }[];
  targets: {
    atLeast70PercentOfCopyBandwidth: TargetShape;
    threeTimesNumpy: TargetShape;
    bitIdentical: { met: boolean };
  };
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
    for (const m of ['10000', '100000']) {
      expect(report.kernels[m]!.fused).toMatchObject({ kernel: 'simd', threads: 1 });
      expect(report.kernels[m]!.twoCores).toMatchObject({ kernel: 'simd', threads: 2 });
    }
    for (const f of report.figures) {
      // Not a speed assertion: every path must compute the scalar loop's bits.
      expect(f.bitIdenticalToScalar).toBe(true);
      for (const rate of [
        f.fedAvgFused,
        f.fedAvgFusedTwoCores,
        f.fedAvgFusedStreaming,
        f.fedAvgPerUpdate,
        f.fedAvgScalar,
        f.memoryCopy,
      ]) {
        expect(rate.gbps).toBeGreaterThan(0);
        expect(rate.ms.min).toBeLessThanOrEqual(rate.ms.median);
        expect(rate.ms.median).toBeLessThanOrEqual(rate.ms.max);
      }
    }
    expect(report.ratios).toHaveLength(4);
    expect(report.targets.atLeast70PercentOfCopyBandwidth.target).toBe(0.7);
    expect(report.targets.threeTimesNumpy.met).toBeNull(); // --no-numpy
    expect(report.targets.bitIdentical.met).toBe(true);
    expect(typeof report.pass).toBe('boolean');
  }, 60_000);
});
