#!/usr/bin/env node
/* global console, process */
// Checks the workspace's manifests against its code (run by `npm run lint`):
// - every @tessera/* import is declared in the importing project's package.json (dependencies for code that ships,
//   devDependencies allowed for tests), every declared @tessera/* dependency is imported, versions match;
// - imports name a package export (`@tessera/dp/accountant`), never a folder, and never the project itself;
// - every library exports each entry's TypeScript source under the "@tessera/source" condition (what vitest, vite
//   and tsconfig customConditions resolve), beside its build;
// - TypeScript project references follow the declared dependencies, and tsconfig.build.json builds every project.
// The Nx module-boundary rule checks the layers (tags); this checks the manifests that rule and npm rely on.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

export const SOURCE_CONDITION = '@tessera/source';
const SCOPE = '@tessera/';
const CODE = /\.(ts|tsx|mts|cts|js|mjs|cjs)$/;
const TEST = /(\.(spec|int-spec|e2e-spec)\.tsx?|\.test-util\.ts)$/;
const SKIP_DIRS = new Set(['node_modules', 'dist', 'coverage', 'data', 'public', 'reference']);

function readJson(path) {
  // tsconfig files carry comments; strip whole-line ones (the only kind this repository writes).
  return JSON.parse(readFileSync(path, 'utf8').replace(/^\s*\/\/.*$/gm, ''));
}

/** The workspace's projects: every libs/* and apps/* folder with a package.json. */
export function projectsOf(root) {
  const projects = [];
  for (const group of ['libs', 'apps']) {
    const dir = join(root, group);
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir).sort()) {
      const manifest = join(dir, name, 'package.json');
      if (!existsSync(manifest)) continue;
      const pkg = readJson(manifest);
      const tsconfigPath = join(dir, name, 'tsconfig.json');
      projects.push({
        dir: join(group, name),
        pkg,
        tsconfig: existsSync(tsconfigPath) ? readJson(tsconfigPath) : null,
      });
    }
  }
  return projects;
}

function codeFiles(dir, out = []) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) {
      if (!SKIP_DIRS.has(entry) && !entry.startsWith('.')) codeFiles(path, out);
    } else if (CODE.test(entry) && !entry.endsWith('.d.ts')) {
      out.push(path);
    }
  }
  return out;
}

/** `@tessera/dp/accountant` → { name: '@tessera/dp', entry: './accountant' }. */
function splitSpecifier(specifier) {
  const [scope, name, ...rest] = specifier.split('/');
  return { name: `${scope}/${name}`, entry: rest.length === 0 ? '.' : `./${rest.join('/')}` };
}

/** A build project: its tsconfig emits (the console's is type-checking only; vite builds it). */
function isBuilt(project) {
  return project.tsconfig !== null && project.tsconfig.compilerOptions?.noEmit !== true;
}

function exportProblems(project, root) {
  const problems = [];
  const exports = project.pkg.exports;
  const where = `${project.dir}/package.json`;
  if (typeof exports !== 'object' || exports === null || !exports['.']) {
    return [`${where}: a library exports "." (with its "${SOURCE_CONDITION}" source and its build)`];
  }
  for (const [entry, target] of Object.entries(exports)) {
    if (entry === './package.json') continue;
    const source = typeof target === 'object' && target !== null ? target[SOURCE_CONDITION] : undefined;
    if (typeof source !== 'string') {
      problems.push(
        `${where}: export "${entry}" has no "${SOURCE_CONDITION}" condition (tests and the console read sources)`,
      );
    } else if (!existsSync(join(root, project.dir, source))) {
      problems.push(`${where}: export "${entry}" names the source ${source}, which does not exist`);
    }
  }
  return problems;
}

