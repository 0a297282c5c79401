import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  checkDockerfile,
  envOf,
  execForm,
  globalArgs,
  parseDockerfile,
  stagesOf,
  type Stage,
} from './dockerfile-rules.test-util';

/**
 * Static checks of deploy/hub.Dockerfile, deploy/agent.Dockerfile, .dockerignore and the shell scripts, on every
 * test run. The images are built and run under a real Docker engine by .ci/containers.sh (CI); the agent's
 * entrypoint also runs without Docker in agent-container.int-spec.ts.
 */

const REPO = resolve(__dirname, '../..');
const read = (path: string) => readFileSync(join(REPO, path), 'utf8');

function args(stage: Stage, keyword: string): string[] {
  return stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);
}

/** Workspace folders per the root package.json's globs (apps/*, libs/*) that have a package.json. */
function workspaces(): string[] {
  const globs = (JSON.parse(read('package.json')) as { workspaces: string[] }).workspaces;
  return globs.flatMap((g) => {
    const base = g.replace(/\/\*$/, '');
    return spawnSync('ls', [join(REPO, base)], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter((d) => d && existsSync(join(REPO, base, d, 'package.json')))
      .map((d) => `${base}/${d}`);
  });
}

/** @tessera/* packages an app needs at run time, transitively, as workspace folders. */
function runtimeWorkspaces(app: string): string[] {
  const byName = new Map(
    workspaces().map((w) => [(JSON.parse(read(`${w}/package.json`)) as { name: string }).name, w] as const),
  );
  const seen = new Set<string>();
  const visit = (folder: string) => {
    if (seen.has(folder)) return;
    seen.add(folder);
    const deps = (JSON.parse(read(`${folder}/package.json`)) as { dependencies?: Record<string, string> }).dependencies;
    for (const name of Object.keys(deps ?? {})) if (byName.has(name)) visit(byName.get(name)!);
  };
  visit(app);
  return [...seen].sort();
}

/** Node.js release of an official image tag (`node:24.22.3-bookworm-slim` → 24.22.3). */
const nodeRelease = (image: string) => /^node:(\d+\.\d+\.\d+)-/.exec(image)?.[1];

/** The collector's output folder in the build stage, and the runtime COPYs out of it. */
const BUILDS = '/opt/builds';

describe.each([
  { file: 'deploy/hub.Dockerfile', app: 'apps/hub', workspace: '@tessera/hub' },
  { file: 'deploy/agent.Dockerfile', app: 'apps/agent', workspace: '@tessera/agent' },
])('$file', ({ file, app, workspace }) => {
  const instructions = parseDockerfile(read(file));
  const stages = stagesOf(instructions);
  const runtime = stages.at(-1)!;

  it('passes the rule checker: multi-stage, base images as build arguments, pinned, slim runtime, non-root, HEALTHCHECK, no secrets', () => {
    expect(checkDockerfile(read(file))).toEqual([]);
    // The defaults are the official images a user pulls: Node.js 24 LTS on Debian bookworm, slim at run time.
    expect(globalArgs(instructions)).toEqual({
      NODE_IMAGE: expect.stringMatching(/^node:24\.\d+\.\d+-bookworm$/),
      NODE_SLIM_IMAGE: expect.stringMatching(/^node:24\.\d+\.\d+-bookworm-slim$/),
    });
    expect(runtime.written).toBe('${NODE_SLIM_IMAGE}');
    for (const stage of stages.slice(0, -1)) expect(stage.written).toBe('${NODE_IMAGE}');
    // All stages on one Node.js release, an even (LTS) major that package.json's engines admits.
    const versions = new Set(stages.map((s) => nodeRelease(s.image)));
    expect(versions.size).toBe(1);
    const [major] = [...versions][0]!.split('.').map(Number);
    const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
    expect(major! % 2).toBe(0);
    expect(major).toBeGreaterThanOrEqual(Number(/>=\s*(\d+)/.exec(engines)![1]));
  });

  it('copies every workspace manifest before `npm ci` (npm refuses a lockfile whose workspaces are missing)', () => {
    // A `manifests` stage collects them from the whole build context, so a new workspace needs no new line.
    const manifests = stages.find((s) => s.name === 'manifests')!;
    expect(args(manifests, 'COPY')).toEqual(['. /src']);
    expect(args(manifests, 'RUN')).toEqual(['node /src/deploy/collect-workspaces.mjs manifests /src /manifests']);
    const installing = stages.filter((s) => args(s, 'RUN').some((r) => /\bnpm (ci|install)\b/.test(r)));
    expect(installing.map((s) => s.name).sort()).toEqual(['build', 'deps']);
    for (const stage of installing) {
      const copies = args(stage, 'COPY');
      const install = stage.instructions.findIndex((i) => i.keyword === 'RUN' && /\bnpm (ci|install)\b/.test(i.args));
      const before = stage.instructions.slice(0, install).filter((i) => i.keyword === 'COPY');
      expect(before.map((i) => i.args)).toContain('package.json package-lock.json .npmrc ./');
      expect(before.map((i) => i.args)).toContain('--from=manifests /manifests/ ./');
      // The source tree arrives only after the install (or the install layer would be rebuilt on every change),
      // and only where something is built from it.
      const tree = stage.instructions.findIndex((i) => i.keyword === 'COPY' && i.args === '. .');
      if (stage.name === 'build') expect(tree).toBeGreaterThan(install);
      else expect(copies).not.toContain('. .');
    }
  });

  it('installs production dependencies of its own workspace only, and ships the builds it needs at run time', () => {
    const deps = stages.find((s) => s.name === 'deps')!;
    expect(args(deps, 'RUN').join(' ')).toMatch(new RegExp(`--omit=dev --workspace ${workspace}`));
    const build = stages.find((s) => s.name === 'build')!;
    expect(args(build, 'RUN').join(' ')).toContain(`node deploy/collect-workspaces.mjs builds /src ${BUILDS}`);
    const fromBuild = args(runtime, 'COPY')
      .filter((c) => c.startsWith('--from=build '))
      .map((c) => {
        const [, source, target] = c.split(/\s+/);
        return { source: source!, target: target! };
      });
    // Collector output lands at the same relative path (so node_modules/@tessera/* links resolve).
    const shipped = fromBuild
      .filter((c) => c.source.startsWith(`${BUILDS}/`))
      .map((c) => {
        expect(c.target).toBe(c.source.slice(BUILDS.length + 1));
        return c.target;
      });
    for (const w of runtimeWorkspaces(app)) {
      expect(
        shipped.some((p) => w === p || w.startsWith(`${p}/`)),
        `${w} is not shipped`,
      ).toBe(true);
    }
    // Only builds and manifests: the collector copies nothing else (tested below), and any other copy from the
    // build stage is a dist folder or the root manifest, so sources, tests and data stay out of the runtime image.
    for (const c of fromBuild.filter((x) => !x.source.startsWith(`${BUILDS}/`))) {
      expect(c.source).toMatch(/^\/src\/(package\.json|.*\/dist)$/);
    }
  });

  it('runs programs that the build produces, and declares its state volume where the configuration points', () => {
    const built = (path: string) => path.replace('/opt/tessera/', '').replace(/\/dist\/(.*)\.js$/, '/src/$1.ts');
    const entry = execForm(args(runtime, 'ENTRYPOINT').at(-1)!);
    const health = args(runtime, 'HEALTHCHECK').at(-1)!;
    const env = envOf(runtime);
    if (app === 'apps/hub') {
      expect(existsSync(join(REPO, built(entry[1]!)))).toBe(true);
      const probe = execForm(health.slice(health.indexOf('CMD') + 3));
      expect(probe[0]).toBe('node');
      expect(existsSync(join(REPO, built(probe[1]!)))).toBe(true);
      expect(args(runtime, 'VOLUME').join()).toContain(env.TESSERA_DATA_DIR);
      expect(args(runtime, 'EXPOSE').join(' ').split(/\s+/).sort()).toEqual(['8080', '8443', '8444']);
      // The console build the hub serves at /.
      expect(args(runtime, 'COPY').some((c) => /apps\/console\/dist apps\/console\/dist$/.test(c))).toBe(true);
    } else {
      expect(entry).toEqual(['/usr/local/bin/tessera-agent-entrypoint']);
      expect(args(runtime, 'COPY')).toContain(
        '--chmod=0755 deploy/agent-entrypoint.sh /usr/local/bin/tessera-agent-entrypoint',
      );
      expect(existsSync(join(REPO, built(env.TESSERA_AGENT_BIN!)))).toBe(true);
      // The entrypoint's own default is the image's path, so the image works without the variable too.
      expect(read('deploy/agent-entrypoint.sh')).toContain(`\${TESSERA_AGENT_BIN:-${env.TESSERA_AGENT_BIN}}`);
      expect(read('deploy/agent-entrypoint.sh')).toContain(`\${TESSERA_STATE_DIR:-${env.TESSERA_STATE_DIR}}`);
      expect(args(runtime, 'VOLUME').join()).toContain(env.TESSERA_STATE_DIR);
      expect(args(runtime, 'EXPOSE')).toEqual([]);
      expect(health).toMatch(/CMD \["tessera-agent", "status"\]/);
      // The native TensorFlow binding, by default at the same version as @tensorflow/tfjs (one shared tfjs-core);
      // an empty build argument leaves it out (offline builds, CI), and the agent runs on wasm.
      const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { version: string }> };
      const tfjs = lock.packages['node_modules/@tensorflow/tfjs']!.version;
      const deps = stages.find((s) => s.name === 'deps')!;
      expect(args(deps, 'ARG')).toEqual([`TFJS_NODE_VERSION=${tfjs}`]);
      const install = args(deps, 'RUN').join(' ');
      expect(install).toContain('if [ -n "$TFJS_NODE_VERSION" ]; then');
      expect(install).toContain('"dependencies.@tensorflow/tfjs-node=$TFJS_NODE_VERSION"');
      expect(install).toContain(`[ -z "$TFJS_NODE_VERSION" ] || node -e "require('@tensorflow/tfjs-node')"`);
    }
  });
});

