// Copies, for every npm workspace the root package.json declares, only what an image stage needs from it:
//
//   manifests  <workspace>/package.json                     (before `npm ci`: the dependency layers' cache key)
//   builds     <workspace>/package.json and <workspace>/dist  (after `npm run build`: what runs in the image)
//
// Why: the Dockerfiles used to list every library by name, and a new library (libs/secagg) broke both images
// until someone added two more lines to each. Reading the workspace globs from package.json, as npm does, keeps
// the images in step with the repository; the runtime stage then copies whole folders of this output.
//
// Usage (inside an image build): node collect-workspaces.mjs manifests|builds <source root> <destination>
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';

/**
 * Workspace folders (relative to root, sorted) matched by package.json's `workspaces`: literal folders and
 * `folder/*`, the two forms npm documents for workspaces; anything else is refused rather than half-understood.
 */
export function workspaceFolders(root) {
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const globs = Array.isArray(manifest.workspaces) ? manifest.workspaces : (manifest.workspaces?.packages ?? []);
  const folders = [];
  for (const glob of globs) {
    const segments = glob.replace(/\/\*$/, '').split('/');
    if (!/^[\w.-]+(\/[\w.-]+)*(\/\*)?$/.test(glob) || segments.some((s) => s === '.' || s === '..')) {
      throw new Error(`collect-workspaces: unsupported workspace pattern "${glob}" (use "dir" or "dir/*")`);
    }
    if (!glob.endsWith('/*')) {
      folders.push(glob);
      continue;
    }
    const base = glob.slice(0, -2);
    if (!existsSync(join(root, base))) continue;
    for (const entry of readdirSync(join(root, base))) {
      if (statSync(join(root, base, entry)).isDirectory()) folders.push(`${base}/${entry}`);
    }
  }
  return folders.filter((folder) => existsSync(join(root, folder, 'package.json'))).sort();
}

/** Copies each workspace's manifest (and, for `builds`, its dist folder); returns the relative paths copied. */
export function collectWorkspaces(mode, root, destination) {
  if (mode !== 'manifests' && mode !== 'builds') {
    throw new Error(`collect-workspaces: mode must be manifests or builds, got "${mode}"`);
  }
  const copied = [];
  for (const folder of workspaceFolders(root)) {
    mkdirSync(join(destination, folder), { recursive: true });
    cpSync(join(root, folder, 'package.json'), join(destination, folder, 'package.json'));
    copied.push(`${folder}/package.json`);
    if (mode === 'builds' && existsSync(join(root, folder, 'dist'))) {
      cpSync(join(root, folder, 'dist'), join(destination, folder, 'dist'), { recursive: true });
      copied.push(`${folder}/dist`);
    }
  }
  return copied;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [mode, root, destination] = process.argv.slice(2);
  if (!mode || !root || !destination) {
    process.stderr.write('usage: node collect-workspaces.mjs manifests|builds <source root> <destination>\n');
    process.exit(2);
  }
  try {
    const copied = collectWorkspaces(mode, resolve(root), resolve(destination));
    process.stdout.write(`collect-workspaces: ${mode}: ${copied.join(' ')}\n`);
  } catch (error) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}
