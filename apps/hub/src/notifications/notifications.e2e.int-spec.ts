import { mkdirSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { verifyWebhook, WEBHOOK_HEADERS } from './webhook-signature.util';
import { CHROMIUM, ensureConsoleBuild } from '../testing/console-build.test-util';

// The Notifications page end to end: Debian's Chromium drives the production console served by a real hub; an
// administrator adds an endpoint at a receiver on 127.0.0.1, keeps the secret the page shows once, sends a test
// event, and reads its delivery in the log; the receiver checks the signature with that secret.

const REPO = resolve(__dirname, '../../../..');
/** SCREENSHOTS=1 (npm run screenshots) also writes the page's picture to docs/screenshots/. */
const SHOTS = process.env.SCREENSHOTS === '1' ? join(REPO, 'docs/screenshots') : null;

describe('the Notifications page in Chromium against a real hub', () => {
  let hub: TestHub;
  let browser: Browser;
  let page: Page;
  let receiver: Server;
  let receiverUrl = '';
  const received: { headers: IncomingHttpHeaders; body: string; atSeconds: number }[] = [];
  const errors: string[] = [];

  beforeAll(async () => {
    await ensureConsoleBuild();
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          atSeconds: Date.now() / 1000,
        });
        res.statusCode = 204;
        res.end();
      });
    });
    await new Promise<void>((done) => receiver.listen(0, '127.0.0.1', done));
    receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/tessera`;
    hub = await startTestHub('embedded', {
      env: { TESSERA_ENROLL_PORT: '0', TESSERA_WEBHOOK_ALLOW_LOOPBACK_HTTP: 'true' },
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(20_000);
    page.on('console', (m) => {
      // A 401 is the console asking, at the first load, whether this browser is already signed in.
      if (m.type() === 'error' && !/status of 401/.test(m.text())) errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
  });

  afterAll(async () => {
    await browser?.close();
    await hub?.dispose();
    await new Promise((done) => (receiver ? receiver.close(done) : done(undefined)));
  });

  it('adds an endpoint, shows its secret once, sends a signed test event and logs its delivery', async () => {
    await page.goto(`${hub.url}/`);
    await page.getByLabel('Username').fill(ADMIN.username);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Notifications' }).click();
    await page.getByRole('heading', { name: 'Notifications', level: 1 }).waitFor();
    await page.getByText('No endpoint yet').waitFor();

    await page.getByRole('button', { name: 'Add an endpoint' }).click();
    await page.getByLabel('URL').fill('ftp://files.example.org/drop');
    await page.getByRole('button', { name: 'Add and show the secret' }).click();
    await page.getByText('The URL must start with https://').waitFor();
    await page.getByLabel('URL').fill(receiverUrl);
    await page.getByLabel('Description (optional)').fill('on-call bridge');
    await page.getByLabel(/A study started/).check();
    await page.getByRole('button', { name: 'Add and show the secret' }).click();

    const secret = await page.getByRole('textbox', { name: 'Secret' }).inputValue();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    await page.getByRole('button', { name: 'I have stored it' }).click();
    await page.getByRole('button', { name: 'Close it' }).click();
    expect(await page.getByRole('textbox', { name: 'Secret' }).count()).toBe(0);
    const row = page.getByRole('row', { name: /on-call bridge/ });
    await row.getByText('Enabled', { exact: true }).waitFor();
    expect(await row.textContent()).toContain('study.started');

    await row.getByRole('button', { name: 'Send test event' }).click();
    const log = page.getByRole('region', { name: /Delivery log/ });
    await log.getByText('webhook.test').waitFor();
    await log.getByText('delivered', { exact: true }).waitFor();
    await log.getByText(/HTTP 204/).waitFor();
    if (SHOTS) {
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: join(SHOTS, 'console-notifications.png'), fullPage: false });
    }

    expect(received).toHaveLength(1);
    const [request] = received;
    expect(
      verifyWebhook({
        secret,
        body: request!.body,
        timestampHeader: request!.headers[WEBHOOK_HEADERS.timestamp] as string,
        signatureHeader: request!.headers[WEBHOOK_HEADERS.signature] as string,
        nowSeconds: Math.floor(request!.atSeconds),
      }),
    ).toEqual({ valid: true });
    expect(JSON.parse(request!.body)).toMatchObject({ type: 'webhook.test' });

    // Disable, then delete after confirming.
    await row.getByRole('button', { name: 'Disable' }).click();
    await row.getByText('Disabled', { exact: true }).waitFor();
    expect(await row.getByRole('button', { name: 'Send test event' }).isDisabled()).toBe(true);
    await row.getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete endpoint' }).click();
    await page.getByText('No endpoint yet').waitFor();
    expect(errors).toEqual([]);
  });
});
