#!/usr/bin/env node
/* global process */
// Builds the console (vite) unless its bundle is newer than every file it is built from, so `npm run build` (and
// `npm run demo`, which builds first) does not spend half a minute rebuilding an unchanged console. Conservative:
// any newer input — the console's sources and configuration, any library source (the console bundles them through
// their "@tessera/source" condition), the lockfile, the shared TypeScript configuration — rebuilds it. `--force`
// always builds.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bundle = join(root, 'apps/console/dist/index.html');

/**
 * The newest modification time of a file under `path` (a file or a directory), skipping build output, dependencies
 * and dot-folders. Files only: a directory's own time changes whenever a build writes next to it.
 */
export function newestInput(path) {
  if (!existsSync(path)) return 0;
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path)) {
    if (entry === 'dist' || entry === 'node_modules' || entry.startsWith('.')) continue;
    newest = Math.max(newest, newestInput(join(path, entry)));
  }
  return newest;
}

function inputs() {
  const libs = readdirSync(join(root, 'libs')).map((lib) => join(root, 'libs', lib));
  return [
    join(root, 'apps/console'),
    ...libs,
    join(root, 'package.json'),
    join(root, 'package-lock.json'),
    join(root, 'tsconfig.base.json'),
  ];
}

function main() {
  const force = process.argv.includes('--force');
  if (!force && existsSync(bundle)) {
    const built = statSync(bundle).mtimeMs;
    const stale = inputs().filter((input) => newestInput(input) > built);
    if (stale.length === 0) {
      process.stdout.write('console: bundle up to date (apps/console/dist), not rebuilt; --force rebuilds it\n');
      return;
    }
  }
  execFileSync(
    process.execPath,
    [join(root, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'apps/console/vite.config.ts'],
    {
      cwd: root,
      stdio: 'inherit',
    },
  );
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
