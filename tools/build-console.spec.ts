import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { newestInput } from './build-console.mjs';

describe('the console build: what counts as a newer input', () => {
  const roots: string[] = [];
  afterEach(() => roots.splice(0).forEach((r) => rmSync(r, { recursive: true, force: true })));

  /** Writes `path` under `root` with modification time `seconds`. */
  function file(root: string, path: string, seconds: number): void {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), 'x');
    utimesSync(join(root, path), seconds, seconds);
  }

  it("is the newest source file's time, ignoring build output, dependencies and dot-folders", () => {
    const root = mkdtempSync(join(tmpdir(), 'tessera-console-inputs-'));
    roots.push(root);
    file(root, 'src/a.tsx', 1_000);
    file(root, 'src/deep/b.ts', 2_000);
    file(root, 'dist/index.html', 9_000);
    file(root, 'node_modules/.vite/deps.json', 9_000);
    file(root, '.cache/x', 9_000);
    expect(newestInput(root)).toBe(2_000_000);
    // A newer source anywhere below makes the bundle stale.
    file(root, 'src/deep/deeper/c.ts', 3_000);
    expect(newestInput(root)).toBe(3_000_000);
    expect(newestInput(join(root, 'src/a.tsx'))).toBe(1_000_000);
    expect(newestInput(join(root, 'missing'))).toBe(0);
  });
});