/** Every problem found, as lines naming the file to fix; empty when the manifests agree with the code. */
export function workspaceProblems(root) {
  const projects = projectsOf(root);
  const byName = new Map(projects.map((p) => [p.pkg.name, p]));
  const problems = [];

  for (const project of projects) {
    const where = `${project.dir}/package.json`;
    const deps = project.pkg.dependencies ?? {};
    const devDeps = project.pkg.devDependencies ?? {};
    const used = new Map(); // package name → { shipped: files of shipped code, tests: test files }
    if (project.dir.startsWith('libs/')) problems.push(...exportProblems(project, root));

    for (const file of codeFiles(join(root, project.dir))) {
      const rel = relative(root, file);
      const test = TEST.test(file) || rel.split('/').includes('testing');
      const imports = ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map((f) => f.fileName);
      for (const specifier of imports) {
        if (!specifier.startsWith(SCOPE)) continue;
        const { name, entry } = splitSpecifier(specifier);
        const target = byName.get(name);
        if (name === project.pkg.name) {
          problems.push(`${rel}: imports its own package ${specifier}; use a relative import`);
          continue;
        }
        if (!target) {
          problems.push(`${rel}: imports ${specifier}, which is no package of this workspace`);
          continue;
        }
        const exported = target.pkg.exports ? Object.hasOwn(target.pkg.exports, entry) : entry === '.';
        if (!exported) {
          problems.push(
            `${rel}: imports ${specifier}, which ${name} does not export (import the package or a declared entry)`,
          );
        }
        const seen = used.get(name) ?? { shipped: new Set(), tests: new Set() };
        (test ? seen.tests : seen.shipped).add(rel);
        used.set(name, seen);
      }
    }

    const files = (set) => {
      const list = [...set].sort();
      return list.length === 1 ? list[0] : `${list[0]} and ${list.length - 1} more`;
    };
    for (const [name, seen] of used) {
      if (seen.shipped.size > 0 && !(name in deps)) {
        problems.push(`${where}: "dependencies" lacks ${name}, imported by ${files(seen.shipped)}`);
      } else if (seen.shipped.size === 0 && !(name in deps) && !(name in devDeps)) {
        problems.push(`${where}: "devDependencies" lacks ${name}, imported by ${files(seen.tests)}`);
      }
    }

    for (const [name, version] of [...Object.entries(deps), ...Object.entries(devDeps)]) {
      if (!name.startsWith(SCOPE)) continue;
      const target = byName.get(name);
      if (!target) {
        problems.push(`${where}: depends on ${name}, which is no package of this workspace`);
        continue;
      }
      if (version !== target.pkg.version) {
        problems.push(`${where}: depends on ${name} ${version}, but the workspace holds ${target.pkg.version}`);
      }
      const seen = used.get(name);
      if (!seen) problems.push(`${where}: declares ${name} but nothing in ${project.dir} imports it`);
      else if (name in deps && seen.shipped.size === 0) {
        problems.push(`${where}: only tests import ${name}; move it to "devDependencies"`);
      }
    }

    if (isBuilt(project)) {
      const referenced = new Set(
        (project.tsconfig.references ?? []).map((r) => relative(root, resolve(root, project.dir, r.path))),
      );
      const needed = new Set(
        Object.keys(deps)
          .map((name) => byName.get(name))
          .filter((target) => target !== undefined && isBuilt(target))
          .map((target) => target.dir),
      );
      for (const dir of needed) {
        if (!referenced.has(dir)) problems.push(`${project.dir}/tsconfig.json: references lack ${dir} (a dependency)`);
      }
      for (const dir of referenced) {
        if (!needed.has(dir)) problems.push(`${project.dir}/tsconfig.json: references ${dir}, which is no dependency`);
      }
    }
  }

  const buildPath = join(root, 'tsconfig.build.json');
  if (existsSync(buildPath)) {
    const built = new Set((readJson(buildPath).references ?? []).map((r) => relative(root, resolve(root, r.path))));
    for (const project of projects) {
      if (isBuilt(project) && !built.has(project.dir)) {
        problems.push(`tsconfig.build.json: does not build ${project.dir}`);
      }
    }
  }
  return problems;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const problems = workspaceProblems(root);
  for (const line of problems) console.error(line);
  if (problems.length > 0) {
    console.error(`\n${problems.length} workspace manifest problem(s).`);
    process.exit(1);
  }
}
