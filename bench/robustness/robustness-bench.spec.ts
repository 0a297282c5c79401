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

  it('runs the opt-in defences only when asked: β = f/n, the norm bound before it, Multi-Krum of n − f', () => {
    const report = runSmoke(
      'bench/robustness/robustness.bench.mjs',
      [
        '--configs=heart-4,heart-8,digits-32',
        '--rounds=1',
        '--attacks=scale-x10',
        '--defences=trimmed-mean,trimmed-mean-f,trimmed-mean-f+norm-bound+screening,multi-krum-n-f',
        '--clean-runs=0',
      ],
      180_000,
    ) as RobustnessReport;
    // heart-4 (n = 4, f = 1): Krum needs n > 2f + 2; the opt-in Multi-Krum is listed because it was asked for (the
    // default run above does not list it).
    expect(report.refused.map((r) => `${r.config}/${r.defence}`)).toEqual([
      'heart-4/krum',
      'heart-4/multi-krum',
      'heart-4/multi-krum-n-f',
    ]);
    const cell = (config: string, defence: string, attack: string) =>
      report.results.find((r) => r.config === config && r.defence === defence && r.attack === attack)!;
    expect(report.results.filter((r) => r.config === 'heart-8').map((r) => `${r.defence}/${r.attack}`)).toEqual([
      'trimmed-mean/none',
      'trimmed-mean/scale-x10',
      'trimmed-mean-f/none',
      'trimmed-mean-f/scale-x10',
      'trimmed-mean-f+norm-bound+screening/none',
      'trimmed-mean-f+norm-bound+screening/scale-x10',
      'multi-krum-n-f/none',
      'multi-krum-n-f/scale-x10',
    ]);
    // f/n = 2/8 = 0.25 on heart-8 and 1/4 on heart-4: the same β as the fixed trimmed mean, hence the same runs.
    for (const config of ['heart-4', 'heart-8']) {
      for (const attack of ['none', 'scale-x10']) {
        const fixed = cell(config, 'trimmed-mean', attack);
        const matched = cell(config, 'trimmed-mean-f', attack);
        expect(matched.accuracy).toBe(fixed.accuracy);
        expect(matched.loss).toBe(fixed.loss);
        expect(matched.minSilosPerRound).toBe(4);
      }
    }
    // 6 honest silos and 2 attackers over --rounds=1; Multi-Krum of n − f = 6 with f = 2 needs 8 updates per round.
    expect(cell('heart-8', 'trimmed-mean-f+norm-bound+screening', 'scale-x10').screening).toMatchObject({
      honestRounds: 6,
      attackerRounds: 2,
    });
    expect(cell('heart-8', 'multi-krum-n-f', 'none').minSilosPerRound).toBe(8);
    // digits-32 (f = 6): β = 6/32 needs ⌈32/6⌉ = 6 updates per round (β = 0.25: 4); Multi-Krum of 26 needs all 32.
    expect(cell('digits-32', 'trimmed-mean', 'none').minSilosPerRound).toBe(4);
    expect(cell('digits-32', 'trimmed-mean-f', 'none').minSilosPerRound).toBe(6);
    expect(cell('digits-32', 'trimmed-mean-f+norm-bound+screening', 'scale-x10').minSilosPerRound).toBe(6);
    expect(cell('digits-32', 'multi-krum-n-f', 'scale-x10').minSilosPerRound).toBe(32);
  }, 200_000);
});
