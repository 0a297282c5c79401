import { describe, expect, it } from 'vitest';
import { type MachineShape, runSmoke, type TargetShape } from '../lib/smoke-run.test-util';

interface IngestReport {
  benchmark: string;
  mode: string;
  machine: MachineShape;
  database: string;
  receiverCheck: { previousReadFloatLE: { gbps: number }; float32StreamCheck: { gbps: number } };
  figures: {
    agents: number;
    parameters: number;
    hub: { mbPerS: number };
    discardBaseline: { mbPerS: number };
    ratio: number;
    hubMemory: { peakRssBytes: number; boundBytes: number };
  }[];
  targets: { throughputAtLeastHalfOfBaseline: TargetShape; peakMemoryUnderBound: TargetShape };
  pass: boolean;
}

// Keeps the script from rotting: --smoke starts a real hub process (embedded database), enrolls two silos over the
// real protocol and uploads a small model's updates, then checks the shape of the JSON. Speed is NOT asserted.
describe('hub ingest benchmark (smoke)', () => {
  it('uploads framed updates into a real hub and a discard server and writes the documented JSON', () => {
    const report = runSmoke('bench/ingest/ingest.bench.mjs', [], 180_000) as IngestReport;
    expect(report.benchmark).toBe('ingest');
    expect(report.mode).toBe('smoke');
    expect(report.database).toBe('embedded pglite');
    expect(report.receiverCheck.float32StreamCheck.gbps).toBeGreaterThan(0);
    expect(report.figures).toHaveLength(1);
    const [f] = report.figures;
    expect(f!.agents).toBe(2);
    expect(f!.parameters).toBe(13 * 64 + 64 + 64 * 64 + 64 + 64 + 1);
    expect(f!.hub.mbPerS).toBeGreaterThan(0);
    expect(f!.discardBaseline.mbPerS).toBeGreaterThan(0);
    expect(f!.hubMemory.peakRssBytes).toBeGreaterThan(0);
    expect(report.targets.throughputAtLeastHalfOfBaseline.target).toBe(0.5);
    expect(report.targets.peakMemoryUnderBound.target).toBe(1);
    expect(typeof report.pass).toBe('boolean');
  }, 200_000);
});
