#!/usr/bin/env node
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RoundView } from '../rounds/rounds-query.service';
import type { EnrollmentIssued, SiloView } from '../silos/silos.service';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyView } from '../studies/studies.service';

/**
 * The one-shot steps of docker-compose.yml, run from the hub image against the hub's HTTP API:
 *   register  registers each hospital as a silo and writes its one-time enrollment bundle into that hospital's own
 *             volume (<TESSERA_BUNDLE_DIR>/<key>/bundle), where its agent's entrypoint reads it
 *             (TESSERA_ENROLLMENT_BUNDLE_FILE). Idempotent: enrolled silos and unread bundles are left alone.
 *   study     waits for every hospital's agent to enroll, creates and submits the Fed-Heart-Disease study, waits for
 *             each agent to approve it (by its approval policy), starts it and follows it to the end.
 * deploy/checks/agent-container.int-spec.ts runs both against a real hub.
 */

/** The four hospitals of UCI Heart Disease (libs/ml/data/heart-disease), one agent service each in compose. */
export const HOSPITALS = [
  { key: 'cleveland', name: 'Cleveland Clinic Foundation', file: 'processed.cleveland.data' },
  { key: 'hungarian', name: 'Hungarian Institute of Cardiology', file: 'processed.hungarian.data' },
  { key: 'switzerland', name: 'University Hospitals Zurich and Basel', file: 'processed.switzerland.data' },
  { key: 'va', name: 'V.A. Medical Center Long Beach', file: 'processed.va.data' },
] as const;

export interface Hospital {
  key: string;
  name: string;
}

export interface InitOptions {
  hubUrl: string;
  username: string;
  password: string;
  log: (line: string) => void;
  /** Polling interval while waiting for agents and rounds, in milliseconds. */
  pollMs?: number;
}

/** A signed-in administrator's client of the hub API; signs in again when the session token expires. */
export class HubAdminClient {
  private token: string | undefined;

  constructor(private readonly options: InitOptions) {}

  async call<T>(method: string, path: string, json?: unknown): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      if (!this.token) this.token = await this.signIn();
      const res = await fetch(`${this.options.hubUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          ...(json === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(json === undefined ? {} : { body: JSON.stringify(json) }),
      });
      if (res.status === 401 && attempt === 0) {
        this.token = undefined;
        continue;
      }
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
      return (text ? JSON.parse(text) : undefined) as T;
    }
  }

  private async signIn(): Promise<string> {
    const res = await fetch(`${this.options.hubUrl}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: this.options.username, password: this.options.password }),
    });
    if (res.status !== 200) throw new Error(`sign-in as ${this.options.username} failed: HTTP ${res.status}`);
    return ((await res.json()) as { accessToken: string }).accessToken;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Parses "uid:gid" (TESSERA_BUNDLE_OWNER): who must be able to read the bundle, i.e. the agent image's user. */
export function parseOwner(text: string): { uid: number; gid: number } {
  const m = /^(\d+):(\d+)$/.exec(text);
  if (!m) throw new Error(`TESSERA_BUNDLE_OWNER must be uid:gid, got ${text}`);
  return { uid: Number(m[1]), gid: Number(m[2]) };
}

/**
 * Registers each hospital (once) and writes its bundle to <bundleDir>/<key>/bundle, mode 0600, owned by `owner`
 * when running as root (the volume's root directory belongs to root; the agent runs as an unprivileged user).
 */
export async function registerHospitals(
  client: HubAdminClient,
  hospitals: readonly Hospital[],
  bundleDir: string,
  owner: { uid: number; gid: number } | undefined,
  log: (line: string) => void,
): Promise<Map<string, string>> {
  const existing = await client.call<SiloView[]>('GET', '/api/silos');
  const ids = new Map<string, string>();
  for (const h of hospitals) {
    const dir = join(bundleDir, h.key);
    const file = join(dir, 'bundle');
    const silo = existing.find((s) => s.name === h.name);
    let issued: EnrollmentIssued | undefined;
    if (!silo) {
      issued = await client.call<EnrollmentIssued>('POST', '/api/silos', {
        name: h.name,
        contact: `it@${h.key}.example`,
      });
    } else if (silo.certificate === null && !existsSync(file)) {
      // Registered earlier but the bundle was lost before its agent enrolled: a fresh one-time token.
      issued = await client.call<EnrollmentIssued>('POST', `/api/silos/${silo.id}/enrollment`);
    }
    ids.set(h.key, issued?.silo.id ?? silo!.id);
    if (!issued) {
      log(`${h.name}: already registered${silo!.certificate ? ' and enrolled' : ', bundle waiting in ' + file}`);
      continue;
    }
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, issued.bundleText + '\n', { mode: 0o600 });
    if (owner && process.getuid?.() === 0) chownSync(file, owner.uid, owner.gid);
    log(`${h.name}: registered as silo ${issued.silo.id}; bundle written to ${file}`);
  }
  return ids;
}

export interface DemoStudyOptions {
  rounds?: number;
  /** Give up waiting for agents to enroll or approve after this long, in milliseconds. */
  waitMs?: number;
}

