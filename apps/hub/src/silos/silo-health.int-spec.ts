import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { SiloDetailView } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { AGENT_MAIN, runAgent } from '../testing/agent-process.test-util';
import {
  heartFile,
  HubApiClient,
  hubEnv,
  processTestBed,
  startHubProcess,
  until,
} from '../testing/hub-process.test-util';
import { createServerDatabase } from '../testing/test-hub.test-util';
import type { EnrollmentIssued } from './silos.service';

/** The agent's release, which it reports in x-tessera-agent (read as a file: apps do not import each other). */
const agentPackage = JSON.parse(readFileSync(resolve(__dirname, '../../../agent/package.json'), 'utf8')) as {
  version: string;
};
const POLL_WAIT_SECONDS = 5;

/**
 * Silo health from facts, with a real hub process and a real agent process over mutual TLS: the agent's version and
 * platform, online while its long poll is open, suspended → it waits → resumed → it carries on by itself, killed →
 * offline within the long-poll interval and its grace, what was seen surviving a hub restart, and a revoked
 * certificate named as such.
 */
describe('silo health (hub and agent processes, server database)', () => {
  const bed = processTestBed('tessera-silo-health-');

  it('tells the truth about an agent that polls, is suspended and resumed, and is killed', async () => {
    const db = await createServerDatabase();
    bed.cleanups.push(db.drop);
    const env = hubEnv(join(bed.root, 'hub'), {
      DATABASE_URL: db.url,
      TESSERA_ADMIN_USERNAME: 'admin',
      TESSERA_ADMIN_PASSWORD: 'silo health admin password',
    });
    bed.hub = await startHubProcess(env);
    const api = new HubApiClient(bed.hub.url, 'admin', 'silo health admin password');
    await api.signIn();
    const issued = await api.call<EnrollmentIssued>('POST', '/api/silos', {
      name: 'Health',
      contact: 'it@example.org',
    });
    const id = issued.silo.id;
    const view = () => api.call<SiloDetailView>('GET', `/api/silos/${id}`);
    const agentEnv = {
      TESSERA_STATE_DIR: join(bed.root, 'agent'),
      TESSERA_DATA_FILE: heartFile('processed.cleveland.data'),
    };
    expect((await runAgent(['enroll', '--bundle', issued.bundleText], agentEnv)).code).toBe(0);

    // The enrollment listener saw the agent, which said what it runs.
    const software = { version: agentPackage.version, platform: `${process.platform}-${process.arch}` };
    let v = await view();
    expect(v.agent?.lastSeen.enroll).not.toBeNull();
    expect(v.agent?.software).toMatchObject(software);

    const child = spawn(process.execPath, [AGENT_MAIN, 'run', '--poll-wait', String(POLL_WAIT_SECONDS)], {
      env: { PATH: process.env.PATH, ...agentEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    bed.agents.push(child);
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));

    // Online: its long poll is open at the hub.
    await until(
      'the agent to hold a long poll open',
      async () => ((await view()).agent?.openRequests ?? 0) > 0,
      60_000,
    );
    v = await view();
    expect(v.agent?.software).toMatchObject(software);
    expect(v.agent?.task).toBeNull();

    // Suspended: the agent says so once, does not exit, and does not advise re-enrolling.
    await api.call('POST', `/api/silos/${id}/suspend`, { reason: 'data export audit' });
    await until('the agent to report the suspension', () => out.includes('SUSPENDED'), 30_000);
    expect(out).toMatch(
      /SUSPENDED by the hub's administrator \(reason given: data export audit\); waiting to be resumed/,
    );
    expect(out).not.toMatch(/STOPPING|Re-enroll/);
    // Its refused requests still show it alive.
    const suspendedSeen = (await view()).agent!.lastSeen.silo!;
    await until(
      'a refused request of the suspended agent to be seen',
      async () => Date.parse((await view()).agent!.lastSeen.silo!) > Date.parse(suspendedSeen),
      40_000,
    );
    expect(child.exitCode).toBeNull();

    // Resumed: it carries on by itself and polls again.
    await api.call('POST', `/api/silos/${id}/resume`);
    await until('the agent to carry on', () => out.includes('resumed): carrying on'), 45_000);
    await until('the agent to poll again', async () => ((await view()).agent?.openRequests ?? 0) > 0, 30_000);

    // Killed in the middle of a long poll: offline within the long-poll interval and its grace.
    const killedAt = Date.now();
    child.kill('SIGKILL');
    await until(
      'the hub to see the poll connection drop',
      async () => (await view()).agent?.openRequests === 0,
      10_000,
    );
    const droppedAfterMs = Date.now() - killedAt;
    v = await view();
    // The window is the agent's own poll wait plus the reconnect grace, not the hub's longest wait.
    expect(v.agent!.offlineAfterSeconds).toBe(POLL_WAIT_SECONDS + 10);
    const offlineAfterMs = v.agent!.offlineAfterSeconds * 1000;
    // The last request seen is the poll that ended with the agent, not one from 30 s before.
    expect(Date.parse(v.agent!.lastSeen.silo!)).toBeGreaterThanOrEqual(killedAt - 1_000);
    let offlineAt = 0;
    await until(
      'the agent to count as offline',
      async () => {
        const a = (await view()).agent!;
        const offline =
          a.openRequests === 0 && Date.parse(a.observedAt) - Date.parse(a.lastSeen.silo!) > offlineAfterMs;
        if (offline) offlineAt = Date.now();
        return offline;
      },
      offlineAfterMs + 15_000,
    );
    const offlineAfterKillMs = offlineAt - killedAt;
    console.log(
      `silo health: poll connection dropped ${droppedAfterMs} ms after the kill; offline ${offlineAfterKillMs} ms after it (window ${offlineAfterMs} ms)`,
    );
    expect(offlineAfterKillMs).toBeLessThanOrEqual(offlineAfterMs + 2_000);

    // What the hub saw survives its restart (written at shutdown).
    const before = (await view()).agent!;
    bed.hub.child.kill('SIGTERM');
    await bed.hub.exited;
    bed.hub = await startHubProcess(env);
    await api.signIn(bed.hub.url);
    const after = (await view()).agent!;
    expect(after.lastSeen).toEqual(before.lastSeen);
    expect(after.software).toEqual(before.software);
    expect(after.openRequests).toBe(0);

    // A revoked certificate is named, not "no certificate".
    v = await view();
    const serial = v.certificate!.serial;
    await api.call('POST', `/api/silos/${id}/certificates/${serial}/revoke`, { reason: 'key on a stolen laptop' });
    v = await view();
    expect(v.certificate).toBeNull();
    expect(v.latestCertificate).toMatchObject({
      serial,
      status: 'revoked',
      revocationReason: 'key on a stolen laptop',
    });
  }, 300_000);
});
