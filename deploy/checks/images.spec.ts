import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkDockerfile, envOf, execForm, parseDockerfile, stagesOf, type Stage } from './dockerfile-rules.test-util';

/**
 * Static checks of deploy/hub.Dockerfile, deploy/agent.Dockerfile, .dockerignore and the shell scripts (no Docker
 * engine here: nothing is built). The images' runtime behaviour is covered by agent-container.int-spec.ts.
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

describe.each([
  { file: 'deploy/hub.Dockerfile', app: 'apps/hub', workspace: '@tessera/hub' },
  { file: 'deploy/agent.Dockerfile', app: 'apps/agent', workspace: '@tessera/agent' },
])('$file', ({ file, app, workspace }) => {
  const stages = stagesOf(parseDockerfile(read(file)));
  const runtime = stages.at(-1)!;

  it('passes the rule checker: multi-stage, pinned bases, slim runtime, non-root, HEALTHCHECK, no secrets', () => {
    expect(checkDockerfile(read(file))).toEqual([]);
    expect(runtime.image).toMatch(/^node:20\.\d+\.\d+-bookworm-slim$/);
    // All stages on one Node.js release, the one the repository requires at least.
    const versions = new Set(stages.map((s) => /^node:(\d+\.\d+\.\d+)/.exec(s.image)?.[1]));
    expect(versions.size).toBe(1);
  });

  it('copies every workspace manifest before `npm ci` (npm refuses a lockfile whose workspaces are missing)', () => {
    for (const stage of stages.filter((s) => args(s, 'RUN').some((r) => /\bnpm (ci|install)\b/.test(r)))) {
      const copied = args(stage, 'COPY').join('\n');
      expect(copied).toContain('package-lock.json');
      for (const w of workspaces()) expect(copied, `${stage.name}: ${w}/package.json`).toContain(`${w}/package.json`);
    }
  });

  it('installs production dependencies of its own workspace only, and ships the builds it needs at run time', () => {
    const deps = stages.find((s) => s.name === 'deps')!;
    expect(args(deps, 'RUN').join(' ')).toMatch(new RegExp(`--omit=dev --workspace ${workspace}`));
    const copiedFromBuild = args(runtime, 'COPY')
      .filter((c) => c.includes('--from=build'))
      .map((c) => c.split(/\s+/)[1]!.replace('/src/', ''));
    for (const w of runtimeWorkspaces(app)) {
      expect(copiedFromBuild).toContain(`${w}/dist`);
      expect(copiedFromBuild).toContain(`${w}/package.json`);
    }
    // Only builds and manifests: sources, tests and data stay out of the runtime image.
    for (const c of copiedFromBuild) expect(c).toMatch(/(\/dist|package\.json)$/);
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
      // The native TensorFlow binding, at the same version as @tensorflow/tfjs (one shared tfjs-core).
      const lock = JSON.parse(read('package-lock.json')) as { packages: Record<string, { version: string }> };
      const tfjs = lock.packages['node_modules/@tensorflow/tfjs']!.version;
      expect(
        args(
          stages.find((s) => s.name === 'deps')!,
          'RUN',
        ).join(' '),
      ).toContain(`dependencies.@tensorflow/tfjs-node=${tfjs}`);
    }
  });
});

describe('the Dockerfile rule checker', () => {
  const good = [
    'FROM node:20.20.2-bookworm AS build',
    'RUN npm ci',
    'FROM node:20.20.2-bookworm AS deps',
    'RUN npm ci --omit=dev',
    'FROM node:20.20.2-bookworm-slim',
    'COPY --from=deps /app/node_modules ./node_modules',
    'USER 10001',
    'HEALTHCHECK CMD ["node", "check.js"]',
  ];
  const rulesOf = (lines: string[]) => checkDockerfile(lines.join('\n')).map((f) => f.rule);

  it('accepts a Dockerfile that follows every rule', () => {
    expect(rulesOf(good)).toEqual([]);
  });

  it.each([
    ['multi-stage', ['FROM node:20.20.2-bookworm-slim', 'USER 1', 'HEALTHCHECK CMD true']],
    ['pinned-base', good.map((l) => l.replace('node:20.20.2-bookworm AS build', 'node:latest AS build'))],
    ['pinned-base', good.map((l) => l.replace('node:20.20.2-bookworm AS deps', 'node AS deps'))],
    ['slim-runtime', good.map((l) => l.replace('node:20.20.2-bookworm-slim', 'node:20.20.2-bookworm'))],
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
    expect(envOf({ image: 'x', name: undefined, instructions: ins })).toEqual({ A: '1', B: 'two words' });
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
  it.each(['deploy/agent-entrypoint.sh', 'certs/make-dev-ca.sh'])('%s passes shellcheck (POSIX sh)', (script) => {
    const r = spawnSync('shellcheck', ['--shell=sh', '--severity=style', join(REPO, script)], { encoding: 'utf8' });
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