/** Creates (or resumes following) the Fed-Heart-Disease study across the hospitals and waits for its end. */
export async function runDemoStudy(
  client: HubAdminClient,
  hospitals: readonly Hospital[],
  options: DemoStudyOptions & { pollMs?: number; log: (line: string) => void },
): Promise<StudyView> {
  const pollMs = options.pollMs ?? 2000;
  const deadline = Date.now() + (options.waitMs ?? 600_000);
  const log = options.log;
  const waitFor = async <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> => {
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
      await sleep(pollMs);
    }
  };

  const silos = await waitFor('every agent to enroll', async () => {
    const all = await client.call<SiloView[]>('GET', '/api/silos');
    const mine = hospitals.map((h) => all.find((s) => s.name === h.name));
    return mine.every((s) => s?.certificate) ? (mine as SiloView[]) : undefined;
  });
  log(`silos: ${silos.length} hospitals enrolled over mutual TLS`);

  const plan = heartDiseasePlan(silos.map((s) => s.id));
  if (options.rounds !== undefined) plan.training.rounds = options.rounds;
  const studies = await client.call<StudyView[]>('GET', '/api/studies');
  // Re-running compose follows the study these silos already have rather than starting another one.
  const sameSilos = (s: StudyView) => [...s.plan.silos].sort().join() === [...plan.silos].sort().join();
  let study = studies.find((s) => s.name === plan.name && sameSilos(s) && !['stopped', 'failed'].includes(s.status));
  if (!study) {
    study = await client.call<StudyView>('POST', '/api/studies', { plan });
    study = await client.call<StudyView>('POST', `/api/studies/${study.id}/submit`);
    log(`study: ${plan.name} (${study.id}) submitted, plan hash ${study.planHash}`);
  } else {
    log(`study: following ${study.name} (${study.id}), ${study.status}`);
  }
  const id = study.id;

  if (study.status === 'awaiting_approvals') {
    await waitFor("every steward's approval (the agents' approval policy)", async () => {
      const s = await client.call<StudyView>('GET', `/api/studies/${id}`);
      return s.decisions.every((d) => d.decision === 'approve') ? s : undefined;
    });
    log('approvals: every hospital approved the exact plan');
    await client.call<StudyView>('POST', `/api/studies/${id}/start`);
  }

  const shown = new Set<string>();
  for (;;) {
    const s = await client.call<StudyView>('GET', `/api/studies/${id}`);
    const rounds = await client.call<RoundView[]>('GET', `/api/studies/${id}/rounds`);
    for (const r of rounds.filter((x) => x.status !== 'open' && x.status !== 'closing')) {
      const key = `${r.number}.${r.attempt}`;
      if (shown.has(key)) continue;
      shown.add(key);
      const acc = r.summary?.evaluation.accuracy.unweighted;
      log(
        `round ${r.number} (${r.kind}) ${r.status}: ${r.summary?.reported ?? 0}/${r.participants.length} silos` +
          (acc === null || acc === undefined ? '' : `, mean accuracy ${acc.toFixed(3)}`),
      );
    }
    if (['completed', 'failed', 'stopped'].includes(s.status)) {
      log(`study ${s.status}${s.endReason ? `: ${s.endReason}` : ''}; final model sha256 ${s.currentModelHash ?? '—'}`);
      return s;
    }
    await sleep(pollMs);
  }
}

/** TESSERA_DEMO_HOSPITALS: comma-separated keys (default: all four), to run the demo on a subset. */
export function selectHospitals(keys: string | undefined): Hospital[] {
  if (!keys) return [...HOSPITALS];
  return keys.split(',').map((key) => {
    const h = HOSPITALS.find((x) => x.key === key.trim());
    if (!h)
      throw new Error(
        `TESSERA_DEMO_HOSPITALS: unknown hospital ${key} (known: ${HOSPITALS.map((x) => x.key).join(', ')})`,
      );
    return h;
  });
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

/** `node compose-init.js register|study`; configuration from the environment (see docker-compose.yml). */
export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const command = argv[0];
  const log = (line: string) => process.stdout.write(`compose-init ${command ?? ''}: ${line}\n`);
  const options: InitOptions = {
    hubUrl: env.TESSERA_HUB_URL ?? 'http://hub:8080',
    username: required(env, 'TESSERA_ADMIN_USERNAME'),
    password: required(env, 'TESSERA_ADMIN_PASSWORD'),
    log,
  };
  const client = new HubAdminClient(options);
  if (command === 'register') {
    const owner = parseOwner(env.TESSERA_BUNDLE_OWNER ?? '10001:10001');
    await registerHospitals(
      client,
      selectHospitals(env.TESSERA_DEMO_HOSPITALS),
      env.TESSERA_BUNDLE_DIR ?? '/bundles',
      owner,
      log,
    );
    return 0;
  }
  if (command === 'study') {
    const rounds = env.TESSERA_DEMO_ROUNDS ? Number(env.TESSERA_DEMO_ROUNDS) : undefined;
    const study = await runDemoStudy(client, selectHospitals(env.TESSERA_DEMO_HOSPITALS), {
      ...(rounds ? { rounds } : {}),
      log,
    });
    return study.status === 'completed' ? 0 : 1;
  }
  process.stderr.write('usage: compose-init register|study\n');
  return 2;
}

if (require.main === module) {
  main(process.argv.slice(2), process.env).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      process.stderr.write(`compose-init: ${(err as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}
