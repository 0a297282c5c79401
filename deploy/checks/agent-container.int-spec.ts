import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { EnrollmentBundle } from '@tessera/protocol';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnrollmentIssued, SiloView } from '../../apps/hub/src/silos/silos.service';
import { heartDiseasePlan } from '../../apps/hub/src/studies/heart-disease-plan';
import type { StudyView } from '../../apps/hub/src/studies/studies.service';
import { AGENT_MAIN } from '../../apps/hub/src/testing/agent-process.test-util';
import { ADMIN, api, signIn, startTestHub, type TestHub } from '../../apps/hub/src/testing/test-hub.test-util';
import { envOf, parseDockerfile, stagesOf } from './dockerfile-rules.test-util';
import { commandsInMarkdown, parseDockerRun } from './shell-commands.test-util';

/**
 * The agent exactly as its image runs it, minus Docker: the image's entrypoint script (deploy/agent-entrypoint.sh)
 * with the image's ENV, the environment and volumes of docs/silo-guide.md's `docker run` (and of the compose
 * file's agent service), the volumes laid out under a temporary root with the data made read-only, run as an
 * unprivileged user when the test runs as root. Against a real hub on PostgreSQL whose silo CA comes from
 * certs/make-dev-ca.sh, as in docker-compose.yml.
 */

const REPO = resolve(__dirname, '../..');
const ENTRYPOINT = join(REPO, 'deploy/agent-entrypoint.sh');
const COMPOSE_INIT = join(REPO, 'apps/hub/dist/deploy/compose-init.js');
const DATA = join(REPO, 'libs/ml/data/heart-disease');
const CA_PASSPHRASE = 'development passphrase, tests only';

/** nobody:nogroup when the suite runs as root (CI), so that the read-only data and the state ownership matter. */
const RUN_AS = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : undefined;

const agentImage = stagesOf(parseDockerfile(readFileSync(join(REPO, 'deploy/agent.Dockerfile'), 'utf8'))).at(-1)!;
const IMAGE_ENV = envOf(agentImage);

interface Layout {
  root: string;
  /** Maps a path inside the container to the host path standing for it. */
  host(containerPath: string): string;
}

/** A container's filesystem view: each mount target maps to a directory under root. */
function layout(root: string, mounts: Record<string, string>): Layout {
  const targets = Object.keys(mounts).sort((a, b) => b.length - a.length);
  return {
    root,
    host(containerPath: string) {
      const target = targets.find((t) => containerPath === t || containerPath.startsWith(t + '/'));
      return target === undefined ? join(root, containerPath) : mounts[target]! + containerPath.slice(target.length);
    },
  };
}

/** Container environment → host environment: values that are container paths are moved under the layout. */
function hostEnv(env: Record<string, string>, fs: Layout): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.startsWith('/') ? fs.host(v) : v]));
}

function own(path: string): void {
  if (RUN_AS) chownSync(path, RUN_AS.uid, RUN_AS.gid);
}

/** A read-only data volume holding one hospital's file, as `-v <dir>:/data:ro` would present it. */
function readOnlyData(dir: string, name: string, source: string): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name);
  copyFileSync(source, file);
  chmodSync(file, 0o444);
  chmodSync(dir, 0o555);
  return file;
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

interface Started {
  child: ChildProcess;
  output: () => string;
  exit: Promise<number | null>;
}

/**
 * Starts a program as the container would (the entrypoint is a shell script with its own #!), as the unprivileged
 * user unless `asTestUser` (steps that run as root in compose, or on the operator's machine).
 */
function start(file: string, args: string[], env: Record<string, string>, asTestUser = false): Started {
  const child = spawn(file, args, {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(asTestUser ? {} : (RUN_AS ?? {})),
  });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exit = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { child, output: () => out, exit };
}

async function finished(s: Started): Promise<{ code: number | null; out: string }> {
  const code = await s.exit;
  return { code, out: s.output() };
}

