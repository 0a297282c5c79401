import { describe, expect, it } from 'vitest';
import { type MachineShape, runSmoke, type TargetShape } from '../lib/smoke-run.test-util';

interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number;
}
interface DpSgdReport {
  benchmark: string;
  mode: string;
  machine: MachineShape & { tfjsBackend: string };
  figures: {
    model: string;
    parameters: number;
    examples: number;
    nonPrivateMs: Spread;
    dpSgdMs: Spread;
    ratio: number;
    noiseDrawsPerEpoch: number;
    samplerOnTrainingThread: {
      dpSgdMs: Spread;
      samplerMs: Spread;
      ratio: number;
      microsecondsPerDraw: number;
      ratioWithoutSampler: number;
    };
  }[];
  targets: { dpEpochAtMostOneAndAQuarterTimesPlain: TargetShape };
  pass: boolean;
}

// Keeps the script from rotting: --smoke (500 digits, one run) and the shape of its JSON. Speed is NOT asserted.
describe('DP-SGD overhead benchmark (smoke)', () => {
  it('trains both models without DP-SGD and with it (noise thread and same thread) on real digits and writes the documented JSON', () => {
    const report = runSmoke('bench/dp-sgd/dp-sgd.bench.mjs') as DpSgdReport;
    expect(report.benchmark).toBe('dp-sgd');
    expect(report.mode).toBe('smoke');
    expect(report.machine.tfjsBackend).toBe('wasm');
    expect(report.figures.map((f) => f.parameters)).toEqual([785, 784 * 32 + 32 + 32 * 10 + 10]);
    for (const f of report.figures) {
      expect(f.examples).toBe(500);
      expect(f.nonPrivateMs.median).toBeGreaterThan(0);
      expect(f.dpSgdMs.median).toBeGreaterThan(0);
      expect(f.noiseDrawsPerEpoch).toBeGreaterThan(0);
      expect(f.ratio).toBeGreaterThan(0);
      expect(f.samplerOnTrainingThread.samplerMs.median).toBeGreaterThan(0);
      expect(f.samplerOnTrainingThread.microsecondsPerDraw).toBeGreaterThan(0);
    }
    expect(report.targets.dpEpochAtMostOneAndAQuarterTimesPlain.target).toBe(1.25);
    expect(typeof report.pass).toBe('boolean');
  }, 60_000);
});
