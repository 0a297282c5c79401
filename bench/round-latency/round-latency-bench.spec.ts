import { describe, expect, it } from 'vitest';
import { type MachineShape, runSmoke, type TargetShape } from '../lib/smoke-run.test-util';

interface RoundLatencyReport {
  benchmark: string;
  mode: string;
  machine: MachineShape;
  method: { silos: number; runs: number };
  figures: {
    database: string;
    silos: number;
    parameters: number;
    updateBytesTotal: number;
    turnaroundMs: { median: number };
    readOnceMs: { median: number };
    verifiedReadMs: { median: number };
    fusedSumAloneMs: { twoThreads: { median: number }; callingThread: { median: number } };
    hubCloseMs: Record<'claimed' | 'verified' | 'aggregated' | 'committed', { median: number } | null>;
    turnaroundOverReadOnce: number;
    hubPeakRssBytes: number;
  }[];
  targets: { turnaroundUnderTwiceReadOnce: TargetShape };
  pass: boolean;
}

// Keeps the script from rotting: --smoke starts a real hub process (embedded database), enrolls three silos over the
// real protocol, runs one round of a tiny model to the next round's task and reads the stored updates back, then
// checks the shape of the JSON. Speed is NOT asserted.
describe('round latency benchmark (smoke)', () => {
  it('runs a real round to the next task and writes the documented JSON', () => {
    const report = runSmoke('bench/round-latency/round-latency.bench.mjs', [], 180_000) as RoundLatencyReport;
    expect(report.benchmark).toBe('round-latency');
    expect(report.mode).toBe('smoke');
    expect(report.method).toMatchObject({ silos: 3, runs: 1 });
    expect(report.figures).toHaveLength(1);
    const [f] = report.figures;
    expect(f!.database).toBe('embedded pglite');
    expect(f!.parameters).toBe(13 * 16 + 16 + 16 * 16 + 16 + 16 + 1);
    // Three frames, each the payload plus its header: more than the payloads alone.
    expect(f!.updateBytesTotal).toBeGreaterThan(3 * 4 * f!.parameters);
    expect(f!.turnaroundMs.median).toBeGreaterThan(0);
    expect(f!.readOnceMs.median).toBeGreaterThan(0);
    expect(f!.verifiedReadMs.median).toBeGreaterThan(0);
    expect(f!.fusedSumAloneMs.twoThreads.median).toBeGreaterThan(0);
    expect(f!.fusedSumAloneMs.callingThread.median).toBeGreaterThan(0);
    expect(f!.hubPeakRssBytes).toBeGreaterThan(0);
    // The hub's own log line of the close was found and read.
    for (const phase of ['claimed', 'verified', 'aggregated', 'committed'] as const) {
      expect(f!.hubCloseMs[phase]?.median).toBeGreaterThanOrEqual(0);
    }
    expect(report.targets.turnaroundUnderTwiceReadOnce.target).toBe(2);
    expect(typeof report.pass).toBe('boolean');
  }, 200_000);
});
