import { describe, expect, it } from 'vitest';
import { type MachineShape, runSmoke, type TargetShape } from '../lib/smoke-run.test-util';

interface ResultRow {
  config: string;
  defence: string;
  attack: string;
  accuracy: number;
  pooledAccuracy: number;
  auc: number;
  loss: number;
  backdoorSuccess: number;
  dropPoints: number;
  minSilosPerRound: number;
  screening?: { honestFlags: number; honestRounds: number; attackerFlags: number; attackerRounds: number };
}
interface CalibrationRow {
  config: string;
  threshold: number;
  cleanRuns: number;
  none: { runsWithFalseFlag: number; falseFlagRate: number };
  [attack: string]: unknown;
}
interface RobustnessReport {
  benchmark: string;
  mode: string;
  machine: MachineShape;
  results: ResultRow[];
  refused: { config: string; defence: string; reason: string }[];
  calibration: CalibrationRow[];
  targets: Record<string, TargetShape>;
}

// Keeps the script from rotting: --smoke (heart-4, 3 rounds, two attacks, FedAvg and the median with screening, two
// attack-free calibration runs) on the real heart-disease data, and the shape of its JSON. No accuracy is asserted:
// three rounds do not train the model; the figures of record are in docs/benchmarks.md.
describe('robustness benchmark (smoke)', () => {
  it('runs every attack against each defence beside its attack-free run and writes the documented JSON', () => {
    const report = runSmoke('bench/robustness/robustness.bench.mjs', [], 180_000) as RobustnessReport;
    expect(report.benchmark).toBe('robustness');
    expect(report.mode).toBe('smoke');
    expect(report.machine.node).toBe(process.version);
    expect(report.results.map((r) => `${r.defence}/${r.attack}`)).toEqual([
      'fedavg/none',
      'fedavg/sign-flip',
      'fedavg/scale-x10',
      'median+screening/none',
      'median+screening/sign-flip',
      'median+screening/scale-x10',
    ]);
    for (const r of report.results) {
      expect(r.config).toBe('heart-4');
      for (const v of [r.accuracy, r.pooledAccuracy, r.auc, r.backdoorSuccess]) {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
      }
      expect(Number.isFinite(r.loss)).toBe(true);
      if (r.attack === 'none') expect(r.dropPoints).toBe(0);
    }
    // Screening is counted per silo-round: 3 honest silos and 1 attacker over 3 rounds.
    const screened = report.results.find((r) => r.defence === 'median+screening' && r.attack === 'scale-x10');
    expect(screened?.screening).toMatchObject({ honestRounds: 9, attackerRounds: 3 });
    expect(screened?.minSilosPerRound).toBe(3);
    // Krum cannot tolerate 1 attacker of 4: the plan check's refusal is reported, not a figure.
    expect(report.refused.map((r) => r.defence)).toEqual(['krum', 'multi-krum']);
    expect(report.refused[0]!.reason).toMatch(/needs n > 2f \+ 2 = 4 updates/);
    expect(report.calibration.map((c) => c.threshold)).toEqual([3.5, 5, 7, 10]);
    for (const c of report.calibration) {
      expect(c.cleanRuns).toBe(2);
      expect(c.none.runsWithFalseFlag).toBeGreaterThanOrEqual(0);
      expect(c.none.runsWithFalseFlag).toBeLessThanOrEqual(2);
      expect(c['sign-flip']).toHaveProperty('detectionRate');
    }
    expect(Object.keys(report.targets)).toEqual([
      'bestRobustDropUnderSignFlip',
      'bestRobustDropUnderScaling',
      'cleanRunsWithAFalseFlag',
    ]);
  }, 200_000);
});
