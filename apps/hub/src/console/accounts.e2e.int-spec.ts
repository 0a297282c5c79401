import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { CHROMIUM, ensureConsoleBuild } from '../testing/console-build.test-util';

// Accounts and sessions end to end: Debian's Chromium drives the production console served by a real hub whose
// sessions are short (an idle timeout of 40 s, access tokens of 30 s), so renewal, the idle warning and the lapse
// happen within the test. Two browser contexts are two people on two machines; pages of one context are tabs.

const IDLE_SECONDS = 40;

async function signIn(page: Page, username: string, password: string): Promise<void> {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

describe('accounts and sessions in Chromium against a real hub', () => {
  let hub: TestHub;
  let browser: Browser;
  let adminBrowser: BrowserContext;
  let bobBrowser: BrowserContext;
  let admin: Page;
  let bob: Page;
  let bobPassword = '';
  const errors: string[] = [];

  function watch(page: Page): Page {
    page.setDefaultTimeout(20_000);
    page.on('console', (m) => {
      // 401s are part of the story here (a tab asking whether the browser is signed in, a revoked session).
      if (m.type() === 'error' && !/status of 401/.test(m.text())) errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    return page;
  }

  beforeAll(async () => {
    await ensureConsoleBuild();
    hub = await startTestHub('embedded', {
      env: { TESSERA_SESSION_TTL_SECONDS: String(IDLE_SECONDS), TESSERA_ACCESS_TOKEN_TTL_SECONDS: '30' },
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    });
    adminBrowser = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    bobBrowser = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    admin = watch(await adminBrowser.newPage());
    bob = watch(await bobBrowser.newPage());
  });

  afterAll(async () => {
    await browser?.close();
    await hub?.dispose();
  });

  it('keeps a deep link’s #section through sign-in, and scrolls to it', async () => {
    await admin.goto(`${hub.url}/audit#chain-title`);
    await admin.getByRole('heading', { name: 'Tessera console' }).waitFor();
    await signIn(admin, ADMIN.username, ADMIN.password);
    await admin.getByRole('heading', { name: 'Chain verification' }).waitFor();
    expect(new URL(admin.url()).pathname + new URL(admin.url()).hash).toBe('/audit#chain-title');
    await expect
      .poll(() => admin.evaluate<number>("document.getElementById('chain-title').getBoundingClientRect().top"))
      .toBeLessThan(300);
    expect(await admin.evaluate<number>('window.scrollY')).toBeGreaterThan(0);
  });

  it('adds a person whose temporary password must be replaced at the first sign-in', async () => {
    await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Accounts' }).click();
    await admin.getByRole('button', { name: 'Add a person' }).click();
    await admin.getByLabel('Username').fill('Bob');
    await admin.getByLabel('Role').selectOption('auditor');
    await admin.getByRole('button', { name: 'Add and show the temporary password' }).click();
    const temporary = await admin.getByLabel('Temporary password').inputValue();
    expect(temporary).toMatch(/^[a-z2-9]{4}(-[a-z2-9]{4}){3}$/);
    await admin.getByRole('button', { name: 'I have handed it over' }).click();
    await admin.getByRole('button', { name: 'Close it' }).click();
    await admin.getByRole('row', { name: /Bob/ }).getByText('Temporary password').waitFor();

    // Another machine. The name is matched whatever its case.
    await bob.goto(`${hub.url}/`);
    await signIn(bob, 'bob', temporary);
    await bob.getByRole('heading', { name: 'Choose your password' }).waitFor();
    bobPassword = 'bob’s own long password';
    await bob.getByLabel('Temporary password').fill(temporary);
    await bob.getByLabel('New password', { exact: true }).fill(bobPassword);
    await bob.getByLabel('New password, again').fill(bobPassword);
    await bob.getByRole('button', { name: 'Change password' }).click();
    await bob.getByRole('heading', { name: 'Studies' }).waitFor();
    await bob.getByText('Read-only console').waitFor();

    await admin.reload();
    await admin.getByRole('row', { name: /Bob/ }).getByText('Active').waitFor();
  });

  // Before Bob's console has been idle for IDLE_SECONDS: the refusal, not the idle timeout, must end it.
  it('ends a disabled person’s open console at once', async () => {
    await admin.getByRole('row', { name: /Bob/ }).getByRole('button', { name: 'Disable' }).click();
    await admin.getByRole('dialog').getByRole('button', { name: 'Disable' }).click();
    await admin.getByRole('row', { name: /Bob/ }).getByText('Disabled').waitFor();

    await bob.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Silos' }).click();
    const again = bob.getByRole('dialog', { name: 'Sign in again' });
    await again.waitFor();
    await again.getByLabel('Password').fill(bobPassword);
    await again.getByRole('button', { name: 'Sign in and carry on' }).click();
    await again.getByRole('alert').getByText('Sign-in failed').waitFor();
  });

  it('renews the session in the background, warns before an idle sign-out, and keeps a half-written form', async () => {
    await admin.getByRole('button', { name: 'Add a person' }).click();
    await admin.getByLabel('Username').fill('half-written');
    // The access token (30 s) is renewed before it expires, with the refresh cookie.
    const renewed = await admin.waitForResponse((r) => r.url().endsWith('/api/auth/refresh'), { timeout: 35_000 });
    expect(renewed.status()).toBe(200);
    // No key press or click since: the warning, then the lapse.
    const warning = admin.getByRole('alert').filter({ hasText: 'Still there?' });
    await warning.waitFor({ timeout: IDLE_SECONDS * 1000 });
    expect(await warning.textContent()).toContain('signed out for inactivity');
    const again = admin.getByRole('dialog', { name: 'Sign in again' });
    await again.waitFor({ timeout: 20_000 });
    expect(await again.textContent()).toContain(`signed out after ${IDLE_SECONDS} seconds without activity`);
    expect(await admin.locator('main#main').isHidden()).toBe(true);
    await again.getByLabel('Password').fill(ADMIN.password);
    await again.getByRole('button', { name: 'Sign in and carry on' }).click();
    await again.waitFor({ state: 'detached' });
    expect(await admin.getByLabel('Username').inputValue()).toBe('half-written');
    await admin.getByRole('button', { name: 'Cancel' }).click();
  });

  it('shares the sign-in with a new tab, and a sign-out with every tab', async () => {
    const second = watch(await adminBrowser.newPage());
    await second.goto(`${hub.url}/silos`);
    await second.getByRole('heading', { name: 'Silos' }).waitFor();
    expect(new URL(second.url()).pathname).toBe('/silos');

    await admin.getByRole('button', { name: 'Sign out' }).click();
    await admin.getByRole('heading', { name: 'Tessera console' }).waitFor();
    await second.getByRole('heading', { name: 'Tessera console' }).waitFor();
    await second.reload();
    await second.getByRole('heading', { name: 'Tessera console' }).waitFor();
    await second.close();
  });

  it('met no script or CSP error', () => {
    expect(errors).toEqual([]);
  });
});
