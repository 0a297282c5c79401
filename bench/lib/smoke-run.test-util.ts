import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(__dirname, '../..');

/**
 * Runs one benchmark script in --smoke mode (tiny sizes) against the built workspace and returns the JSON it wrote.
 * Builds first when a clean checkout has no dist (the scripts import built code, not sources). Speed is never
 * asserted: the smoke run only keeps the scripts from rotting.
 */
export function runSmoke(script: string, extraArgs: readonly string[] = [], timeoutMs = 120_000): unknown {
  if (!existsSync(resolve(repoRoot, 'apps/hub/dist/main.js'))) {
    execFileSync(
      process.execPath,
      [resolve(repoRoot, 'node_modules/typescript/bin/tsc'), '-b', 'tsconfig.build.json'],
      {
        cwd: repoRoot,
      },
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'tessera-bench-smoke-'));
  try {
    const out = join(dir, 'result.json');
    execFileSync(process.execPath, [script, '--smoke', `--out=${out}`, ...extraArgs], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: timeoutMs,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return JSON.parse(readFileSync(out, 'utf8')) as unknown;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The machine block every report carries. */
export interface MachineShape {
  cores: number;
  cpuModel: string;
  memoryBytes: number;
  node: string;
  loadAverage: number[];
}

/** A target entry: { target, value, met }. */
export interface TargetShape {
  target: number;
  value: number | null;
  met: boolean | null;
}