/** Polls until `probe` gives a value; on time-out the error carries `context()` (the agent's output). */
async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  context: () => string = () => '',
  ms = 60_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${context()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('the agent container, run as a process from its entrypoint', () => {
  let hub: TestHub;
  let admin: Record<string, string>;
  let caFingerprint: string;
  const roots: string[] = [];
  const running: Started[] = [];

  function tempRoot(): string {
    const root = mkdtempSync(join(tmpdir(), 'tessera-container-'));
    chmodSync(root, 0o755);
    roots.push(root);
    return root;
  }

  async function studyOf(id: string): Promise<StudyView> {
    return (await api(hub, 'GET', `/api/studies/${id}`, { headers: admin })).body as StudyView;
  }

  beforeAll(async () => {
    // The silo CA from the certs/ script, loaded through the same variables docker-compose.yml sets.
    const certs = tempRoot();
    const made = await finished(
      start(
        join(REPO, 'certs/make-dev-ca.sh'),
        ['--out', join(certs, 'out'), '--env-file', '/nonexistent'],
        { TESSERA_CA_KEY_PASSPHRASE: CA_PASSPHRASE },
        true,
      ),
    );
    expect(made.out).toContain('SHA-256 fingerprint');
    expect(made.code).toBe(0);
    caFingerprint = /fingerprint \(agents pin it\): ([0-9a-f]{64})/.exec(made.out)![1]!;
    hub = await startTestHub('server', {
      env: {
        TESSERA_CA_CERT_FILE: join(certs, 'out/ca.crt'),
        TESSERA_CA_KEY_FILE: join(certs, 'out/ca.key'),
        TESSERA_CA_KEY_PASSPHRASE: CA_PASSPHRASE,
      },
    });
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
  });

  afterAll(async () => {
    for (const r of running) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    await hub?.dispose();
    for (const root of roots) {
      // Read-only directories first need their write bit back to be removed.
      for (const d of readdirSync(root, { recursive: true, withFileTypes: true })) {
        if (d.isDirectory()) chmodSync(join(d.parentPath, d.name), 0o755);
      }
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("follows the silo guide's docker run: enrolls once, the steward approves, it trains a study to the end", async () => {
    const guide = readFileSync(join(REPO, 'docs/silo-guide.md'), 'utf8');
    const runLine = commandsInMarkdown(guide).find((c) => c.startsWith('docker run') && c.includes('TESSERA_'));
    const run = parseDockerRun(runLine!);

    const reg = await api(hub, 'POST', '/api/silos', {
      headers: admin,
      json: { name: 'Silo guide hospital', contact: 'it@guide.example' },
    });
    expect(reg.status).toBe(201);
    const issued = reg.body as EnrollmentIssued;
    // The bundle pins the CA that certs/make-dev-ca.sh made: the hub loaded it rather than making its own.
    expect((issued.bundle as EnrollmentBundle).caFingerprintSha256).toBe(caFingerprint);

    // Volumes of the guide's command, each a directory under a temporary root.
    const root = tempRoot();
    const mounts: Record<string, string> = {};
    for (const v of run.volumes) mounts[v.target] = join(root, 'volumes', v.target);
    const fs = layout(root, mounts);
    const dataVolume = run.volumes.find((v) => v.target === '/data')!;
    expect(dataVolume.readOnly).toBe(true);
    const dataFile = readOnlyData(
      fs.host('/data'),
      run.env.TESSERA_DATA_FILE!.slice('/data/'.length),
      join(DATA, 'processed.cleveland.data'),
    );
    const stateDir = fs.host(IMAGE_ENV.TESSERA_STATE_DIR!);
    mkdirSync(dirname(stateDir), { recursive: true });
    mkdirSync(stateDir, { mode: 0o700 });
    own(stateDir);
    const dataHash = sha256(dataFile);

    const env = hostEnv(
      {
        ...IMAGE_ENV,
        ...run.env,
        // The guide reads the bundle from a file with $(cat ...): the same text.
        TESSERA_ENROLLMENT_BUNDLE: issued.bundleText,
      },
      fs,
    );
    // The image's program path, pointed at the build (the one variable that differs from the image).
    env.TESSERA_AGENT_BIN = AGENT_MAIN;

    // `docker run` with no command: the image's CMD, i.e. the entrypoint with `run`.
    const cmd = agentImage.instructions.filter((i) => i.keyword === 'CMD').at(-1)!;
    const agent = start(ENTRYPOINT, JSON.parse(cmd.args) as string[], env);
    running.push(agent);
    await until(
      'the agent to enroll',
      async () => {
        if (agent.child.exitCode !== null) throw new Error(`the agent exited:\n${agent.output()}`);
        const silo = (await api(hub, 'GET', `/api/silos/${issued.silo.id}`, { headers: admin })).body as SiloView;
        return silo.certificate ? silo : undefined;
      },
      agent.output,
    );
    expect(agent.output()).toContain('enrolling with TESSERA_ENROLLMENT_BUNDLE');

    const plan = heartDiseasePlan([issued.silo.id]);
    plan.training.rounds = 2;
    const created = (await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } })).body as StudyView;
    const submitted = (await api(hub, 'POST', `/api/studies/${created.id}/submit`, { headers: admin }))
      .body as StudyView;

    // The steward, as the guide says: `docker exec tessera-agent tessera-agent studies approve <id> --plan-hash`,
    // which runs the agent program with the container's environment (no entrypoint).
    const approve = await finished(
      start(process.execPath, [AGENT_MAIN, 'studies', 'approve', created.id, '--plan-hash', submitted.planHash], env),
    );
    expect(approve.out).toContain(`hash ${submitted.planHash}`);
    expect(approve.code).toBe(0);
    expect((await api(hub, 'POST', `/api/studies/${created.id}/start`, { headers: admin })).status).toBe(200);

    const done = await until(
      'the study to end',
      async () => {
        const s = await studyOf(created.id);
        return ['completed', 'failed', 'stopped'].includes(s.status) ? s : undefined;
      },
      agent.output,
      90_000,
    );
    expect(done.status).toBe('completed');

    // `docker stop`: SIGTERM to the process the entrypoint exec'd into; it stops after the current step.
    agent.child.kill('SIGTERM');
    expect(await agent.exit).toBe(0);

    // The data was read, never written; the state is the agent user's own, the key private.
    expect(sha256(dataFile)).toBe(dataHash);
    expect(statSync(fs.host('/data')).mode & 0o222).toBe(0);
    const identity = JSON.parse(readFileSync(join(stateDir, 'identity/identity.json'), 'utf8')) as { keyFile: string };
    const key = statSync(join(stateDir, 'identity', identity.keyFile));
    expect(key.mode & 0o777).toBe(0o600);
    if (RUN_AS) expect(key.uid).toBe(RUN_AS.uid);
    expect(readdirSync(join(stateDir, 'receipts', created.id)).length).toBeGreaterThan(0);

    // A restart (same container, same bundle variable) keeps the identity: the spent token is not used again.
    const again = start(ENTRYPOINT, ['run'], env);
    running.push(again);
    await until(
      'the restarted agent to run',
      () => (/data file /.test(again.output()) ? true : undefined),
      again.output,
    );
    expect(again.output()).toContain('already enrolled; the enrollment bundle is ignored');
    again.child.kill('SIGTERM');
    expect(await again.exit).toBe(0);
  });

  it("runs docker-compose.yml's init step and a hospital's agent service: bundle through a volume, approval by policy", async () => {
    const compose = parseYaml(readFileSync(join(REPO, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: Record<
        string,
        { environment: Record<string, string>; volumes: string[]; command: string[]; user?: string }
      >;
    };
    const init = compose.services.init!;
    const service = compose.services['agent-cleveland']!;
    const demo = compose.services['demo-study']!;
    const root = tempRoot();

    // Named volumes become directories under root; bind mounts are copied there (data read-only).
    const volumes = (spec: string[]) => spec.map((v) => v.split(':')) as [string, string, string?][];
    const agentMounts: Record<string, string> = {};
    const initMounts: Record<string, string> = {};
    for (const [source, target] of volumes(init.volumes)) {
      initMounts[target] = join(root, 'volumes', source);
      mkdirSync(initMounts[target], { recursive: true });
    }
    for (const [source, target, mode] of volumes(service.volumes)) {
      const host = join(root, 'volumes', source.startsWith('./') ? target : source);
      agentMounts[target] = host;
      if (source.startsWith('./')) {
        expect(mode).toBe('ro');
        if (target.startsWith('/data/')) readOnlyData(dirname(host), target.slice('/data/'.length), join(REPO, source));
        else {
          mkdirSync(dirname(host), { recursive: true });
          copyFileSync(join(REPO, source), host);
        }
      } else {
        // A named volume: the init step's bundle volume exists already; the state volume is new and private.
        mkdirSync(dirname(host), { recursive: true });
        if (!existsSync(host)) mkdirSync(host, { mode: 0o700 });
        if (target === IMAGE_ENV.TESSERA_STATE_DIR) own(host);
      }
    }
    const initFs = layout(root, initMounts);
    const agentFs = layout(root, agentMounts);
    // compose-init writes <TESSERA_BUNDLE_DIR>/<key>/bundle; each <key> is a volume mounted below it.
    const bundleDir = join(root, 'init', init.environment.TESSERA_BUNDLE_DIR!);
    mkdirSync(bundleDir, { recursive: true });
    for (const target of Object.keys(initMounts)) symlinkSync(initFs.host(target), join(root, 'init', target));

    const adminEnv = {
      TESSERA_HUB_URL: hub.url,
      TESSERA_ADMIN_USERNAME: ADMIN.username,
      TESSERA_ADMIN_PASSWORD: ADMIN.password,
      // One hospital of the four, to keep the suite short; the compose file runs all of them.
      TESSERA_DEMO_HOSPITALS: 'cleveland',
    };
    // Root in compose (user '0:0'): the test's own user here; it hands the bundle to the agent's user.
    expect(init.user).toBe('0:0');
    const registered = await finished(
      start(
        process.execPath,
        [COMPOSE_INIT, ...init.command],
        {
          ...adminEnv,
          TESSERA_BUNDLE_DIR: bundleDir,
          TESSERA_BUNDLE_OWNER: RUN_AS ? `${RUN_AS.uid}:${RUN_AS.gid}` : init.environment.TESSERA_BUNDLE_OWNER!,
        },
        true,
      ),
    );
    expect(registered.out).toContain('Cleveland Clinic Foundation: registered');
    expect(registered.code).toBe(0);
    const bundleFile = agentFs.host(service.environment.TESSERA_ENROLLMENT_BUNDLE_FILE!);
    expect(statSync(bundleFile).mode & 0o777).toBe(0o600);

    const env = hostEnv({ ...IMAGE_ENV, ...service.environment }, agentFs);
    env.TESSERA_AGENT_BIN = AGENT_MAIN;
    const agent = start(ENTRYPOINT, ['run'], env);
    running.push(agent);

    const study = await finished(
      start(process.execPath, [COMPOSE_INIT, ...demo.command], { ...adminEnv, TESSERA_DEMO_ROUNDS: '2' }),
    );
    expect(agent.output()).toContain(`enrolling with ${bundleFile}`);
    expect(study.out).toContain('every hospital approved the exact plan');
    expect(study.out).toContain('study completed');
    expect(study.code).toBe(0);

    agent.child.kill('SIGTERM');
    expect(await agent.exit).toBe(0);
    // Approved by the compose file's policy, not by a person: the agent's own record says so.
    const approvals = readFileSync(join(agentFs.host(IMAGE_ENV.TESSERA_STATE_DIR!), 'approvals.json'), 'utf8');
    expect(approvals).toContain('policy');
  });

  it('refuses to start without an identity or a bundle, and with a state directory it cannot write', async () => {
    const root = tempRoot();
    const state = join(root, 'var/lib/tessera');
    mkdirSync(state, { recursive: true });
    own(state);
    const base = { ...IMAGE_ENV, TESSERA_AGENT_BIN: AGENT_MAIN, TESSERA_STATE_DIR: state };
    const noBundle = await finished(start(ENTRYPOINT, ['run'], base));
    expect(noBundle.code).toBe(2);
    expect(noBundle.out).toContain('not enrolled');
    expect(noBundle.out).toContain('TESSERA_ENROLLMENT_BUNDLE');

    const missingFile = await finished(
      start(ENTRYPOINT, [], { ...base, TESSERA_ENROLLMENT_BUNDLE_FILE: join(root, 'nothing-here') }),
    );
    expect(missingFile.code).toBe(2);
    expect(missingFile.out).toContain('missing or unreadable');

    // A host directory that belongs to someone else (the classic bind-mount mistake).
    if (RUN_AS) chownSync(state, 0, 0);
    chmodSync(state, 0o555);
    const readOnly = await finished(start(ENTRYPOINT, ['run'], base));
    expect(readOnly.code).toBe(2);
    expect(readOnly.out).toContain(`not writable by uid ${RUN_AS?.uid ?? process.getuid?.()}`);
  });
});
