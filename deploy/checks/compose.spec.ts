import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { HOSPITALS } from '../../apps/hub/src/deploy/compose-init';
import { agentCliText } from './agent-cli.test-util';
import { envOf, parseDockerfile, stagesOf } from './dockerfile-rules.test-util';

/**
 * docker-compose.yml checked without a Docker engine: Debian's docker-compose validates it against the Compose
 * schema and interpolates it (`docker-compose config`), then the rules the guides promise are checked on the
 * resolved configuration. Whether the containers start is agent-container.int-spec.ts's job (as processes).
 */

const REPO = resolve(__dirname, '../..');
const read = (path: string) => readFileSync(join(REPO, path), 'utf8');

interface Service {
  image: string;
  build?: { context: string; dockerfile: string };
  user?: string;
  ports?: string[];
  volumes?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
  privileged?: boolean;
  secrets?: string[];
  read_only?: boolean;
  tmpfs?: string[];
  cap_drop?: string[];
  security_opt?: string[];
}
interface Compose {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
  secrets: Record<string, { file: string }>;
}

function dockerCompose(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(
    'docker-compose',
    ['--project-directory', REPO, '-f', join(REPO, 'docker-compose.yml'), ...args],
    {
      encoding: 'utf8',
    },
  );
  if (r.error) throw new Error(`docker-compose is not installed: run bash .ci/system-deps.sh (${r.error.message})`);
  return { status: r.status, out: r.stdout + r.stderr };
}

let cached: Compose | undefined;
/** The configuration as docker-compose resolves it with .env.example's values (anchors merged, variables set). */
function resolved(): Compose {
  if (!cached) {
    const r = dockerCompose(['--env-file', join(REPO, '.env.example'), 'config']);
    expect(r.status, r.out).toBe(0);
    cached = parseYaml(r.out) as Compose;
  }
  return cached;
}

const agentStage = stagesOf(parseDockerfile(read('deploy/agent.Dockerfile'))).at(-1)!;
const STATE_DIR = envOf(agentStage).TESSERA_STATE_DIR!;
const entrypoint = read('deploy/agent-entrypoint.sh');
const agentKnown = new Set(
  [...`${entrypoint}\n${agentCliText(REPO)}`.matchAll(/\b(TESSERA_[A-Z_]+)\b/g)].map((m) => m[1]),
);

