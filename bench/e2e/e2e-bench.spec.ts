import { describe, expect, it } from 'vitest';
import { type MachineShape, runSmoke, type TargetShape } from '../lib/smoke-run.test-util';

interface E2eReport {
  benchmark: string;
  mode: string;
  machine: MachineShape;
  demo: unknown;
  scaled: {
    silos: number;
    parameters: number;
    rounds: { round: number; wallMs: number; hubCloseMs: number; bytesOnTheWire: number }[];
    perRound: { wallMs: { median: number }; bytesOnTheWire: number };
    hubMemory: { peakRssBytes: number };
  };
  targets: { demoUnderSixtySeconds: TargetShape };
  pass: boolean;
}

// Keeps the script from rotting: --smoke runs the scaled variant small (3 simulated silos over the real protocol into
// a real hub process, two rounds) and skips the demo; checks the JSON's shape. Speed is NOT asserted.
describe('end-to-end benchmark (smoke)', () => {
  it('runs federated rounds through a real hub and writes the documented JSON', () => {
    const report = runSmoke('bench/e2e/e2e.bench.mjs', [], 180_000) as E2eReport;
    expect(report.benchmark).toBe('e2e');
    expect(report.mode).toBe('smoke');
    expect(report.demo).toBe('not run in smoke mode');
    expect(report.scaled.silos).toBe(3);
    expect(report.scaled.parameters).toBe(784 * 16 + 16 + 16 + 1);
    expect(report.scaled.rounds.map((r) => r.round)).toEqual([1, 2]);
    for (const r of report.scaled.rounds) {
      expect(r.wallMs).toBeGreaterThanOrEqual(0);
      expect(r.bytesOnTheWire).toBeGreaterThan(3 * 4 * report.scaled.parameters);
    }
    expect(report.scaled.hubMemory.peakRssBytes).toBeGreaterThan(0);
    expect(report.targets.demoUnderSixtySeconds).toMatchObject({ target: 60, value: null, met: null });
    expect(typeof report.pass).toBe('boolean');
  }, 200_000);
});
