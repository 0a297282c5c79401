#!/usr/bin/env node
/* global console, process */
// Checks that the hub's folders (apps/hub/src/<folder>/, the files at its top being "(root)") import each other
// without cycles (run by `npm run lint`; docs/adr/0020-hub-folder-layers.md). dependency-cruiser reads every import
// of the hub's shipped code — static, dynamic, re-exports and type-only ones (a type import couples two folders as
// much as a value import) — and tests are left out. The files' graph is folded into a graph of folders; every folder
// edge inside a strongly connected component lies on a cycle, and any such edge fails the check: there is no list
// of tolerated cycles.
import { relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const HUB_SOURCES = 'apps/hub/src';
export const ROOT_FOLDER = '(root)';
const TESTS = '\\.(spec|int-spec|e2e-spec)\\.tsx?$|\\.test-util\\.ts$';

/** The hub folder a file belongs to: the first folder under `root`, or ROOT_FOLDER for files at its top. */
export function folderOf(file, root = HUB_SOURCES) {
  const parts = relative(root, file).split('/');
  return parts.length > 1 ? parts[0] : ROOT_FOLDER;
}

/**
 * Folds a file graph into a folder graph.
 * @param {{ source: string, dependencies: { resolved: string }[] }[]} modules files and what each imports
 * @returns {Map<string, string[]>} `from -> to` (folders) to the file imports that make the edge
 */
export function folderEdges(modules, root = HUB_SOURCES) {
  const edges = new Map();
  const inside = (file) => !relative(root, file).startsWith('..');
  for (const { source, dependencies } of modules) {
    if (!inside(source)) continue;
    for (const { resolved } of dependencies) {
      if (!inside(resolved)) continue;
      const from = folderOf(source, root);
      const to = folderOf(resolved, root);
      if (from === to) continue;
      const key = `${from} -> ${to}`;
      if (!edges.has(key)) edges.set(key, []);
      edges.get(key).push(`${relative(root, source)} -> ${relative(root, resolved)}`);
    }
  }
  return edges;
}

/** Strongly connected components of a directed graph (Tarjan), each sorted; components of one node left out. */
export function cyclicComponents(edgeKeys) {
  const next = new Map();
  for (const key of edgeKeys) {
    const [from, to] = key.split(' -> ');
    if (!next.has(from)) next.set(from, []);
    if (!next.has(to)) next.set(to, []);
    next.get(from).push(to);
  }
  const index = new Map();
  const low = new Map();
  const stack = [];
  const onStack = new Set();
  const components = [];
  let counter = 0;
  const visit = (node) => {
    index.set(node, counter);
    low.set(node, counter);
    counter += 1;
    stack.push(node);
    onStack.add(node);
    for (const to of next.get(node)) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node), low.get(to)));
      } else if (onStack.has(to)) {
        low.set(node, Math.min(low.get(node), index.get(to)));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component = [];
      let member;
      do {
        member = stack.pop();
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) components.push(component.sort());
    }
  };
  for (const node of [...next.keys()].sort()) if (!index.has(node)) visit(node);
  return components.sort((a, b) => a[0].localeCompare(b[0]));
}

/** The edges that lie on a cycle: both ends in the same strongly connected component. Sorted. */
export function cycleEdges(edgeKeys) {
  const keys = [...edgeKeys];
  const componentOf = new Map();
  cyclicComponents(keys).forEach((component, i) => component.forEach((folder) => componentOf.set(folder, i)));
  return keys
    .filter((key) => {
      const [from, to] = key.split(' -> ');
      return componentOf.has(from) && componentOf.get(from) === componentOf.get(to);
    })
    .sort();
}

/**
 * Every folder edge on a cycle, each named with the folders of its cycle and the imports that make it.
 * @param {Map<string, string[]>} edges folder edges with the imports behind them (folderEdges)
 */
export function cycleProblems(edges) {
  const keys = [...edges.keys()];
  const components = cyclicComponents(keys);
  return cycleEdges(keys).map((key) => {
    const [from] = key.split(' -> ');
    const component = components.find((c) => c.includes(from));
    const imports = edges.get(key);
    return (
      `import cycle between hub folders: ${key} is on a cycle through ${component.join(', ')} ` +
      `(${imports.slice(0, 3).join('; ')}${imports.length > 3 ? '; …' : ''})`
    );
  });
}

/** The hub's shipped files and their imports, read by dependency-cruiser. */
export async function hubModules(workspaceRoot) {
  const { cruise } = await import('dependency-cruiser');
  const here = process.cwd();
  process.chdir(workspaceRoot);
  try {
    const result = await cruise(
      [HUB_SOURCES],
      {
        tsPreCompilationDeps: true,
        exclude: { path: TESTS },
        includeOnly: `^${HUB_SOURCES}/`,
        moduleSystems: ['es6', 'cjs'],
        validate: false,
      },
      { extensions: ['.ts', '.js'] },
      { tsConfig: { fileName: 'apps/hub/tsconfig.json' } },
    );
    const modules = result.output.modules;
    const unresolved = modules.flatMap((m) =>
      m.dependencies.filter((d) => d.couldNotResolve).map((d) => `${m.source} -> ${d.module}`),
    );
    if (unresolved.length > 0)
      throw new Error(`imports dependency-cruiser could not resolve: ${unresolved.join(', ')}`);
    return modules;
  } finally {
    process.chdir(here);
  }
}

async function main() {
  const root = resolve(fileURLToPath(import.meta.url), '../..');
  const edges = folderEdges(await hubModules(root));
  const problems = cycleProblems(edges);
  if (process.argv.includes('--list')) {
    for (const component of cyclicComponents([...edges.keys()])) console.log(`cycle through: ${component.join(', ')}`);
    for (const key of cycleEdges([...edges.keys()])) console.log(`  ${key}: ${edges.get(key).join('; ')}`);
  }
  for (const problem of problems) console.error(problem);
  if (problems.length > 0) process.exit(1);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