// docker-compose is a Python program: each run takes seconds on a busy two-core machine.
describe('docker-compose.yml', { timeout: 60_000 }, () => {
  it('is valid Compose and interpolates with .env.example (docker-compose config -q)', () => {
    const r = dockerCompose(['--env-file', join(REPO, '.env.example'), 'config', '-q']);
    expect(r.out).toBe('');
    expect(r.status).toBe(0);
  });

  it('refuses to start without the secrets of .env, naming the variable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-compose-'));
    try {
      writeFileSync(join(dir, 'empty.env'), '');
      const r = dockerCompose(['--env-file', join(dir, 'empty.env'), 'config', '-q']);
      expect(r.status).not.toBe(0);
      expect(r.out).toMatch(/set [A-Z_]+ in \.env/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes every secret from .env: each required variable is in .env.example, no literal secret in the file', () => {
    const text = read('docker-compose.yml');
    const required = new Set([...text.matchAll(/\$\{([A-Z_]+):\?/g)].map((m) => m[1]!));
    const example = read('.env.example');
    for (const name of required) expect(example).toMatch(new RegExp(`^${name}=.+`, 'm'));
    const raw = parseYaml(text, { merge: true }) as Compose;
    for (const [name, service] of Object.entries(raw.services)) {
      for (const [key, value] of Object.entries(service.environment ?? {})) {
        if (/PASSWORD|SECRET|PASSPHRASE|TOKEN/.test(key)) expect(value, `${name}.${key}`).toMatch(/^\$\{[A-Z_]+:\?/);
      }
    }
    expect(read('.gitignore').split('\n')).toContain('.env');
    // The CA from certs/make-dev-ca.sh's folder unless TESSERA_CA_DIR names another (CI's is temporary).
    for (const s of Object.values(raw.secrets)) {
      expect(s.file).toMatch(/^\$\{TESSERA_CA_DIR:-\.\/certs\/out\}\/ca\.(crt|key)$/);
    }
    const certs = Object.values(resolved().secrets).map((x) => x.file);
    expect(certs.sort()).toEqual([join(REPO, 'certs/out/ca.crt'), join(REPO, 'certs/out/ca.key')]);
  });

  it('starts in health order: postgres → hub → init → agents → demo-study', () => {
    const c = resolved();
    const cond = (service: string, on: string) => c.services[service]!.depends_on?.[on]?.condition;
    expect(cond('hub', 'postgres')).toBe('service_healthy');
    expect(cond('init', 'hub')).toBe('service_healthy');
    for (const h of HOSPITALS) {
      expect(cond(`agent-${h.key}`, 'init')).toBe('service_completed_successfully');
      expect(cond(`agent-${h.key}`, 'hub')).toBe('service_healthy');
      expect(cond('demo-study', `agent-${h.key}`)).toBe('service_healthy');
    }
    for (const s of ['postgres', 'hub', ...HOSPITALS.map((h) => `agent-${h.key}`)]) {
      expect(c.services[s]!.healthcheck?.test?.length, s).toBeGreaterThan(0);
    }
    // Every dependency condition is health- or completion-based, never a bare start.
    for (const service of Object.values(c.services)) {
      for (const dep of Object.values(service.depends_on ?? {})) expect(dep.condition).not.toBe('service_started');
    }
  });

  it("runs each hospital's agent with its own data read-only, its own state and bundle volumes, no port, no socket", () => {
    const c = resolved();
    const agents = Object.keys(c.services).filter((s) => s.startsWith('agent-'));
    expect(agents.sort()).toEqual(HOSPITALS.map((h) => `agent-${h.key}`).sort());
    const named = new Set(Object.keys(c.volumes));
    for (const h of HOSPITALS) {
      const agent = c.services[`agent-${h.key}`]!;
      expect(agent.build?.dockerfile).toBe('deploy/agent.Dockerfile');
      expect(agent.ports ?? []).toEqual([]);
      expect(agent.privileged ?? false).toBe(false);
      expect(JSON.stringify(agent)).not.toContain('docker.sock');
      const mounts = (agent.volumes ?? []).map((v) => {
        const [source, target, mode] = v.split(':');
        return { source: source!, target: target!, mode };
      });
      const data = mounts.find((m) => m.target === agent.environment!.TESSERA_DATA_FILE)!;
      expect(data.mode).toBe('ro');
      expect(data.source).toBe(join(REPO, 'libs/ml/data/heart-disease', h.file));
      expect(existsSync(data.source)).toBe(true);
      expect(data.target.startsWith('/data/')).toBe(true);
      const state = mounts.find((m) => m.target === STATE_DIR)!;
      expect(named).toContain(state.source);
      const bundleDir = agent.environment!.TESSERA_ENROLLMENT_BUNDLE_FILE!.replace(/\/bundle$/, '');
      const bundle = mounts.find((m) => m.target === bundleDir)!;
      expect(bundle.mode).toBe('ro');
      // init writes <TESSERA_BUNDLE_DIR>/<key>/bundle into the same named volume.
      const init = c.services.init!;
      expect((init.volumes ?? []).map((v) => v.split(':').slice(0, 2).join(':'))).toContain(
        `${bundle.source}:${init.environment!.TESSERA_BUNDLE_DIR}/${h.key}`,
      );
      // No other hospital's volume is visible to this agent.
      for (const other of HOSPITALS.filter((o) => o.key !== h.key)) {
        for (const m of mounts) expect(m.source).not.toMatch(new RegExp(`[-.]${other.key}[-.]|-${other.key}$`));
      }
      for (const name of Object.keys(agent.environment!)) expect(agentKnown).toContain(name);
    }
  });

  it("runs each agent as the image's unprivileged user on a read-only root filesystem, writable only where it must", () => {
    const c = resolved();
    const user = agentStage.instructions
      .filter((i) => i.keyword === 'USER')
      .at(-1)!
      .args.split(':')[0]!;
    expect(Number(user)).toBeGreaterThan(0);
    for (const h of HOSPITALS) {
      const agent = c.services[`agent-${h.key}`]!;
      expect(agent.user ?? user, h.key).toBe(user);
      expect(agent.read_only, h.key).toBe(true);
      // Writable: the state volume (a named volume) and a tmpfs for /tmp; nothing else of the image.
      expect(agent.tmpfs).toEqual(['/tmp']);
      expect(agent.cap_drop).toEqual(['ALL']);
      expect(agent.security_opt).toContain('no-new-privileges:true');
    }
  });

  it('runs the hub on a read-only root filesystem too, without capabilities (as the Helm chart does)', () => {
    const hub = resolved().services.hub!;
    expect(hub.read_only).toBe(true);
    expect(hub.tmpfs).toEqual(['/tmp']);
    expect(hub.cap_drop).toEqual(['ALL']);
    expect(hub.security_opt).toContain('no-new-privileges:true');
    expect(hub.volumes).toContain('hub-data:/var/lib/tessera-hub:rw');
  });

  it('takes PostgreSQL from the official image by default, or from POSTGRES_IMAGE', () => {
    const raw = parseYaml(read('docker-compose.yml'), { merge: true }) as Compose;
    expect(raw.services.postgres!.image).toMatch(/^\$\{POSTGRES_IMAGE:-postgres:16\.\d+-bookworm\}$/);
    expect(resolved().services.postgres!.image).toMatch(/^postgres:16\.\d+-bookworm$/);
  });

  it('publishes the documented ports: the console on loopback only, the silo listeners for agents', () => {
    // As written (docker-compose config normalises port entries into objects): the host side can move (a port
    // taken on the host, CI), the console stays on loopback.
    const c = parseYaml(read('docker-compose.yml'), { merge: true }) as Compose;
    const hub = c.services.hub!;
    expect([...hub.ports!].sort()).toEqual(
      [
        '127.0.0.1:${TESSERA_CONSOLE_PORT:-8080}:8080',
        '${TESSERA_SILO_PORT:-8443}:8443',
        '${TESSERA_ENROLL_PORT:-8444}:8444',
      ].sort(),
    );
    const published = Object.entries(c.services).filter(([, s]) => (s.ports ?? []).length > 0);
    expect(published.map(([n]) => n)).toEqual(['hub']);
    const guide = read('docs/operator-guide.md');
    for (const port of ['8080', '8443', '8444']) expect(guide).toContain(port);
    const env = resolved().services.hub!.environment!;
    expect(env.TESSERA_SERVER_NAMES!.split(',')).toContain('hub');
    expect(env.TESSERA_PUBLIC_SILO_URL).toBe('https://hub:8443');
  });
});
