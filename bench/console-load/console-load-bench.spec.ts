import { describe, expect, it } from 'vitest';
import { type MachineShape, runSmoke, type TargetShape } from '../lib/smoke-run.test-util';

interface Quantiles {
  reads: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
}
interface ConsoleLoadReport {
  benchmark: string;
  mode: string;
  machine: MachineShape;
  method: { readers: number; paths: string[] };
  figures: {
    database: string;
    silos: number;
    studyStatusAfterEvaluation: string;
    idle: Quantiles;
    loaded: Quantiles;
    loadedByPath: Record<string, Omit<Quantiles, 'errors'>>;
  }[];
  targets: { embeddedReadP95UnderLoad: TargetShape };
  pass: boolean;
}

// Keeps the script from rotting: --smoke starts a real hub process (embedded database), enrolls three silos, runs a
// small study through its rounds while ten console readers poll, and checks the JSON's shape. Speed is NOT asserted.
describe('console load benchmark (smoke)', () => {
  it('reads the console views while a real study runs and writes the documented JSON', () => {
    const report = runSmoke('bench/console-load/console-load.bench.mjs', [], 180_000) as ConsoleLoadReport;
    expect(report.benchmark).toBe('console-load');
    expect(report.mode).toBe('smoke');
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.method.paths).toEqual(['studies', 'study', 'rounds', 'silos', 'audit?limit=50']);
    expect(report.figures).toHaveLength(1);
    const [f] = report.figures;
    expect(f!.database).toBe('embedded');
    expect(f!.silos).toBe(3);
    expect(f!.studyStatusAfterEvaluation).toBe('completed');
    expect(f!.idle.reads).toBeGreaterThan(0);
    expect(f!.loaded.reads).toBeGreaterThan(0);
    // Every read succeeded: a reader that got errors would be measuring error pages.
    expect(f!.idle.errors).toBe(0);
    expect(f!.loaded.errors).toBe(0);
    expect(f!.loaded.p95Ms).toBeGreaterThanOrEqual(f!.loaded.p50Ms);
    expect(Object.keys(f!.loadedByPath).sort()).toEqual(['audit', 'rounds', 'silos', 'studies', 'study']);
    expect(report.targets.embeddedReadP95UnderLoad.target).toBe(500);
    expect(typeof report.pass).toBe('boolean');
  }, 200_000);
});
