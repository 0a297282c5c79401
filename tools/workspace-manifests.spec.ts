import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { workspaceProblems } from './workspace-manifests.mjs';

type Json = Record<string, unknown>;

/** A small workspace on disk: a contract lib, a domain lib on it, an app on both; each test breaks one thing. */
class WorkspaceBuilder {
  readonly files = new Map<string, string>();

  constructor() {
    this.lib('canon', {});
    this.lib('core', { '@tessera/canon': '0.1.0' }, ['../canon']);
    this.file('libs/core/src/index.ts', "import { h } from '@tessera/canon';\nexport const k = h;\n");
    this.json('apps/app/package.json', {
      name: '@tessera/app',
      version: '0.1.0',
      dependencies: { '@tessera/core': '0.1.0' },
      devDependencies: { '@tessera/canon': '0.1.0' },
    });
    this.json('apps/app/tsconfig.json', {
      compilerOptions: { outDir: 'dist' },
      references: [{ path: '../../libs/core' }],
    });
    this.file('apps/app/src/main.ts', "import { k } from '@tessera/core';\nconsole.log(k);\n");
    this.file('apps/app/src/main.spec.ts', "import { h } from '@tessera/canon';\nvoid h;\n");
    this.json('tsconfig.build.json', {
      files: [],
      references: [{ path: 'libs/canon' }, { path: 'libs/core' }, { path: 'apps/app' }],
    });
  }

  lib(name: string, dependencies: Record<string, string>, references: string[] = []): this {
    this.json(`libs/${name}/package.json`, {
      name: `@tessera/${name}`,
      version: '0.1.0',
      exports: {
        '.': { '@tessera/source': './src/index.ts', types: './dist/index.d.ts', default: './dist/index.js' },
        './package.json': './package.json',
      },
      dependencies,
    });
    this.json(`libs/${name}/tsconfig.json`, {
      compilerOptions: { outDir: 'dist' },
      references: references.map((path) => ({ path })),
    });
    this.file(`libs/${name}/src/index.ts`, 'export const h = 1;\n');
    return this;
  }

  file(path: string, text: string): this {
    this.files.set(path, text);
    return this;
  }

  json(path: string, value: Json): this {
    return this.file(path, JSON.stringify(value, null, 2));
  }

  edit(path: string, change: (value: Json) => void): this {
    const value = JSON.parse(this.files.get(path)!) as Json;
    change(value);
    return this.json(path, value);
  }

  writeTo(root: string): string {
    for (const [path, text] of this.files) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    return root;
  }
}

const roots: string[] = [];
function problemsOf(builder: WorkspaceBuilder): string[] {
  const root = mkdtempSync(join(tmpdir(), 'tessera-manifests-'));
  roots.push(root);
  return workspaceProblems(builder.writeTo(root));
}

afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

describe('workspace manifests', () => {
  it('finds nothing wrong in a consistent workspace', () => {
    expect(problemsOf(new WorkspaceBuilder())).toEqual([]);
  });

  it('finds a shipped import the package.json does not declare', () => {
    const b = new WorkspaceBuilder().file('apps/app/src/extra.ts', "export { h } from '@tessera/canon';\n");
    expect(problemsOf(b)).toEqual([
      'apps/app/package.json: "dependencies" lacks @tessera/canon, imported by apps/app/src/extra.ts',
    ]);
  });

  it('finds dynamic imports and requires too', () => {
    const b = new WorkspaceBuilder()
      .file('libs/canon/src/late.ts', "export const load = () => import('@tessera/core');\n")
      .file('libs/canon/bin/cli.cjs', "require('@tessera/core');\n");
    expect(problemsOf(b)).toEqual([
      'libs/canon/package.json: "dependencies" lacks @tessera/core, imported by libs/canon/bin/cli.cjs and 1 more',
    ]);
  });

  it('lets tests use devDependencies, and asks to move a dependency only tests use', () => {
    const b = new WorkspaceBuilder()
      .edit('apps/app/package.json', (p) => {
        p.dependencies = { '@tessera/core': '0.1.0', '@tessera/canon': '0.1.0' };
        p.devDependencies = {};
      })
      .edit('apps/app/tsconfig.json', (t) => {
        t.references = [{ path: '../../libs/core' }, { path: '../../libs/canon' }];
      });
    expect(problemsOf(b)).toEqual([
      'apps/app/package.json: only tests import @tessera/canon; move it to "devDependencies"',
    ]);
  });

  it('finds a declared dependency nothing imports, and a version the workspace does not hold', () => {
    const b = new WorkspaceBuilder().edit('apps/app/package.json', (p) => {
      p.dependencies = { '@tessera/core': '0.2.0' };
      p.devDependencies = { '@tessera/canon': '0.1.0', '@tessera/missing': '0.1.0' };
    });
    expect(problemsOf(b)).toEqual([
      'apps/app/package.json: depends on @tessera/core 0.2.0, but the workspace holds 0.1.0',
      'apps/app/package.json: depends on @tessera/missing, which is no package of this workspace',
    ]);
    const unused = new WorkspaceBuilder().file('apps/app/src/main.spec.ts', 'export {};\n');
    expect(problemsOf(unused)).toEqual([
      'apps/app/package.json: declares @tessera/canon but nothing in apps/app imports it',
    ]);
  });

  it('refuses folders and entries a library does not export, and a library importing itself', () => {
    const b = new WorkspaceBuilder()
      .file('apps/app/src/deep.ts', "import { h } from '@tessera/core/src/index';\nvoid h;\n")
      .file('libs/core/src/self.ts', "export { k } from '@tessera/core';\n");
    expect(problemsOf(b)).toEqual([
      'libs/core/src/self.ts: imports its own package @tessera/core; use a relative import',
      'apps/app/src/deep.ts: imports @tessera/core/src/index, which @tessera/core does not export (import the package or a declared entry)',
    ]);
  });

  it('needs every library entry to export its source under the "@tessera/source" condition', () => {
    const b = new WorkspaceBuilder()
      .edit('libs/core/package.json', (p) => {
        p.exports = { '.': { types: './dist/index.d.ts', default: './dist/index.js' } };
      })
      .edit('libs/canon/package.json', (p) => {
        p.exports = { '.': { '@tessera/source': './src/gone.ts', default: './dist/gone.js' } };
      });
    expect(problemsOf(b)).toEqual([
      'libs/canon/package.json: export "." names the source ./src/gone.ts, which does not exist',
      'libs/core/package.json: export "." has no "@tessera/source" condition (tests and the console read sources)',
    ]);
  });

  it('keeps project references and the build list in step with the dependencies', () => {
    const b = new WorkspaceBuilder()
      .edit('apps/app/tsconfig.json', (t) => {
        t.references = [{ path: '../../libs/canon' }];
      })
      .edit('tsconfig.build.json', (t) => {
        t.references = [{ path: 'libs/canon' }, { path: 'apps/app' }];
      });
    expect(problemsOf(b)).toEqual([
      'apps/app/tsconfig.json: references lack libs/core (a dependency)',
      'apps/app/tsconfig.json: references libs/canon, which is no dependency',
      'tsconfig.build.json: does not build libs/core',
    ]);
  });
});
