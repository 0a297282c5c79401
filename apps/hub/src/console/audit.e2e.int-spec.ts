import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AuditTrail } from '../audit/audit-trail';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyView } from '../studies/studies.service';
import { ADMIN, api, signIn as apiSignIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';
import { CHROMIUM, ensureConsoleBuild } from '../testing/console-build.test-util';

// The audit page as an auditor in Zurich uses it: Debian's Chromium with its time zone set to Europe/Zurich drives
// the production console served by a real hub. Three records straddle midnight in Zurich (23:00 UTC in winter); the
// date filters are typed in Zurich time and must select exactly the records either side of it.

const REPO = resolve(__dirname, '../../../..');
const ZONE = 'Europe/Zurich';
/** SCREENSHOTS=1 (npm run screenshots) also writes the audit page's pictures to docs/screenshots/. */
const SHOTS = process.env.SCREENSHOTS === '1' ? join(REPO, 'docs/screenshots') : null;

async function shot(page: Page, name: string): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

/** 23:59:59 on 30 November, 00:00:00 and 00:30:07 on 1 December, in Zurich (UTC+1 in winter). */
const MIDNIGHT_RECORDS = [
  { time: '2026-11-30T22:59:59.000Z', action: 'e2e.midnight.before' },
  { time: '2026-11-30T23:00:00.000Z', action: 'e2e.midnight.at' },
  { time: '2026-11-30T23:30:07.000Z', action: 'e2e.midnight.after' },
];

describe('the audit page in Chromium in Zurich, against a real hub', () => {
  let hub: TestHub;
  let browser: Browser;
  let page: Page;
  let study: StudyView;
  const errors: string[] = [];

  /** The times in the events table, top (newest) first. */
  async function shownTimes(): Promise<string[]> {
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('Loading events…').waitFor({ state: 'detached' });
    return page.getByTestId('event-time').allTextContents();
  }

  async function filterDates(from: string, before: string): Promise<void> {
    await page.getByLabel('From (inclusive)').fill(from);
    await page.getByLabel('Before (exclusive)').fill(before);
  }

  beforeAll(async () => {
    await ensureConsoleBuild();
    hub = await startTestHub('embedded', { env: { TESSERA_ENROLL_PORT: '0' } });
    // The three records at chosen instants: the hub's clock (Date) is set for each append, then given back.
    const trail = hub.app.get(AuditTrail);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      for (const r of MIDNIGHT_RECORDS) {
        vi.setSystemTime(new Date(r.time));
        await trail.record({ actor: { type: 'system', id: 'hub' }, action: r.action, details: { e2e: true } });
      }
    } finally {
      vi.useRealTimers();
    }
    // A study with records, for the compliance report downloads.
    const admin = await apiSignIn(hub, ADMIN.username, ADMIN.password);
    const silo = await TestSilo.enroll(hub, admin, 'Lakeside Hospital');
    study = (await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan: heartDiseasePlan([silo.id]) } }))
      .body as StudyView;
    expect(study.id).toBeTruthy();

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    });
    const context = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      timezoneId: ZONE,
      acceptDownloads: true,
    });
    page = await context.newPage();
    page.setDefaultTimeout(20_000);
    page.on('console', (m) => {
      // The first visit asks whether the browser is signed in: a 401 before the sign-in is the expected answer.
      if (m.type() === 'error' && !/status of 401/.test(m.text())) errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${hub.url}/audit`);
    await page.getByLabel('Username').fill(ADMIN.username);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Audit trail' }).waitFor();
    // Building the console with Vite takes minutes on a loaded two-core machine.
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await hub?.dispose();
  });

  it("names the browser's zone, and shows times to the second in it once chosen", async () => {
    expect(await page.evaluate('Intl.DateTimeFormat().resolvedOptions().timeZone')).toBe(ZONE);
    await page.getByRole('radio', { name: `${ZONE} (this browser)` }).check();
    await page.getByRole('columnheader', { name: `Time (${ZONE})` }).waitFor();
    await page.getByLabel('Action starts with').fill('e2e.midnight.');
    expect(await shownTimes()).toEqual([
      '2026-12-01 00:30:07 +01:00',
      '2026-12-01 00:00:00 +01:00',
      '2026-11-30 23:59:59 +01:00',
    ]);
    // The hub itself is named, not shown as an id.
    const row = page.getByRole('row', { name: /e2e\.midnight\.after/ });
    expect(await row.getByText('Tessera hub').count()).toBe(1);
  });

  it('filters across midnight in Zurich: From is inclusive, Before exclusive', async () => {
    await filterDates('2026-12-01T00:00:00', '');
    expect(await shownTimes()).toEqual(['2026-12-01 00:30:07 +01:00', '2026-12-01 00:00:00 +01:00']);
    await filterDates('', '2026-12-01T00:00:00');
    expect(await shownTimes()).toEqual(['2026-11-30 23:59:59 +01:00']);
    // Across midnight, each bound on a record's own second.
    await filterDates('2026-11-30T23:59:59', '2026-12-01T00:30:07');
    expect(await shownTimes()).toEqual(['2026-12-01 00:00:00 +01:00', '2026-11-30 23:59:59 +01:00']);
    await page.getByRole('heading', { name: 'Events' }).scrollIntoViewIfNeeded();
    await shot(page, 'console-audit-zurich');
    // The same instants in UTC: the fields follow the zone, and the rows with them.
    await page.getByRole('radio', { name: 'UTC' }).check();
    expect(await page.getByLabel('From (inclusive)').inputValue()).toBe('2026-11-30T22:59:59');
    expect(await shownTimes()).toEqual(['2026-11-30 23:00:00 UTC', '2026-11-30 22:59:59 UTC']);
    await page.getByRole('button', { name: 'Clear' }).click();
  });

  it("downloads the hub's key as PEM with the fingerprint the page shows", async () => {
    const fingerprint = (await page.getByTestId('key-fingerprint').first().textContent())!.trim();
    expect(fingerprint).toMatch(/^[0-9a-f]{64}$/);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download hub public key (PEM)' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('hub-public.pem');
    const text = readFileSync(await download.path(), 'utf8');
    expect(text).toContain(fingerprint);
    expect(text).toContain('-----BEGIN PUBLIC KEY-----');
  });

  it('downloads a JSON and a PDF of one report at the same chain head', async () => {
    await page.getByLabel('Report on study').selectOption(study.id);
    const [json] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download JSON (for verifiers)' }).click(),
    ]);
    const bundle = JSON.parse(readFileSync(await json.path(), 'utf8')) as {
      records: { seq: number; hash: string }[];
    };
    const head = bundle.records.at(-1)!;
    await page.getByTestId('report-head').getByText(`up to record #${head.seq}`).waitFor();
    const [pdf] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download PDF (for people)' }).click(),
    ]);
    expect(
      readFileSync(await pdf.path())
        .subarray(0, 5)
        .toString('latin1'),
    ).toBe('%PDF-');
    // Both downloads are logged, each naming the head it covered: the same one.
    const admin = await apiSignIn(hub, ADMIN.username, ADMIN.password);
    const exports = (
      await api(hub, 'GET', `/api/audit/events?studyId=${study.id}&action=report.exported&limit=2`, { headers: admin })
    ).body as { events: { details: { format: string; headSeq: number; headHash: string } }[] };
    expect(exports.events.map((e) => [e.details.format, e.details.headSeq, e.details.headHash])).toEqual([
      ['pdf', head.seq, head.hash],
      ['json', head.seq, head.hash],
    ]);
  });

  it('fits a 375 px wide phone without scrolling sideways', async () => {
    await page.setViewportSize({ width: 375, height: 800 });
    await page.getByLabel('Action starts with').fill('');
    await shownTimes();
    const overflow = await page.evaluate<number>(
      'document.documentElement.scrollWidth - document.documentElement.clientWidth',
    );
    expect(overflow).toBe(0);
    // Nor is anything cut off at the right edge: every element ends within the window, except inside the events
    // table's own scrolling frame.
    const sticking = await page.evaluate<string[]>(`[...document.querySelectorAll('body *')]
      .filter((e) => !e.closest('.table-wrap') && e.getBoundingClientRect().width > 0)
      .filter((e) => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
      .map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + '.' + [...e.classList].join('.') + ' ' +
        Math.round(e.getBoundingClientRect().right))`);
    expect(sticking).toEqual([]);
    await page.getByRole('heading', { name: 'Audit trail' }).scrollIntoViewIfNeeded();
    await shot(page, 'console-audit-narrow');
    expect(errors).toEqual([]);
  });
});
