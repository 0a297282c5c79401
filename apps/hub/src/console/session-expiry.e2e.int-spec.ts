import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, ensureConsoleBuild } from '../testing/console-build.test-util';
import { freeLoopbackPort, startTestOidcProvider, type TestOidcProvider } from '../testing/oidc-provider.test-util';
import { pageScreenshot } from '../testing/screenshots.test-util';
import { ADMIN, api, signIn as apiSignIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';

// Session expiry and OIDC sign-in end to end: Debian's Chromium drives the production console served by a real hub
// whose sessions are short (an idle timeout of 40 s, so the warning comes 10 s before; access tokens of 30 s) and
// which signs people in through a real OpenID Connect provider (node-oidc-provider) on loopback. SCREENSHOTS=1 also
// writes the warning, the sign-in-again dialog, the Accounts page with a linked sign-in and the sign-in page with the
// provider to docs/screenshots/.

const IDLE_SECONDS = 40;
const DEEP_LINK = '/audit#chain-title';

async function signInWithPassword(page: Page): Promise<void> {
  await page.getByLabel('Username').fill(ADMIN.username);
  await page.getByLabel('Password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

function pathAndHash(page: Page): string {
  const url = new URL(page.url());
  return url.pathname + url.hash;
}

describe('session expiry and OIDC sign-in in Chromium against a real hub', () => {
  let hub: TestHub;
  let provider: TestOidcProvider;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const errors: string[] = [];

  function watch(p: Page): Page {
    p.setDefaultTimeout(20_000);
    p.on('console', (m) => {
      // 401s are part of the story (a tab asking whether the browser is still signed in after the lapse).
      if (m.type() === 'error' && !/status of 401/.test(m.text())) errors.push(m.text());
    });
    p.on('pageerror', (e) => errors.push(e.message));
    return p;
  }

  beforeAll(async () => {
    await ensureConsoleBuild();
    const port = await freeLoopbackPort();
    const redirectUrl = `http://127.0.0.1:${port}/api/auth/oidc/callback`;
    provider = await startTestOidcProvider(redirectUrl);
    hub = await startTestHub('embedded', {
      env: {
        TESSERA_PORT: String(port),
        TESSERA_SESSION_TTL_SECONDS: String(IDLE_SECONDS),
        TESSERA_ACCESS_TOKEN_TTL_SECONDS: '30',
        TESSERA_OIDC_ISSUER: provider.issuer,
        TESSERA_OIDC_CLIENT_ID: provider.client.clientId,
        TESSERA_OIDC_CLIENT_SECRET: provider.client.clientSecret,
        TESSERA_OIDC_REDIRECT_URL: redirectUrl,
        TESSERA_OIDC_PROVIDER_NAME: 'Hospital Login',
      },
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = watch(await context.newPage());
  });

  afterAll(async () => {
    await browser?.close();
    await hub?.dispose();
    await provider?.close();
  });

  it('warns before an idle sign-out, and “Stay signed in” renews the session', async () => {
    await page.goto(`${hub.url}${DEEP_LINK}`);
    await signInWithPassword(page);
    await page.getByRole('heading', { name: 'Chain verification' }).waitFor();
    // No key press or click from here: the warning comes, counting down to the idle sign-out.
    const warning = page.getByRole('alert').filter({ hasText: 'Still there?' });
    await warning.waitFor({ timeout: IDLE_SECONDS * 1000 });
    await pageScreenshot(page, 'console-session-warning');
    const renewed = page.waitForResponse((r) => r.url().endsWith('/api/auth/refresh'));
    await warning.getByRole('button', { name: 'Stay signed in' }).click();
    expect((await renewed).status()).toBe(200);
    await warning.waitFor({ state: 'detached' });
    expect(await page.getByRole('dialog', { name: 'Sign in again' }).count()).toBe(0);
    expect(pathAndHash(page)).toBe(DEEP_LINK);
  });

  it('lets an idle session lapse; a reload lands on sign-in, and signing in restores the page and its #section', async () => {
    const again = page.getByRole('dialog', { name: 'Sign in again' });
    await again.waitFor({ timeout: (IDLE_SECONDS + 10) * 1000 });
    expect(await again.textContent()).toContain(`signed out after ${IDLE_SECONDS} seconds without activity`);
    await pageScreenshot(page, 'console-session-lapsed');
    // The console ended the session on the hub too: a fresh load of the tab finds no session and asks to sign in.
    await page.reload();
    await page.getByRole('heading', { name: 'Tessera console' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/sign-in');
    await signInWithPassword(page);
    await page.getByRole('heading', { name: 'Chain verification' }).waitFor();
    expect(pathAndHash(page)).toBe(DEEP_LINK);
    await expect
      .poll(() => page.evaluate<number>("document.getElementById('chain-title').getBoundingClientRect().top"))
      .toBeLessThan(300);
  });

  it('links an account in the console; its person signs in through the identity provider, back to the page asked for', async () => {
    const admin = await apiSignIn(hub, ADMIN.username, ADMIN.password);
    const created = await api(hub, 'POST', '/api/users', {
      headers: admin,
      json: { username: 'lena', password: 'a temporary password 1', role: 'auditor' },
    });
    expect(created.status).toBe(201);
    // An administrator links the account in the console, to the identity the provider gives Lena.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Accounts' }).click();
    const row = page.getByRole('row', { name: /lena/ });
    await row.getByRole('button', { name: 'Link lena’s sign-in with Hospital Login' }).click();
    const dialog = page.getByRole('dialog', { name: 'Sign-in with Hospital Login for lena' });
    await dialog.getByLabel('Subject identifier').fill('lena-sub');
    await dialog.getByRole('button', { name: 'Link', exact: true }).click();
    await row.getByText('Signs in with Hospital Login').waitFor();
    await pageScreenshot(page, 'console-accounts');

    const other = watch(await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage());
    await other.goto(`${hub.url}/silos`);
    provider.signInAs({ sub: 'lena-sub', preferredUsername: 'lena', groups: [] });
    await other.getByRole('link', { name: 'Sign in with Hospital Login' }).waitFor();
    await pageScreenshot(other, 'console-sign-in-oidc');
    await other.getByRole('link', { name: 'Sign in with Hospital Login' }).click();
    await other.getByRole('heading', { name: 'Silos' }).waitFor();
    expect(new URL(other.url()).pathname).toBe('/silos');
    await other.getByText('Read-only console').waitFor();

    // Someone the provider knows but no account is linked to: back on the sign-in page, told why.
    const stranger = watch(await (await browser.newContext()).newPage());
    await stranger.goto(`${hub.url}/studies`);
    provider.signInAs({ sub: 'stranger-sub', preferredUsername: 'stranger', groups: [] });
    await stranger.getByRole('link', { name: 'Sign in with Hospital Login' }).click();
    await stranger.getByText('is not linked to a Tessera account').waitFor();
    expect(new URL(stranger.url()).pathname).toBe('/sign-in');
  });

  it('met no script or CSP error', () => {
    expect(errors).toEqual([]);
  });
});
