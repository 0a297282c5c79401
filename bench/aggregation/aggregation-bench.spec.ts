import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// Keeps the benchmark script from rotting: runs it in --smoke mode (tiny sizes, no numpy) and checks the shape
// of what it writes. Speed is NOT asserted here; figures belong to the full run (bench/results/aggregation.json).
const root = resolve(__dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'tessera-aggregation-bench-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('aggregation benchmark (smoke)', () => {
  it('runs against the built library and writes the documented JSON', () => {
    // The script imports libs/aggregation/dist (plain node, no TS runner); build it when a clean checkout has not.
    if (!existsSync(resolve(root, 'libs/aggregation/dist/index.js'))) {
      execFileSync(process.execPath, [resolve(root, 'node_modules/typescript/bin/tsc'), '-p', 'libs/aggregation'], {
        cwd: root,
      });
    }
    const out = join(dir, 'aggregation.json');
    execFileSync(
      process.execPath,
      ['bench/aggregation/aggregation.bench.mjs', '--smoke', '--no-numpy', `--out=${out}`],
      {
        cwd: root,
        encoding: 'utf8',
      },
    );
    const result = JSON.parse(readFileSync(out, 'utf8')) as {
      mode: string;
      machine: { cpus: number; model: string; memory: number; node: string };
      figures: {
        parameters: number;
        updates: number;
        fedAvgStreaming: { gbps: number };
        memoryCopy: { gbps: number };
      }[];
      ratios: { fedAvgOverCopy: number }[];
      targets: { fedAvgAtLeastHalfOfCopy: { target: number } };
      pass: boolean;
    };
    expect(result.mode).toBe('smoke');
    expect(result.machine.cpus).toBeGreaterThan(0);
    expect(result.machine.node).toBe(process.version);
    expect(result.figures.map((f) => [f.parameters, f.updates])).toEqual([
      [10_000, 4],
      [10_000, 16],
      [100_000, 4],
      [100_000, 16],
    ]);
    for (const f of result.figures) {
      expect(f.fedAvgStreaming.gbps).toBeGreaterThan(0);
      expect(f.memoryCopy.gbps).toBeGreaterThan(0);
    }
    expect(result.ratios).toHaveLength(4);
    expect(result.targets.fedAvgAtLeastHalfOfCopy.target).toBe(0.5);
    expect(typeof result.pass).toBe('boolean');
  });
});
