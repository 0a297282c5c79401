import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EnrollmentIssued } from '../silos/silos.service';
import type { StudyView } from '../studies/studies.service';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { runAgent, startAgentRun, type AgentRun } from '../testing/agent-process.test-util';
import { heartFile } from '../testing/hub-process.test-util';
import { partScreenshot, pageScreenshot, SCREENSHOTS_ON } from '../testing/screenshots.test-util';
import { ADMIN, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { CHROMIUM, ensureConsoleBuild } from '../testing/console-build.test-util';

// The study pages in the production console, in Debian's Chromium, against a real hub and three real agents: one
// steward rejects the first plan version with a reason and approves the second (both stay listed, with the field the
// second changed); one agent starts late and misses round 1, which the round history lists as late and the charts
// draw as a gap in that hospital's line, in the same colour as its swatch; then the study is cloned as a new draft.
// SCREENSHOTS=1 also writes docs/screenshots/: the study page (console-study-history), its approvals with the
// decision history (console-study-decisions), a round open with one hospital missing (console-study-live), its plan versions with the diff (console-study-plan-diff) and the
// studies list with its filters (console-studies).

const DEADLINE_SECONDS = 15;

interface Silo {
  id: string;
  name: string;
  env: Record<string, string>;
}

// The callbacks below run in the page: they use the browser's getComputedStyle and getAttribute, typed here because
// this spec compiles for Node (no DOM library).
interface Browserish {
  getComputedStyle(element: unknown): {
    backgroundColor: string;
    stroke: string;
    fill: string;
    outlineStyle: string;
    outlineWidth: string;
  };
}
interface Attributed {
  getAttribute(name: string): string | null;
}

describe('study pages in Chromium against a real hub and agents', () => {
  let hub: TestHub;
  let browser: Browser;
  let page: Page;
  let admin: Record<string, string>;
  const root = mkdtempSync(join(tmpdir(), 'tessera-study-pages-e2e-'));
  const silos: Silo[] = [];
  const runs: AgentRun[] = [];
  const errors: string[] = [];
  let study: StudyView;

  beforeAll(async () => {
    await ensureConsoleBuild();
    hub = await startTestHub('embedded');
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    });
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.setDefaultTimeout(20_000);
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 401/.test(m.text())) errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
  });

  afterAll(async () => {
    for (const r of runs) if (r.child.exitCode === null) r.child.kill('SIGKILL');
    await browser?.close();
    await hub?.dispose();
    rmSync(root, { recursive: true, force: true });
  });

  it('keeps a rejection and its reason beside the later approval, with what the new version changed', async () => {
    for (const [name, file] of [
      ['Cleveland', 'processed.cleveland.data'],
      ['Hungary', 'processed.hungarian.data'],
      ['Long Beach', 'processed.va.data'],
    ] as const) {
      const issued = (
        await api(hub, 'POST', '/api/silos', { headers: admin, json: { name, contact: 'it@example.org' } })
      ).body as EnrollmentIssued;
      const env = { TESSERA_STATE_DIR: join(root, name.replace(' ', '-')), TESSERA_DATA_FILE: heartFile(file) };
      expect((await runAgent(['enroll', '--bundle', issued.bundleText], env)).code).toBe(0);
      silos.push({ id: issued.bundle.siloId, name, env });
    }
    const plan = heartDiseasePlan(
      silos.map((s) => s.id),
      {
        participation: {
          minSilosPerRound: 2,
          roundDeadlineSeconds: DEADLINE_SECONDS,
          maxRoundRetries: 0,
          onSiloFailure: 'continue',
        },
      },
    );
    plan.training.rounds = 4;
    study = (await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } })).body as StudyView;
    expect((await api(hub, 'POST', `/api/studies/${study.id}/submit`, { headers: admin })).status).toBe(200);
    const rejected = await runAgent(
      ['studies', 'reject', study.id, '--reason', 'four rounds exceed our ethics approval'],
      silos[2]!.env,
    );
    expect(rejected.code).toBe(0);
    const v2 = { ...plan, training: { ...plan.training, rounds: 3 } };
    study = (await api(hub, 'PUT', `/api/studies/${study.id}/plan`, { headers: admin, json: { plan: v2 } }))
      .body as StudyView;
    for (const s of silos) {
      const approved = await runAgent(['studies', 'approve', study.id, '--plan-hash', study.planHash], s.env);
      expect(approved.code, approved.stderr).toBe(0);
    }

    await page.goto(`${hub.url}/studies/${study.id}`);
    await page.getByLabel('Username').fill(ADMIN.username);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: /Fed-Heart-Disease/ }).waitFor();
    const decisions = page.getByRole('table', { name: 'Decision history' });
    await expect.poll(() => decisions.locator('tbody tr').count(), { timeout: 15_000 }).toBe(4);
    const longBeach = await decisions.locator('tr[data-silo="Long Beach"]').allInnerTexts();
    expect(longBeach).toEqual([
      expect.stringMatching(/v1[\s\S]*earlier version[\s\S]*rejected[\s\S]*four rounds exceed our ethics approval/),
      expect.stringMatching(/v2[\s\S]*approved/),
    ]);
    const changes = page.getByRole('table', { name: 'Changes in version 2' });
    expect(await changes.locator('tbody tr').allInnerTexts()).toEqual([
      expect.stringMatching(/^training\.rounds\s+4\s+3$/),
    ]);
    await partScreenshot(page.locator('#approvals'), 'console-study-decisions');
    await partScreenshot(page.locator('#plan'), 'console-study-plan-diff');
  });

  it('pauses and resumes; lists the round a stopped agent missed, and draws its line with a gap, in its own colour', async () => {
    await page.getByRole('button', { name: 'Start the study' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Start' }).click();
    // Paused while round 1 is open (no agent runs yet): round 1 finishes, round 2 is held back.
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.getByRole('dialog').getByLabel('Reason').fill('Long Beach moves its records');
    await page.getByRole('dialog').getByRole('button', { name: 'Pause the study' }).click();
    await page.getByText(/Paused since .*Long Beach moves its records/).waitFor();
    const agents = silos.map((s) => startAgentRun(study.id, s.env));
    runs.push(...agents);
    const rowOf = (round: number) => page.locator(`table.round-history tr[data-round="${round}"]`).first();
    await expect.poll(() => rowOf(1).textContent(), { timeout: 60_000 }).toMatch(/^Round 1closed/);
    await page.waitForTimeout(3000);
    expect(await page.locator('table.round-history tr[data-round="2"]').count()).toBe(0);

    // Long Beach's agent stops while paused; resuming opens round 2, which closes at its deadline without it.
    agents[2]!.child.kill('SIGKILL');
    await agents[2]!.exited;
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Resume' }).click();
    if (SCREENSHOTS_ON) {
      // Round 2 stays open until its deadline without Long Beach: the two others uploaded, Long Beach still waiting.
      const current = page.locator('#round');
      await current.locator('.round-title[data-round="2"]').waitFor();
      await expect
        .poll(() => current.getByText('uploaded', { exact: true }).count(), { timeout: DEADLINE_SECONDS * 1000 })
        .toBe(2);
      await pageScreenshot(page, 'console-study-live', { fullPage: true });
    }
    await rowOf(3).waitFor({ timeout: (DEADLINE_SECONDS + 30) * 1000 });
    const restarted = startAgentRun(study.id, silos[2]!.env);
    runs.push(restarted);
    await page.getByText('Completed', { exact: true }).first().waitFor({ timeout: 120_000 });
    const exits = await Promise.all([agents[0]!.exited, agents[1]!.exited, restarted.exited]);
    expect(exits, runs.map((r) => r.output()).join('\n')).toEqual([0, 0, 0]);

    const header = await page.locator('table.round-history thead th').allTextContents();
    const column = header.findIndex((h) => h.trim() === 'Long Beach');
    expect(column).toBeGreaterThan(1);
    const cell = async (round: number) => (await rowOf(round).locator('td, th').nth(column).textContent()) ?? '';
    await expect.poll(() => cell(2), { timeout: 15_000 }).toMatch(/^late/);
    expect(await cell(1)).toMatch(/^trained/);
    expect(await cell(3)).toMatch(/^trained/);
    expect(
      await rowOf(2)
        .locator('td, th')
        .nth(column - 1)
        .textContent(),
    ).toMatch(/^trained/);

    // The accuracy table under the chart says "missed" for round 2, and the chart's line skips round 2 (a gap, not
    // a straight line from round 1 to round 3).
    const accuracy = page.locator('figure[data-metric="accuracy"]');
    const tableRows = await accuracy.locator('table tbody tr').allTextContents();
    expect(tableRows.filter((r) => r.includes('missed'))).toEqual([expect.stringMatching(/^2/)]);
    const swatch = await page
      .locator('table.round-history thead th', { hasText: 'Long Beach' })
      .locator('.silo-swatch')
      .evaluate((e) => (globalThis as unknown as Browserish).getComputedStyle(e).backgroundColor);
    const lines = await accuracy.locator('path.recharts-line-curve').evaluateAll((paths) =>
      paths.map((p) => ({
        stroke: (globalThis as unknown as Browserish).getComputedStyle(p).stroke,
        d: (p as unknown as Attributed).getAttribute('d') ?? '',
      })),
    );
    const longBeach = lines.find((l) => l.stroke === swatch);
    expect(longBeach, JSON.stringify({ swatch, lines: lines.map((l) => l.stroke) })).toBeDefined();
    // Three hospitals and the mean, each in its own colour.
    expect(new Set(lines.map((l) => l.stroke)).size).toBe(4);
    // Each hospital's dots are filled with its colour: Long Beach has one at every round but round 2.
    const dotsOf = (colour: string) =>
      accuracy.locator('circle').evaluateAll(
        (circles, c) =>
          circles
            .filter((x) => (globalThis as unknown as Browserish).getComputedStyle(x).fill === c)
            .map((x) => Number((x as unknown as Attributed).getAttribute('cx')))
            .sort((a, b) => a - b),
        colour,
      );
    const other = lines.find((l) => l !== longBeach && l.stroke !== 'rgb(27, 36, 48)')!;
    const full = await dotsOf(other.stroke);
    expect(full).toHaveLength(4); // rounds 1, 2, 3 and the final evaluation
    expect(await dotsOf(swatch)).toEqual([full[0], full[2], full[3]]);
    expect(longBeach!.d.match(/M/g)).toHaveLength(2); // two pieces: the line is broken at round 2
    expect(other.d.match(/M/g)).toHaveLength(1);
    // Recharts makes the chart a tab stop: reached from the keyboard, it shows a focus ring (it hid it before).
    const chart = accuracy.locator('svg[tabindex="0"]').first();
    await chart.focus();
    await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('Tab');
    const ring = await chart.evaluate((e) => {
      const style = (globalThis as unknown as Browserish).getComputedStyle(e);
      const doc = (globalThis as unknown as { document: { activeElement: unknown } }).document;
      return { focused: doc.activeElement === e, style: style.outlineStyle, width: parseFloat(style.outlineWidth) };
    });
    expect(ring).toMatchObject({ focused: true, style: 'solid' });
    expect(ring.width).toBeGreaterThanOrEqual(2);
    await pageScreenshot(page, 'console-study-history', { fullPage: true });
  });

  it('clones the completed study as a new draft with the same plan and nothing else', async () => {
    await page.getByRole('button', { name: 'Clone as draft' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Clone' }).click();
    await page.waitForURL((url) => url.pathname.startsWith('/studies/') && !url.pathname.endsWith(study.id));
    const cloneId = new URL(page.url()).pathname.split('/')[2]!;
    await page
      .getByRole('heading', { name: /Fed-Heart-Disease/ })
      .getByText('Draft')
      .waitFor();
    await page.getByText(/Cloned from/).waitFor();
    await page.locator('#history').getByText('No round yet').waitFor();
    expect(await page.getByText(/Plan version 1 · hash/).count()).toBe(1);
    const clone = (await api(hub, 'GET', `/api/studies/${cloneId}`, { headers: admin })).body as StudyView;
    expect(clone).toMatchObject({ status: 'draft', planVersion: 1, clonedFrom: study.id, currentModelHash: null });
    expect(clone.plan).toEqual(study.plan);
    expect(clone.decisions.every((d) => d.decision === null)).toBe(true);

    // The list holds the completed study and its draft clone, each with its progress.
    await page.getByRole('link', { name: '← Studies' }).click();
    await expect.poll(() => page.locator('table tbody tr').count()).toBe(2);
    const listed = page.locator('table tbody tr');
    const completed = page.locator(`tr[data-study-id="${study.id}"]`);
    await expect.poll(() => completed.innerText()).toMatch(/completed: 3 of 3 rounds/);
    expect(await completed.innerText()).toMatch(/accuracy 0\.\d{3}[\s\S]*final model/);
    expect(await page.locator(`tr[data-study-id="${cloneId}"]`).innerText()).toMatch(/not submitted[\s\S]*—/);
    // The search narrows the list: a hospital's name keeps both, the clone's id only the clone.
    const search = page.getByRole('searchbox', { name: 'Search' });
    await search.fill('long beach');
    await expect.poll(() => listed.count()).toBe(2);
    await search.fill(cloneId.slice(0, 13));
    await expect.poll(() => listed.count()).toBe(1);
    expect(await listed.first().getAttribute('data-study-id')).toBe(cloneId);
    await page.getByText('1 of 2 studies match').waitFor();
    await search.fill('');
    await expect.poll(() => listed.count()).toBe(2);
    await pageScreenshot(page, 'console-studies');

    // The source can now be archived: gone from the default list, listed under the Archived filter.
    await page.goto(`${hub.url}/studies/${study.id}`);
    await page.getByRole('button', { name: 'Archive' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Archive' }).click();
    await page.getByText(/Archived .*read-only/).waitFor();
    await page.getByRole('link', { name: '← Studies' }).click();
    const rows = page.locator('table tbody tr');
    await expect.poll(() => rows.count()).toBe(1);
    await page.getByLabel('Status').selectOption('archived');
    await expect.poll(() => rows.first().innerText()).toMatch(/archived/);

    // The study page's head, approvals and decisions, round history and plan versions stay within a phone's width
    // (tables scroll in their own frame).
    await page.setViewportSize({ width: 420, height: 860 });
    await page.goto(`${hub.url}/studies/${study.id}`);
    await page.locator('table.round-history').waitFor();
    await page.getByRole('table', { name: 'Changes in version 2' }).waitFor();
    const wide = await page.evaluate(`(() => {
      const out = [];
      for (const e of document.querySelectorAll('.page-head *, #approvals *, #history *, #plan *, .notice *')) {
        const r = e.getBoundingClientRect();
        if (r.right > window.innerWidth + 1 && !e.closest('.table-wrap') && !e.closest('pre'))
          out.push(e.tagName + '.' + e.className + ' ' + Math.round(r.right));
      }
      return out.slice(0, 12);
    })()`);
    expect(wide).toEqual([]);
    await page.setViewportSize({ width: 1280, height: 900 });
    expect(errors).toEqual([]);
  });
});
