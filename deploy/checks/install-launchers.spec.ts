import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = resolve(__dirname, '../..');

/** Every command a workspace package declares, with the file npm links for it. */
function declaredBins(): { pkg: string; name: string; file: string }[] {
  const out: { pkg: string; name: string; file: string }[] = [];
  for (const group of ['libs', 'apps']) {
    for (const dir of readdirSync(join(REPO, group))) {
      const manifest = join(REPO, group, dir, 'package.json');
      if (!existsSync(manifest)) continue;
      const { bin } = JSON.parse(readFileSync(manifest, 'utf8')) as { bin?: Record<string, string> };
      for (const [name, file] of Object.entries(bin ?? {})) {
        out.push({ pkg: `${group}/${dir}`, name, file: join(REPO, group, dir, file) });
      }
    }
  }
  return out;
}

// npm links a workspace's bin at install time only if its file exists then; a bin pointing into dist/ is missing on
// a fresh clone, and `npx NAME` would then fetch whatever package of that name the public registry serves.
describe('the commands the README and the reports print', () => {
  const bins = declaredBins();

  it('declares the four commands', () => {
    expect(bins.map((b) => b.name).sort()).toEqual(['tessera-agent', 'tessera-dp', 'tessera-hub', 'tessera-verify']);
  });

  it.each(bins)('$name is a committed launcher, not a build output', ({ file }) => {
    expect(file).not.toMatch(/[\\/]dist[\\/]/);
    const tracked = execFileSync('git', ['ls-files', '--error-unmatch', file], { cwd: REPO, encoding: 'utf8' });
    expect(tracked.trim()).not.toBe('');
    expect(readFileSync(file, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(statSync(file).mode & 0o111).not.toBe(0);
  });

  it.each(bins)('$name is linked in node_modules/.bin to its launcher', ({ name, file }) => {
    expect(realpathSync(join(REPO, 'node_modules/.bin', name))).toBe(realpathSync(file));
  });
});
