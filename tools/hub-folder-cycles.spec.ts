import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  cycleEdges,
  cycleProblems,
  cyclicComponents,
  folderEdges,
  folderOf,
  hubModules,
  KNOWN_CYCLE_EDGES,
} from './hub-folder-cycles.mjs';

const root = 'apps/hub/src';

/** A file graph by hand: `a/x.ts imports b/y.ts` as [source, ...imports], paths under the hub's sources. */
function modules(...files: string[][]) {
  return files.map(([source, ...imports]) => ({
    source: `${root}/${source}`,
    dependencies: imports.map((resolved) => ({ resolved: `${root}/${resolved}` })),
  }));
}

describe('hub folder cycles', () => {
  it('names a file by its first folder under the hub, files at the top by (root)', () => {
    expect(folderOf(`${root}/studies/dto/create-study.dto.ts`)).toBe('studies');
    expect(folderOf(`${root}/hub.ts`)).toBe('(root)');
  });

  it('folds imports into folder edges, dropping imports inside a folder and outside the hub', () => {
    const edges = folderEdges([
      ...modules(['rounds/a.ts', 'rounds/b.ts', 'studies/s.ts', 'studies/t.ts'], ['hub.ts', 'rounds/a.ts']),
      { source: `${root}/rounds/b.ts`, dependencies: [{ resolved: 'libs/dp/src/index.ts' }] },
    ]);
    expect(Object.fromEntries(edges)).toEqual({
      'rounds -> studies': ['rounds/a.ts -> studies/s.ts', 'rounds/a.ts -> studies/t.ts'],
      '(root) -> rounds': ['hub.ts -> rounds/a.ts'],
    });
  });

  it('finds cycles longer than two folders, and only the edges on them', () => {
    const edges = ['a -> b', 'b -> c', 'c -> a', 'c -> d', 'd -> e', 'e -> d', 'f -> a'];
    expect(cyclicComponents(edges)).toEqual([
      ['a', 'b', 'c'],
      ['d', 'e'],
    ]);
    expect(cycleEdges(edges)).toEqual(['a -> b', 'b -> c', 'c -> a', 'd -> e', 'e -> d']);
    expect(cycleEdges(['a -> b', 'b -> c', 'a -> c'])).toEqual([]);
  });

  it('refuses a new cycle, naming the imports that close it', () => {
    const edges = folderEdges(modules(['auth/guard.ts', 'silos/identity.ts'], ['silos/identity.ts', 'auth/access.ts']));
    const problems = cycleProblems(edges, ['auth -> silos']);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('silos -> auth closes a cycle through auth, silos');
    expect(problems[0]).toContain('silos/identity.ts -> auth/access.ts');
    expect(cycleProblems(edges, ['auth -> silos', 'silos -> auth'])).toEqual([]);
  });

  it('refuses a listed edge that is no longer on a cycle (the list only shrinks), and duplicates', () => {
    const edges = folderEdges(modules(['auth/guard.ts', 'silos/identity.ts']));
    expect(cycleProblems(edges, ['auth -> silos'])).toEqual([
      'auth -> silos is no longer on an import cycle: remove it from KNOWN_CYCLE_EDGES in tools/hub-folder-cycles.mjs',
    ]);
    const cyclic = folderEdges(modules(['a/x.ts', 'b/y.ts'], ['b/y.ts', 'a/x.ts']));
    expect(cycleProblems(cyclic, ['a -> b', 'b -> a', 'a -> b'])).toEqual([
      'a -> b is listed twice in KNOWN_CYCLE_EDGES',
    ]);
  });

  it('reads the hub: type-only and re-exporting imports count, tests do not, and the listed cycles are all there are', async () => {
    const hub = await hubModules(resolve(__dirname, '..'));
    const sources = hub.map((m) => m.source);
    expect(sources).toContain('apps/hub/src/app.module.ts');
    expect(sources.some((s) => /\.(spec|int-spec)\.ts$|\.test-util\.ts$/.test(s))).toBe(false);
    const typeOnly = hub.flatMap((m) => m.dependencies).filter((d) => d.dependencyTypes.includes('type-only'));
    expect(typeOnly.length).toBeGreaterThan(0);
    expect(cycleProblems(folderEdges(hub), KNOWN_CYCLE_EDGES)).toEqual([]);
  }, 60_000);
});
