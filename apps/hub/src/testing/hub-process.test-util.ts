import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll } from 'vitest';

export const HUB_MAIN = resolve(__dirname, '../../dist/main.js');

export interface HubProcess {
  child: ChildProcess;
  url: string;
  output(): string;
  exited: Promise<number | null>;
}

/** Starts the built hub as its own process and resolves once it logs the address it listens on. */
export function startHubProcess(env: NodeJS.ProcessEnv): Promise<HubProcess> {
  const child = spawn(process.execPath, [HUB_MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error(`hub did not start:\n${out}`)), 60_000);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /hub listening on (http:\/\/[^"\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        done({ child, url: m[1]!, output: () => out, exited });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      fail(new Error(`hub exited with ${code}:\n${out}`));
    });
  });
}

/** The environment of a hub process on loopback with OS-chosen ports unless given. */
export function hubEnv(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    TESSERA_DATA_DIR: dataDir,
    TESSERA_PORT: '0',
    TESSERA_SILO_PORT: '0',
    TESSERA_ENROLL_PORT: '0',
    ...extra,
  };
}

export const HEART_DATA = resolve(__dirname, '../../../../libs/ml/data/heart-disease');
export const heartFile = (name: string) => join(HEART_DATA, name);

/** A person's API client for a hub process: signs in, calls with the bearer token, throws on any non-2xx answer. */
export class HubApiClient {
  private token = '';

  constructor(
    public baseUrl: string,
    private readonly username: string,
    private readonly password: string,
  ) {}

  /** Signs in (again), e.g. after the hub restarted on another address. */
  async signIn(baseUrl: string = this.baseUrl): Promise<void> {
    this.baseUrl = baseUrl;
    const res = await fetch(`${baseUrl}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: this.username, password: this.password }),
    });
    if (!res.ok) throw new Error(`sign-in: ${res.status} ${await res.text()}`);
    this.token = ((await res.json()) as { accessToken: string }).accessToken;
  }

  /** One call; when the access token (5 minutes) has expired meanwhile, signs in again and calls once more. */
  async call<T>(method: string, path: string, json?: unknown): Promise<T> {
    const attempt = () =>
      fetch(`${this.baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(json ? { 'content-type': 'application/json' } : {}) },
        ...(json ? { body: JSON.stringify(json) } : {}),
      });
    let res = await attempt();
    if (res.status === 401 && this.token) {
      await this.signIn();
      res = await attempt();
    }
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  }
}

/** Polls `probe` every 300 ms until it holds, or fails naming `what` after `timeoutMs`. */
export async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** What a process-level test starts, all killed or removed after its suite. */
export interface ProcessTestBed {
  /** A fresh temporary directory for the hub's and the agents' state. */
  readonly root: string;
  /** Agent processes: killed at the end if still running. */
  readonly agents: ChildProcess[];
  /** The hub process (the latest one, after restarts): killed at the end if still running. */
  hub?: HubProcess;
  /** Run after the processes are gone, e.g. dropping the test database. */
  readonly cleanups: (() => Promise<void>)[];
}

/** Call inside a describe: a test bed whose processes, cleanups and directory are disposed of in afterAll. */
export function processTestBed(prefix: string): ProcessTestBed {
  const bed: ProcessTestBed = { root: mkdtempSync(join(tmpdir(), prefix)), agents: [], cleanups: [] };
  afterAll(async () => {
    for (const a of bed.agents) if (a.exitCode === null) a.kill('SIGKILL');
    if (bed.hub?.child.exitCode === null) bed.hub.child.kill('SIGKILL');
    for (const cleanup of bed.cleanups) await cleanup();
    rmSync(bed.root, { recursive: true, force: true });
  });
  return bed;
}
