import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  cycleEdges,
  cycleProblems,
  cyclicComponents,
  folderEdges,
  folderOf,
  hubModules,
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

  it('refuses every edge on a cycle, naming the folders of the cycle and the imports that make the edge', () => {
    const edges = folderEdges(
      modules(
        ['auth/guard.ts', 'silos/identity.ts'],
        ['silos/identity.ts', 'auth/access.ts'],
        ['studies/s.ts', 'auth/guard.ts'],
      ),
    );
    const problems = cycleProblems(edges);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toContain('auth -> silos is on a cycle through auth, silos');
    expect(problems[0]).toContain('auth/guard.ts -> silos/identity.ts');
    expect(problems[1]).toContain('silos -> auth is on a cycle through auth, silos');
    expect(problems[1]).toContain('silos/identity.ts -> auth/access.ts');
  });

  it('accepts folders in layers: an edge off every cycle is no problem', () => {
    const edges = folderEdges(
      modules(['auth/guard.ts', 'silos/identity.ts'], ['studies/s.ts', 'auth/guard.ts', 'silos/identity.ts']),
    );
    expect(cycleProblems(edges)).toEqual([]);
  });

  it('reads the hub: type-only and re-exporting imports count, tests do not, and its folders form no cycle', async () => {
    const hub = await hubModules(resolve(__dirname, '..'));
    const sources = hub.map((m) => m.source);
    expect(sources).toContain('apps/hub/src/app.module.ts');
    expect(sources.some((s) => /\.(spec|int-spec)\.ts$|\.test-util\.ts$/.test(s))).toBe(false);
    const typeOnly = hub.flatMap((m) => m.dependencies).filter((d) => d.dependencyTypes.includes('type-only'));
    expect(typeOnly.length).toBeGreaterThan(0);
    expect(cycleProblems(folderEdges(hub))).toEqual([]);
  }, 60_000);
});
