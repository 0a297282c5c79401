import { spawnSync, type ChildProcess } from 'node:child_process';
import { hubEnv, startHubProcess } from '../testing/hub-process.test-util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const HUB_DIR = resolve(__dirname, '../..');
const MAIN = join(HUB_DIR, 'dist/main.js');

const CLI = join(HUB_DIR, 'dist/cli/tessera-hub.js');

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tessera-proc-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function baseEnv(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return hubEnv(dataDir, extra);
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((res) => child.once('exit', (code) => res(code)));
}

describe('the hub as a process', () => {
  it('refuses to start on invalid configuration, naming the variable, with exit code 2', () => {
    const r = spawnSync(process.execPath, [MAIN], {
      env: baseEnv(tempDir(), { TESSERA_PORT: 'not-a-port', TESSERA_JWT_SECRET: 'tooshort' }),
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('TESSERA_PORT');
    expect(r.stderr).toContain('TESSERA_JWT_SECRET');
    expect(r.stderr).not.toContain('tooshort');
  });

  it('finishes an in-flight request on SIGTERM, then exits 0 and releases the database', async () => {
    const dataDir = tempDir();
    const env = baseEnv(dataDir, { TESSERA_ADMIN_USERNAME: 'admin', TESSERA_ADMIN_PASSWORD: 'first admin password' });
    const hub = await startHubProcess(env);
    const exited = exitOf(hub.child);
    // argon2 makes a login take tens of milliseconds: long enough to be in flight when the signal lands.
    const login = fetch(`${hub.url}/api/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: 'first admin password' }),
    });
    await new Promise((r) => setTimeout(r, 5));
    hub.child.kill('SIGTERM');
    expect((await login).status).toBe(200);
    expect(await exited).toBe(0);
    expect(hub.output()).toContain('SIGTERM received');

    // The embedded database was released: the CLI can open it now.
    const created = spawnSync(
      process.execPath,
      [CLI, 'admin', 'create', '--username', 'second', '--role', 'auditor', '--password-stdin'],
      {
        env: baseEnv(dataDir),
        input: 'second password long\n',
        encoding: 'utf8',
      },
    );
    expect(created.stderr).toBe('');
    expect(created.status).toBe(0);
    expect(created.stdout).toMatch(/created auditor "second"/);
  });

  it('creates the first administrator from the CLI, and refuses while a hub holds the embedded database', async () => {
    const dataDir = tempDir();
    const env = baseEnv(dataDir, { ADMIN_PW: 'cli admin password' });
    const made = spawnSync(
      process.execPath,
      [CLI, 'admin', 'create', '--username', 'root', '--password-env', 'ADMIN_PW'],
      {
        env,
        encoding: 'utf8',
      },
    );
    expect(made.status).toBe(0);
    expect(made.stdout).toContain('created admin "root"');

    const noPassword = spawnSync(process.execPath, [CLI, 'admin', 'create', '--username', 'x'], {
      env,
      encoding: 'utf8',
    });
    expect(noPassword.status).toBe(2);
    expect(noPassword.stderr).toContain('--password-env');

    const hub = await startHubProcess(env);
    try {
      const login = await fetch(`${hub.url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'root', password: 'cli admin password' }),
      });
      expect(login.status).toBe(200);
      const busy = spawnSync(
        process.execPath,
        [CLI, 'admin', 'create', '--username', 'y', '--password-env', 'ADMIN_PW'],
        {
          env,
          encoding: 'utf8',
        },
      );
      expect(busy.status).toBe(3);
      expect(busy.stderr).toContain('in use by process');
      // It says how to add the person without stopping the hub.
      expect(busy.stderr).toContain('in the console (Accounts');
      expect(busy.stderr).toContain('POST /api/users');
    } finally {
      const exited = exitOf(hub.child);
      hub.child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });
});
