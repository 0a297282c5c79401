import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const DIST = join(__dirname, '../dist');

/** The modules the built agent has loaded once it ran `args`, in a process of its own. */
function loadedBy(args: string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'tessera-agent-footprint-'));
  const list = join(dir, 'modules.json');
  try {
    const script =
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(list)}, ` +
      `JSON.stringify(Object.keys(require.cache))));` +
      `process.argv = [process.argv[0], 'tessera-agent', ...${JSON.stringify(args)}];` +
      `require(${JSON.stringify(join(DIST, 'main.js'))});`;
    execFileSync(process.execPath, ['-e', script], { stdio: 'ignore' });
    return JSON.parse(readFileSync(list, 'utf8')) as string[];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const heavy = (modules: string[]) => modules.filter((m) => /node_modules[\\/](@tensorflow|sharp)[\\/]/.test(m));

describe("the agent's footprint per command", () => {
  it('loads neither TensorFlow.js nor sharp for the commands that do not train', () => {
    for (const args of [['--help'], ['studies', '--help'], ['status', '--help'], ['enroll', '--help']]) {
      const modules = loadedBy(args);
      // Sanity: the command modules were loaded (the check sees the graph).
      expect(modules.some((m) => m.endsWith(join('dist', 'commands', 'studies.command.js')))).toBe(true);
      expect(heavy(modules)).toEqual([]);
    }
  });
});
