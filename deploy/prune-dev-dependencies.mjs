// Removes from an installed tree every package that package-lock.json flags "dev": true.
//
// Why: npm 10 (the npm of the node:20 images) keeps the devDependencies of linked workspaces under
// `npm ci --omit=dev --workspace <name>`: the agent image would carry onnxruntime-node (~290 MB, a test-only
// dependency of libs/ml) and the hub image supertest and @types/*. The lockfile's own dev flags are npm's
// computation of what only development needs, so removing exactly those paths leaves the production tree.
//
// Usage (inside an image's dependency stage, after the install): node prune-dev-dependencies.mjs [root]
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

/** Paths (relative to the root) of installed packages that only development needs, per the lockfile. */
export function devOnlyPaths(lock) {
  return Object.entries(lock.packages ?? {})
    .filter(([path, meta]) => path.includes('node_modules/') && meta.dev === true)
    .map(([path]) => path)
    .sort();
}

export function pruneDevDependencies(root) {
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));
  const removed = [];
  for (const path of devOnlyPaths(lock)) {
    const full = join(root, path);
    if (!existsSync(full)) continue;
    rmSync(full, { recursive: true, force: true });
    removed.push(path);
  }
  return removed;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const removed = pruneDevDependencies(resolve(process.argv[2] ?? '.'));
  process.stdout.write(`prune-dev-dependencies: removed ${removed.length} development-only packages\n`);
}
