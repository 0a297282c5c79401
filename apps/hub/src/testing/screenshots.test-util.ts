import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Locator, Page } from 'playwright-core';

// The console's pictures in docs/screenshots/ are taken by the browser specs themselves, against their real hubs and
// agents, when SCREENSHOTS=1 (npm run screenshots); otherwise these helpers do nothing.

const SHOTS = process.env.SCREENSHOTS === '1' ? join(resolve(__dirname, '../../../..'), 'docs/screenshots') : null;

/** True under SCREENSHOTS=1: for a picture that needs a moment a spec would not otherwise wait for. */
export const SCREENSHOTS_ON = SHOTS !== null;

/**
 * Writes docs/screenshots/<name>.png of the page: the window by default, the whole page with `fullPage` (scrolled to
 * the top first, so the sticky header is not painted over the middle of the image).
 */
export async function pageScreenshot(page: Page, name: string, options: { fullPage?: boolean } = {}): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  if (options.fullPage) await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: options.fullPage ?? false });
}

/** Writes docs/screenshots/<name>.png of one part of a page (a section, a dialog), scrolled into view. */
export async function partScreenshot(part: Locator, name: string): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await part.screenshot({ path: join(SHOTS, `${name}.png`) });
}