describe('the two images', () => {
  const hub = parseDockerfile(read('deploy/hub.Dockerfile'));
  const agent = parseDockerfile(read('deploy/agent.Dockerfile'));

  it('default to the same base images (one Node.js release for the project)', () => {
    expect(globalArgs(hub)).toEqual(globalArgs(agent));
  });

  it('share the manifests and build stages instruction for instruction, so one engine builds the workspace once', () => {
    const shared = (ins: ReturnType<typeof parseDockerfile>) =>
      stagesOf(ins)
        .filter((s) => s.name === 'manifests' || s.name === 'build')
        .map((s) => s.instructions.map((i) => `${i.keyword} ${i.args}`));
    expect(shared(hub)).toHaveLength(2);
    expect(shared(agent)).toEqual(shared(hub));
  });
});

describe('deploy/collect-workspaces.mjs', () => {
  const collector = join(REPO, 'deploy/collect-workspaces.mjs');
  const run = (...argv: string[]) => spawnSync(process.execPath, [collector, ...argv], { encoding: 'utf8' });
  /** Every file under dir, relative, sorted. */
  const files = (dir: string): string[] =>
    spawnSync('find', ['.', '-type', 'f'], { cwd: dir, encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean)
      .map((f) => f.slice(2))
      .sort();

  function tree(root: string, workspacesField: unknown): void {
    const write = (path: string, text = '{}') => {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), text);
    };
    write('package.json', JSON.stringify({ name: 'root', workspaces: workspacesField }));
    write('libs/a/package.json');
    write('libs/a/src/index.ts', 'export {};');
    write('libs/a/dist/index.js', '');
    write('libs/a/dist/sub/deep.js', '');
    write('libs/a/data/records.csv', 'x');
    write('libs/no-manifest/src/index.ts', '');
    write('libs/not-a-folder', '');
    write('apps/b/package.json');
    write('apps/b/src/main.ts', '');
    write('tools/c/package.json');
    write('tools/c/dist/c.js', '');
    write('scripts/d/package.json');
  }

  it('copies only the manifests of the workspaces package.json declares (folder/* and literal folders)', () => {
    const root = mkdtempSync(join(tmpdir(), 'tessera-collect-'));
    try {
      tree(join(root, 'src'), ['libs/*', 'apps/*', 'tools/c']);
      const r = run('manifests', join(root, 'src'), join(root, 'out'));
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(files(join(root, 'out'))).toEqual(['apps/b/package.json', 'libs/a/package.json', 'tools/c/package.json']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('copies manifests and dist folders only for builds: no sources, tests or data', () => {
    const root = mkdtempSync(join(tmpdir(), 'tessera-collect-'));
    try {
      tree(join(root, 'src'), { packages: ['libs/*', 'apps/*', 'tools/c'] });
      const r = run('builds', join(root, 'src'), join(root, 'out'));
      expect(r.status).toBe(0);
      expect(files(join(root, 'out'))).toEqual([
        'apps/b/package.json',
        'libs/a/dist/index.js',
        'libs/a/dist/sub/deep.js',
        'libs/a/package.json',
        'tools/c/dist/c.js',
        'tools/c/package.json',
      ]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('collects exactly the repository workspaces (the set npm ci needs)', () => {
    const out = mkdtempSync(join(tmpdir(), 'tessera-collect-'));
    try {
      expect(run('manifests', REPO, out).status).toBe(0);
      expect(files(out)).toEqual(
        workspaces()
          .map((w) => `${w}/package.json`)
          .sort(),
      );
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it.each([
    [['libs/**'], /unsupported workspace pattern "libs\/\*\*"/],
    [['../outside/*'], /unsupported workspace pattern/],
  ])('refuses the workspace pattern %j instead of guessing', (pattern, message) => {
    const root = mkdtempSync(join(tmpdir(), 'tessera-collect-'));
    try {
      tree(join(root, 'src'), pattern);
      const r = run('manifests', join(root, 'src'), join(root, 'out'));
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(message);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('refuses an unknown mode and a missing argument', () => {
    expect(run('sources', REPO, tmpdir()).stderr).toMatch(/mode must be manifests or builds/);
    const r = run('builds');
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^usage:/);
  });
});

describe('the Dockerfile rule checker', () => {
  const good = [
    'ARG NODE_IMAGE=node:24.22.3-bookworm',
    'ARG NODE_SLIM_IMAGE=node:24.22.3-bookworm-slim',
    'FROM ${NODE_IMAGE} AS build',
    'RUN npm ci',
    'FROM $NODE_IMAGE AS deps',
    'RUN npm ci --omit=dev',
    'FROM ${NODE_SLIM_IMAGE}',
    'COPY --from=deps /app/node_modules ./node_modules',
    'USER 10001',
    'HEALTHCHECK CMD ["node", "check.js"]',
  ];
  const rulesOf = (lines: string[]) => checkDockerfile(lines.join('\n')).map((f) => f.rule);

  it('accepts a Dockerfile that follows every rule', () => {
    expect(rulesOf(good)).toEqual([]);
  });

  it.each([
    ['multi-stage', ['ARG I=node:24.22.3-bookworm-slim', 'FROM ${I}', 'USER 1', 'HEALTHCHECK CMD true']],
    ['base-arg', good.map((l) => l.replace('${NODE_IMAGE} AS build', 'node:24.22.3-bookworm AS build'))],
    ['base-arg', ['FROM scratch AS x', ...good.slice(2)]],
    ['pinned-base', good.map((l) => l.replace('=node:24.22.3-bookworm', '=node:latest'))],
    ['pinned-base', good.map((l) => l.replace('=node:24.22.3-bookworm', '=node'))],
    ['pinned-base', good.map((l) => l.replace('ARG NODE_IMAGE=node:24.22.3-bookworm', 'ARG NODE_IMAGE'))],
    ['slim-runtime', good.map((l) => l.replace('node:24.22.3-bookworm-slim', 'node:24.22.3-bookworm'))],
    ['non-root', good.filter((l) => !l.startsWith('USER'))],
    ['non-root', [...good, 'USER root']],
    ['healthcheck', good.filter((l) => !l.startsWith('HEALTHCHECK'))],
    ['healthcheck', [...good, 'HEALTHCHECK NONE']],
    ['no-secret-env', [...good, 'ENV TESSERA_JWT_SECRET=abc']],
    ['no-secret-env', [...good, 'ARG DB_PASSWORD=hunter2']],
    ['no-secret-copy', [...good, 'COPY .env /app/.env']],
    ['no-secret-copy', [...good, 'COPY certs/out/ca.key /etc/ca.key']],
    ['no-add-url', [...good, 'ADD https://example.org/x.tgz /x.tgz']],
    ['production-deps', good.map((l) => l.replace('npm ci --omit=dev', 'npm ci'))],
  ])('reports %s', (rule, lines) => {
    expect(rulesOf(lines)).toContain(rule);
  });

  it('joins continuation lines and ignores comments inside them', () => {
    const ins = parseDockerfile('RUN a \\\n  # note\n  && b\nENV A=1 \\\n    B="two words"');
    expect(ins.map((i) => [i.keyword, i.args])).toEqual([
      ['RUN', 'a && b'],
      ['ENV', 'A=1 B="two words"'],
    ]);
    expect(envOf({ image: 'x', written: 'x', name: undefined, instructions: ins })).toEqual({
      A: '1',
      B: 'two words',
    });
  });

  it('resolves FROM through the build arguments declared before the first FROM only', () => {
    const ins = parseDockerfile(
      [
        'ARG BASE="debian:12.8"',
        'ARG UNSET',
        'FROM ${BASE} AS one',
        'ARG LATER=x:1.0',
        'FROM $BASE',
        'FROM ${LATER}',
      ].join('\n'),
    );
    expect(globalArgs(ins)).toEqual({ BASE: 'debian:12.8', UNSET: undefined });
    expect(stagesOf(ins).map((s) => [s.written, s.image, s.name])).toEqual([
      ['${BASE}', 'debian:12.8', 'one'],
      ['$BASE', 'debian:12.8', undefined],
      ['${LATER}', '', undefined],
    ]);
  });
});

describe('.dockerignore', () => {
  const lines = read('.dockerignore').split('\n');

  it('keeps secrets, dependencies, builds and local state out of the build context', () => {
    for (const entry of ['.env', '**/*.pem', '**/*.key', '**/node_modules', '**/dist', '.git', '.tessera'])
      expect(lines).toContain(entry);
  });

  it('keeps what the images build from', () => {
    for (const needed of ['package.json', 'package-lock.json', '.npmrc', 'deploy/agent-entrypoint.sh']) {
      expect(lines.some((l) => l === needed || l === needed.split('/')[0])).toBe(false);
    }
  });
});

describe('shell scripts', () => {
  it.each([
    ['deploy/agent-entrypoint.sh', 'sh'],
    ['certs/make-dev-ca.sh', 'sh'],
    ['deploy/ci-images/postgres-entrypoint.sh', 'sh'],
    ['.ci/containers.sh', 'bash'],
  ])('%s passes shellcheck (%s)', (script, shell) => {
    const r = spawnSync('shellcheck', [`--shell=${shell}`, '--severity=style', join(REPO, script)], {
      encoding: 'utf8',
    });
    if (r.error) throw new Error(`shellcheck is not installed: run bash .ci/system-deps.sh (${r.error.message})`);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('deploy/prune-dev-dependencies.mjs', () => {
  it('removes exactly the packages the lockfile flags as dev, wherever they are nested', () => {
    const root = mkdtempSync(join(tmpdir(), 'tessera-prune-'));
    try {
      const lock = {
        packages: {
          '': {},
          'node_modules/kept': {},
          'node_modules/dev-only': { dev: true },
          'node_modules/kept/node_modules/nested-dev': { dev: true },
          'node_modules/optional-dev': { devOptional: true },
        },
      };
      writeFileSync(join(root, 'package-lock.json'), JSON.stringify(lock));
      for (const p of Object.keys(lock.packages).filter(Boolean)) mkdirSync(join(root, p), { recursive: true });
      const r = spawnSync(process.execPath, [join(REPO, 'deploy/prune-dev-dependencies.mjs'), root], {
        encoding: 'utf8',
      });
      expect(r.stdout).toContain('removed 2 development-only packages');
      expect(existsSync(join(root, 'node_modules/dev-only'))).toBe(false);
      expect(existsSync(join(root, 'node_modules/kept/node_modules/nested-dev'))).toBe(false);
      expect(existsSync(join(root, 'node_modules/kept'))).toBe(true);
      expect(existsSync(join(root, 'node_modules/optional-dev'))).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
