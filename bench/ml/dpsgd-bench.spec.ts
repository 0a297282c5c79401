import { describe, expect, it } from 'vitest';
import { type MachineShape, runSmoke, type TargetShape } from '../lib/smoke-run.test-util';

interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number;
}
interface DpsgdNetworksReport {
  benchmark: string;
  mode: string;
  machine: MachineShape & { tfjsBackend: string };
  figures: {
    key: string;
    parameters: number;
    examples: number;
    steps: { plain: number; dp: number };
    nonPrivateMs: Spread;
    dpSgdMs: Spread;
    ratio: number;
    ratioPerStep: number;
    clippingOnly: { ms: Spread; ratio: number };
  }[];
  targets: Record<string, TargetShape>;
  pass: boolean;
}

// Keeps the script from rotting: --smoke (200 digits, one run) and the shape of its JSON. Speed is NOT asserted.
describe('DP-SGD overhead of declarative networks (smoke)', () => {
  it('trains the benchmark CNN and MLP with and without DP-SGD on real digits and writes the documented JSON', () => {
    const report = runSmoke('bench/ml/dpsgd.bench.mjs') as DpsgdNetworksReport;
    expect(report.benchmark).toBe('dpsgd-networks');
    expect(report.mode).toBe('smoke');
    expect(report.machine.tfjsBackend).toBe('wasm');
    expect(report.figures.map((f) => [f.key, f.parameters])).toEqual([
      ['cnn', 105_866],
      ['mlp', 784 * 32 + 32 + 32 * 10 + 10],
    ]);
    for (const f of report.figures) {
      expect(f.examples).toBe(200);
      expect(f.steps.plain).toBe(4);
      expect(f.steps.dp).toBe(4);
      expect(f.nonPrivateMs.median).toBeGreaterThan(0);
      expect(f.dpSgdMs.median).toBeGreaterThan(0);
      expect(f.ratio).toBeGreaterThan(0);
      expect(f.clippingOnly.ms.median).toBeGreaterThan(0);
      expect(f.clippingOnly.ratio).toBeGreaterThan(0);
    }
    expect(Object.values(report.targets).map((t) => t.target)).toEqual([1.5, 1.25]);
    expect(typeof report.pass).toBe('boolean');
  }, 120_000);
});
