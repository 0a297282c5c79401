import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { CHROMIUM, ensureConsoleBuild } from '../testing/console-build.test-util';

// What a keyboard user and a reader of deep links meet, measured in Debian's Chromium on the production console
// served by a real hub: the focus ring on the top bar must stand out from the bar (WCAG 2.2, 1.4.11: 3:1), and a
// section a link names must not end up under the sticky top bar.

/** Relative luminance of an sRGB colour given as `rgb(r, g, b)` or `rgba(...)` (WCAG 2.2 definition). */
function luminance(css: string): number {
  const [r, g, b] = (css.match(/[\d.]+/g) ?? []).slice(0, 3).map((v) => {
    const c = Number(v) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

describe('console accessibility in Chromium, against a real hub', () => {
  let hub: TestHub;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    await ensureConsoleBuild();
    hub = await startTestHub('embedded');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    });
    page = await (await browser.newContext({ viewport: { width: 1280, height: 600 } })).newPage();
    page.setDefaultTimeout(20_000);
    await page.goto(`${hub.url}/audit`);
    await page.getByLabel('Username').fill(ADMIN.username);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Audit trail' }).waitFor();
  }, 300_000);

  afterAll(async () => {
    await browser?.close();
    await hub?.dispose();
  });

  it('shows keyboard focus on the top bar with at least 3:1 contrast against the bar', async () => {
    await page.locator('body').focus();
    // Tab until the focus is inside the top bar (its first link), as a keyboard user would.
    let inTopbar = false;
    for (let i = 0; i < 10 && !inTopbar; i += 1) {
      await page.keyboard.press('Tab');
      inTopbar = await page.evaluate('Boolean(document.activeElement?.closest(".topbar"))');
    }
    expect(inTopbar).toBe(true);
    const ring = await page.evaluate<{ color: string; width: number; styleName: string; bar: string }>(`(() => {
      const el = document.activeElement;
      const style = getComputedStyle(el);
      return {
        color: style.outlineColor,
        width: parseFloat(style.outlineWidth),
        styleName: style.outlineStyle,
        bar: getComputedStyle(document.querySelector('.topbar')).backgroundColor,
      };
    })()`);
    expect(ring.styleName).not.toBe('none');
    expect(ring.width).toBeGreaterThanOrEqual(2);
    expect(contrast(ring.color, ring.bar)).toBeGreaterThanOrEqual(3);
  });

  it('stops a deep-linked section below the sticky top bar', async () => {
    await page.goto(`${hub.url}/audit#events-title`);
    const heading = page.locator('#events-title');
    await heading.waitFor();
    // The console scrolls to the section once its data has loaded; wait for that scroll.
    await page.waitForFunction('window.scrollY > 0');
    const { top, barBottom } = await page.evaluate<{ top: number; barBottom: number }>(`({
      top: document.getElementById('events-title').getBoundingClientRect().top,
      barBottom: document.querySelector('.topbar').getBoundingClientRect().bottom,
    })`);
    expect(top).toBeGreaterThanOrEqual(barBottom);
  });
});
