import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { runDpCli } from './dp-cli';

const REPO_ROOT = resolve(__dirname, '../../..');
const BIN = resolve(__dirname, '../dist/cli.js');

function json(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('runDpCli', () => {
  it('epsilon --accountant pld: the tighter, informational PLD figure, named as such', () => {
    const args = ['epsilon', '--noise', '9.153', '--rate', '0.1', '--steps', '500', '--delta', '1e-5'];
    const rdp = json(runDpCli(args).stdout);
    const result = runDpCli([...args, '--accountant', 'pld']);
    expect(result.exitCode).toBe(0);
    const pld = json(result.stdout);
    expect(pld).toMatchObject({ accountant: 'pld-sampled-gaussian', bindingDirection: 'remove', discretization: 1e-4 });
    expect(pld.epsilon as number).toBeLessThan(rdp.epsilon as number);
    expect(pld.epsilon as number).toBeGreaterThan(0.85);

    const bad = runDpCli([...args, '--accountant', 'prv']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(/invalid --accountant .*'rdp', 'exact-integral' or 'pld'/);
    const tooFine = runDpCli([...args, '--accountant', 'pld', '--discretization', '0']);
    expect(tooFine.exitCode).toBe(2);
    expect(tooFine.stderr).toMatch(/invalid --discretization/);
  });

  // The Opacus reference run (opacus/tests/accountants_test.py, test_rdp_accountant) on Opacus' grid: dp_accounting
  // charges 7.329334702381698 (reference/dp_accounting_reference.py); Opacus' own 7.32911117143 is the exact-integral
  // figure, printed only with --accountant exact-integral and marked informational.
  it('epsilon: prints the charged JSON cost of the Opacus reference run; exact-integral on request', () => {
    const args = ['epsilon', '--noise', '1.5', '--rate', '0.04', '--steps', '2250', '--delta', '1e-5'];
    const result = runDpCli([...args, '--orders', 'opacus']);
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toBe('');
    const out = json(result.stdout);
    expect(Math.abs((out.epsilon as number) / 7.329334702381698 - 1)).toBeLessThan(1e-9);
    expect(out).toMatchObject({
      delta: 1e-5,
      bestOrder: 3.9,
      accountant: 'rdp-sampled-gaussian',
      charged: true,
      noiseMultiplier: 1.5,
    });
    expect(out.orders).toMatch(/^opacus default/);
    const exact = json(runDpCli([...args, '--orders', 'opacus', '--accountant', 'exact-integral']).stdout);
    expect(exact.epsilon as number).toBeCloseTo(7.32911117143, 9);
    expect(exact).toMatchObject({
      informational: true,
      accountant: 'rdp-sampled-gaussian-exact-integral-informational',
    });
    expect(exact).not.toHaveProperty('charged');
  });

  it('epsilon: uses the dp-accounting grid by default and accepts a custom list', () => {
    const base = ['epsilon', '--noise', '1.1', '--rate', '0.01', '--steps', '1000', '--delta', '1e-5'];
    const byDefault = json(runDpCli(base).stdout);
    // dp_accounting (dp-accounting-vectors.test-util.ts): 1.7117701662429012 at order 9.6.
    expect(Math.abs((byDefault.epsilon as number) / 1.7117701662429012 - 1)).toBeLessThan(1e-9);
    expect(byDefault.orders).toMatch(/^dp-accounting default/);
    const custom = json(runDpCli([...base, '--orders', '2,4,8,16']).stdout);
    expect(custom.orders).toBe('custom: 2,4,8,16');
    expect(custom.epsilon as number).toBeGreaterThan(byDefault.epsilon as number);
  });

  it('noise: prints the calibrated multiplier, which meets the target', () => {
    const result = runDpCli(['noise', '--epsilon', '8', '--rate', '0.04', '--steps', '2000', '--delta', '1e-5']);
    expect(result.exitCode).toBe(0);
    const out = json(result.stdout);
    expect(out).toMatchObject({ targetEpsilon: 8, delta: 1e-5, accountant: 'rdp-sampled-gaussian', charged: true });
    // dp_accounting calibrate_dp_mechanism: 1.3562403606904923 (reference/dp_accounting_reference.py).
    expect(Math.abs((out.noiseMultiplier as number) / 1.3562403606904923 - 1)).toBeLessThan(1e-5);
    expect(out.epsilon as number).toBeLessThanOrEqual(8);
  });

  it.each([
    [['epsilon', '--noise', '0', '--rate', '0.1', '--steps', '10', '--delta', '1e-5'], '--noise'],
    [['epsilon', '--noise', 'abc', '--rate', '0.1', '--steps', '10', '--delta', '1e-5'], '--noise'],
    [['epsilon', '--noise', '1', '--rate', '1.5', '--steps', '10', '--delta', '1e-5'], '--rate'],
    [['epsilon', '--noise', '1', '--rate', '0.1', '--steps', '2.5', '--delta', '1e-5'], '--steps'],
    [['epsilon', '--noise', '1', '--rate', '0.1', '--steps', '10', '--delta', '1'], '--delta'],
    [['epsilon', '--noise', '1', '--rate', '0.1', '--steps', '10', '--delta', '1e-5', '--orders', '0.5,2'], '--orders'],
    [['noise', '--epsilon', '-1', '--rate', '0.1', '--steps', '10', '--delta', '1e-5'], '--epsilon'],
    [['noise', '--epsilon', '1e-9', '--rate', '0.5', '--steps', '100000', '--delta', '1e-5'], '--epsilon'],
    [['epsilon', '--noise', '1', '--rate', '0.1'], '--steps'],
    [['frobnicate'], 'frobnicate'],
  ])('bad input %j exits 2 naming %s on stderr', (args, named) => {
    const result = runDpCli(args);
    expect(result.exitCode).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(named);
  });

  it('--help exits 0; no arguments prints usage and exits 2', () => {
    const help = runDpCli(['--help']);
    expect(help.exitCode).toBe(0);
    expect(help.stdout).toContain('Usage: tessera-dp');
    const none = runDpCli([]);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain('Usage: tessera-dp');
  });
});

describe('built tessera-dp bin', () => {
  beforeAll(() => {
    execFileSync('npx', ['tsc', '-p', 'libs/dp'], { cwd: REPO_ROOT, stdio: 'pipe' });
  }, 120_000);

  it('runs from dist/cli.js (which keeps its shebang), prints JSON and exits 0', () => {
    // tsc does not set the executable bit (npm does when it links the bin), so run it through node here.
    expect(readFileSync(BIN, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    const result = spawnSync(
      process.execPath,
      [BIN, 'epsilon', '--noise', '1.5', '--rate', '0.04', '--steps', '2250', '--delta', '1e-5', '--orders', 'opacus'],
      {
        encoding: 'utf8',
      },
    );
    expect(result.status).toBe(0);
    expect(Math.abs((json(result.stdout).epsilon as number) / 7.329334702381698 - 1)).toBeLessThan(1e-9);
  });

  it('exits 2 with the problem on stderr for bad input', () => {
    const result = spawnSync(
      process.execPath,
      [BIN, 'noise', '--epsilon', '1', '--rate', '2', '--steps', '10', '--delta', '1e-5'],
      {
        encoding: 'utf8',
      },
    );
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('--rate');
  });
});
