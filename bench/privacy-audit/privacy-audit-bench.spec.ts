import { describe, expect, it } from 'vitest';
import { runSmoke, type MachineShape, type TargetShape } from '../lib/smoke-run.test-util';

// Keeps the script from rotting: --smoke (4 runs per world, three cases) and the shape of its JSON. With so few
// runs the bound is ~0 and the controls cannot be certified: neither the bounds nor the speed are asserted here (the
// CI audit itself is apps/agent/src/privacy-audit/privacy-audit.int-spec.ts).
describe('privacy-audit benchmark (smoke)', () => {
  it('runs the audit against the built agent and writes the documented JSON', () => {
    const report = runSmoke('bench/privacy-audit/privacy-audit.bench.mjs') as {
      benchmark: string;
      mode: string;
      machine: MachineShape & { tfjsBackend: string };
      cases: {
        name: string;
        runsPerWorld: number;
        epsilonLowerBound: number;
        claimedEpsilon: number;
        counts: { positives: number; negatives: number };
        perRunMs: number;
      }[];
      targets: Record<string, TargetShape>;
    };
    expect(report.benchmark).toBe('privacy-audit');
    expect(report.mode).toBe('smoke');
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.cases.map((c) => c.name)).toEqual([
      'demo-duplicate',
      'demo-held-out',
      'control-full-batch-duplicate',
    ]);
    for (const c of report.cases) {
      expect(c.runsPerWorld).toBe(4);
      // Half of each world's runs certify the threshold chosen on the other half.
      expect(c.counts).toMatchObject({ positives: 2, negatives: 2 });
      expect(c.claimedEpsilon).toBeGreaterThan(0.99);
      expect(c.claimedEpsilon).toBeLessThanOrEqual(1);
      expect(c.epsilonLowerBound).toBeGreaterThanOrEqual(0);
      expect(report.targets[c.name]).toBeDefined();
    }
  }, 60_000);
});
