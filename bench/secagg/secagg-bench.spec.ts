import { describe, expect, it } from 'vitest';
import { type MachineShape, runSmoke, type TargetShape } from '../lib/smoke-run.test-util';

interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number;
}
interface SecAggFigure {
  parameters: number;
  silos: number;
  dropout: number;
  dropped: number;
  survivors: number;
  client: { totalMs: Spread; shareMs: Spread; maskMs: Spread };
  hub: { totalMs: Spread; sumMs: Spread; unmaskMs: Spread };
  plainAggregationMs: Spread;
  hubOverPlain: number;
  bytes: { uploadPerSilo: number; float32Upload: number; uploadOverFloat32: number };
  worstError: number;
  errorBound: number;
}
interface SecAggReport {
  benchmark: string;
  mode: string;
  machine: MachineShape;
  figures: SecAggFigure[];
  targets: { bytesPerSiloAt32Bits: TargetShape; hubAtMostTwicePlain: TargetShape };
  pass: boolean;
}

// Keeps the script from rotting: --smoke (tiny sizes) and the shape of its JSON. Speed is NOT asserted.
describe('secure-aggregation benchmark (smoke)', () => {
  it('runs real rounds against the built library and writes the documented JSON', () => {
    const report = runSmoke('bench/secagg/secagg.bench.mjs') as SecAggReport;
    expect(report.benchmark).toBe('secagg');
    expect(report.mode).toBe('smoke');
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.figures.map((f) => [f.silos, f.dropped])).toEqual([
      [4, 0],
      [4, 1],
      [6, 0],
      [6, 2],
    ]);
    for (const f of report.figures) {
      expect(f.survivors).toBe(f.silos - f.dropped);
      expect(f.worstError).toBeLessThan(f.errorBound);
      expect(f.bytes.float32Upload).toBe(4 * f.parameters);
      expect(f.bytes.uploadPerSilo).toBeGreaterThan(f.bytes.float32Upload);
      for (const spread of [f.client.totalMs, f.hub.totalMs, f.plainAggregationMs]) {
        expect(spread.min).toBeLessThanOrEqual(spread.median);
        expect(spread.median).toBeLessThanOrEqual(spread.max);
      }
    }
    expect(report.targets.bytesPerSiloAt32Bits.target).toBe(1.1);
    expect(report.targets.hubAtMostTwicePlain.met).toBeNull(); // n = 16, m = 1M is not in the smoke grid
    expect(typeof report.pass).toBe('boolean');
  }, 120_000);
});
