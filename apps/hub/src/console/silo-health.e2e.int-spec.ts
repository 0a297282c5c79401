import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnrollmentIssued } from '../silos/silos.service';
import { AGENT_MAIN, runAgent } from '../testing/agent-process.test-util';
import { heartFile } from '../testing/hub-process.test-util';
import { ADMIN, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { CHROMIUM, ensureConsoleBuild } from '../testing/console-build.test-util';

// Silo health in the production console, in Debian's Chromium, against a real hub and a real agent process: the
// list and the detail page say online with the agent's version, suspended and waiting, online again once resumed,
// offline within the poll window once the agent is killed, and revoked, never "enrolled · online", once its
// certificate is revoked. SCREENSHOTS=1 also writes docs/screenshots/console-silo-health.png.

/** The agent's release, which it reports in x-tessera-agent (read as a file: apps do not import each other). */
const agentPackage = JSON.parse(readFileSync(resolve(__dirname, '../../../agent/package.json'), 'utf8')) as {
  version: string;
};
const REPO = resolve(__dirname, '../../../..');
const SHOTS = process.env.SCREENSHOTS === '1' ? join(REPO, 'docs/screenshots') : null;
const POLL_WAIT_SECONDS = 3;

describe('silo health in Chromium against a real hub and agent', () => {
  let hub: TestHub;
  let browser: Browser;
  let page: Page;
  let agent: ChildProcess | undefined;
  let agentOutput = '';
  const root = mkdtempSync(join(tmpdir(), 'tessera-silo-health-e2e-'));
  const errors: string[] = [];
  const agentEnv = { TESSERA_STATE_DIR: join(root, 'agent'), TESSERA_DATA_FILE: heartFile('processed.va.data') };

  beforeAll(async () => {
    await ensureConsoleBuild();
    hub = await startTestHub('embedded');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    });
    page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    page.setDefaultTimeout(20_000);
    page.on('console', (m) => {
      // The console asks whether the browser is signed in before the sign-in: that 401 is expected.
      if (m.type() === 'error' && !/status of 401/.test(m.text())) errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
  });

  afterAll(async () => {
    if (agent?.exitCode === null) agent.kill('SIGKILL');
    await browser?.close();
    await hub?.dispose();
    rmSync(root, { recursive: true, force: true });
  });

  const row = (): Locator => page.getByRole('row', { name: /Ward 7/ });
  const agentFact = (): Locator => page.locator('dt', { hasText: /^Agent$/ }).locator('xpath=following-sibling::dd');

  it('lists the silo online with its version and platform while its agent polls', async () => {
    const headers = await signIn(hub, ADMIN.username, ADMIN.password);
    const issued = (
      await api(hub, 'POST', '/api/silos', { headers, json: { name: 'Ward 7', contact: 'it@example.org' } })
    ).body as EnrollmentIssued;
    expect((await runAgent(['enroll', '--bundle', issued.bundleText], agentEnv)).code).toBe(0);
    agent = spawn(process.execPath, [AGENT_MAIN, 'run', '--poll-wait', String(POLL_WAIT_SECONDS)], {
      env: { PATH: process.env.PATH, ...agentEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    agent.stdout!.on('data', (c: Buffer) => (agentOutput += c.toString()));
    agent.stderr!.on('data', (c: Buffer) => (agentOutput += c.toString()));

    await page.goto(`${hub.url}/silos`);
    await page.getByLabel('Username').fill(ADMIN.username);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Silos' }).waitFor();
    await expect.poll(() => row().innerText(), { timeout: 30_000 }).toMatch(/online · waiting for work/);
    const text = await row().innerText();
    expect(text).toMatch(/enrolled/);
    expect(text).toContain(`${agentPackage.version} · ${process.platform}-${process.arch}`);
  });

  it('shows a suspended silo whose agent waits, and the agent carrying on once resumed', async () => {
    await row().getByRole('link', { name: 'Ward 7' }).click();
    await page.getByRole('heading', { name: /Ward 7/ }).waitFor();
    expect(await page.getByText('silo listener (mutual TLS):').innerText()).toMatch(/just now|ago/);
    await page.getByRole('button', { name: 'Suspend' }).click();
    await page.getByRole('dialog').getByLabel('Reason').fill('data export audit');
    await page.getByRole('button', { name: 'Suspend the silo' }).click();
    await expect.poll(() => agentOutput, { timeout: 30_000 }).toMatch(/SUSPENDED by the hub's administrator/);
    await expect.poll(() => agentFact().innerText(), { timeout: 30_000 }).toMatch(/online · waiting to be resumed/);
    expect(await page.getByRole('heading', { name: /Ward 7/ }).innerText()).toMatch(/suspended/);
    expect(agent!.exitCode).toBeNull();
    if (SHOTS) {
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: join(SHOTS, 'console-silo-health.png'), fullPage: true });
    }

    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Resume' }).click();
    await expect.poll(() => agentOutput, { timeout: 45_000 }).toMatch(/resumed\): carrying on/);
    await expect.poll(() => agentFact().innerText(), { timeout: 30_000 }).toMatch(/online · waiting for work/);
    expect(await page.getByRole('heading', { name: /Ward 7/ }).innerText()).toMatch(/enrolled/);
  });

  it('reads offline within the poll window once the agent is killed', async () => {
    const killedAt = Date.now();
    agent!.kill('SIGKILL');
    // The window is the poll wait + 10 s; the page refreshes every 5 s.
    await expect
      .poll(() => agentFact().innerText(), { timeout: (POLL_WAIT_SECONDS + 10 + 5 + 5) * 1000, interval: 500 })
      .toMatch(/^offline/);
    const seconds = (Date.now() - killedAt) / 1000;
    console.log(`silo health e2e: the detail page read offline ${seconds.toFixed(1)} s after the kill`);
    expect(seconds).toBeLessThanOrEqual(POLL_WAIT_SECONDS + 10 + 5 + 2);
  });

  it('lets a revoked certificate win: the silo reads revoked and refused, never enrolled or online', async () => {
    await page
      .getByRole('row', { name: /active/ })
      .getByRole('button', { name: 'Revoke' })
      .click();
    await page.getByRole('dialog').getByLabel('Reason').fill('key on a stolen laptop');
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await expect.poll(() => agentFact().innerText()).toMatch(/refused: certificate revoked/);
    const heading = await page.getByRole('heading', { name: /Ward 7/ }).innerText();
    expect(heading).toMatch(/revoked/);
    expect(heading).not.toMatch(/enrolled/);
    await page.getByText(/Its certificate was revoked \(key on a stolen laptop\)/).waitFor();
    await page.getByRole('link', { name: '← Silos' }).click();
    await expect.poll(() => row().innerText()).toMatch(/revoked/);
    expect(await row().innerText()).not.toMatch(/enrolled|online|no certificate/);
    expect(errors).toEqual([]);
  });
});
