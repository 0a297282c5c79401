import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { HUB_API, releasedWithoutDp, type SiloView } from '@tessera/protocol';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyView } from '../studies/studies.service';
import { runAgent, startAgentRun } from '../testing/agent-process.test-util';
import { ADMIN, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { CHROMIUM, ensureConsoleBuild } from '../testing/console-build.test-util';

// The web console end to end: Debian's Chromium drives the production build served by a real hub, with real agents
// enrolled from the bundle the page shows. SCREENSHOTS=1 also writes docs/screenshots/ (npm run screenshots).

const REPO = resolve(__dirname, '../../../..');
const DATA = join(REPO, 'libs/ml/data/heart-disease');
const SHOTS = process.env.SCREENSHOTS === '1' ? join(REPO, 'docs/screenshots') : null;
const AUDITOR = { username: 'auditor', password: 'a long auditor password' };

/** The newest modification time under the given paths (files and folders, recursively). */

async function shot(page: Page, name: string, fullPage = true): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  // From the top, so the sticky header is not painted over the middle of a full-page image.
  if (fullPage) await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}

describe('web console in Chromium against a real hub and agents', () => {
  let hub: TestHub;
  let context: BrowserContext;
  let page: Page;
  let profileDir: string;
  const agentDirs: string[] = [];
  const agents: ChildProcess[] = [];
  const outsideRequests: string[] = [];
  const consoleErrors: string[] = [];
  const silos: { name: string; env: Record<string, string> }[] = [];
  let studyId = '';

  beforeAll(async () => {
    await ensureConsoleBuild();
    hub = await startTestHub('server');
    profileDir = mkdtempSync(join(tmpdir(), 'tessera-chromium-'));
    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
      viewport: { width: 1280, height: 800 },
      acceptDownloads: true,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(20_000);
    // Hospitals run offline: nothing may leave for another host (no CDN font, script or image).
    page.on('request', (r) => {
      const url = r.url();
      if (!url.startsWith(hub.url) && !url.startsWith('data:') && !url.startsWith('blob:')) outsideRequests.push(url);
    });
    // CSP violations and script errors surface here.
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of (401|404)/.test(m.text())) consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
  });

  afterAll(async () => {
    for (const a of agents) if (a.exitCode === null) a.kill('SIGTERM');
    await context?.close();
    await hub?.dispose();
    for (const d of [profileDir, ...agentDirs]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('signs in an administrator under the hub’s Content-Security-Policy', async () => {
    const res = await page.goto(`${hub.url}/`);
    expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.getByRole('heading', { name: 'Tessera console' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/sign-in');
    await page.getByLabel('Username').fill(ADMIN.username);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').getByText('Sign-in failed').waitFor();
    await shot(page, 'console-sign-in', false);
    await page.getByLabel('Password').fill(ADMIN.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Studies' }).waitFor();
    await page.getByText('No study yet').waitFor();
    // The token lives in this tab's sessionStorage, never in localStorage.
    expect(await page.evaluate('Object.keys(localStorage).length')).toBe(0);
    expect(await page.evaluate("sessionStorage.getItem('tessera.session')")).toContain('"role":"admin"');
  });

  it('registers two silos and enrolls a real agent with the bundle read from the page', async () => {
    for (const [name, file] of [
      ['Cleveland Clinic', 'processed.cleveland.data'],
      ['Hungarian Institute', 'processed.hungarian.data'],
    ] as const) {
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Silos' }).click();
      await page.getByRole('button', { name: 'Register a silo' }).click();
      await page.getByLabel('Hospital name').fill(name);
      await page.getByLabel('IT contact').fill(`it@${name.split(' ')[0]!.toLowerCase()}.example`);
      await page.getByRole('button', { name: 'Register and issue the bundle' }).click();
      const bundle = page.getByLabel('Enrollment bundle', { exact: true });
      await bundle.waitFor();
      const bundleText = await bundle.inputValue();
      expect(bundleText).toMatch(/^[A-Za-z0-9_-]{100,}$/);
      await page.getByLabel('Data file in that folder').fill(file);
      const run = (await page.locator('pre.code').first().textContent()) ?? '';
      expect(run).toContain('tessera-agent:0.1.0');
      expect(run).toContain(`TESSERA_ENROLLMENT_BUNDLE='${bundleText}'`);
      expect(run).toContain(`TESSERA_DATA_FILE='/data/${file}'`);
      expect(run).toContain(':/data:ro');
      expect(run).toContain(':/var/lib/tessera');
      expect(run).not.toMatch(/\s(-p|--publish)\s/);
      const compose = (await page.locator('pre.code').nth(1).textContent()) ?? '';
      expect(compose).toContain('image: tessera-agent:0.1.0');
      expect(compose).not.toContain('ports:');
      // This test hub listens on 127.0.0.1: an agent elsewhere could not use the bundle, and the page says so.
      await page.getByRole('alert').filter({ hasText: 'cannot use this bundle' }).waitFor();
      if (silos.length === 0) await shot(page, 'console-silo-enrollment');

      const dir = mkdtempSync(join(tmpdir(), 'tessera-agent-'));
      agentDirs.push(dir);
      const env = { TESSERA_STATE_DIR: dir, TESSERA_DATA_FILE: join(DATA, file) };
      const enrolled = await runAgent(['enroll', '--bundle', bundleText], env);
      expect(enrolled.stderr).toBe('');
      expect(enrolled.code).toBe(0);
      silos.push({ name, env });
      await page.getByRole('button', { name: 'I have handed it over' }).click();
      // The only copy: the console asks first.
      await page
        .getByRole('dialog', { name: 'Close the only copy of this bundle?' })
        .getByRole('button', { name: 'Close the bundle' })
        .click();
      await expect.poll(() => bundle.count()).toBe(0);
    }
    await page.reload();
    const rows = page.getByRole('table').getByRole('row');
    await expect.poll(async () => (await rows.allTextContents()).filter((t) => t.includes('enrolled')).length).toBe(2);
    await shot(page, 'console-silos', false);
  });

  it('creates the study through the wizard, whose inline validation blocks each wrong step', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Studies' }).click();
    await page.getByRole('link', { name: 'New study' }).click();
    const name = page.getByLabel('Study name');
    await name.fill('ab');
    await page.getByRole('button', { name: 'Next' }).click();
    await expect.poll(() => name.getAttribute('aria-invalid')).toBe('true');
    await page
      .locator('#plan-name-error')
      .getByText(/needs at least/)
      .waitFor();
    await page
      .locator('#plan-purpose-error')
      .getByText(/needs at least/)
      .waitFor();
    await shot(page, 'console-wizard-validation', false);
    await name.fill('Heart disease, two hospitals');
    await page.getByLabel('Purpose').fill('Predict angiographic coronary artery disease from 13 routine features.');
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('heading', { name: '2. Model' }).waitFor();
    await shot(page, 'console-wizard-model');
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('heading', { name: '3. Data schema' }).waitFor();
    // Declared encoding constants (the Fed-Heart-Disease preset) and a split salt generated in the browser.
    expect(await page.locator('[data-path="schema.features.0.scaling.center"]').inputValue()).toBe('55');
    expect(await page.locator('[data-path="schema.split.salt"]').inputValue()).toMatch(/^[0-9a-f]{32}$/);
    await page.getByRole('button', { name: 'Next' }).click();

    await page.getByRole('heading', { name: '4. Training' }).waitFor();
    const rounds = page.getByLabel('Rounds', { exact: true });
    await rounds.fill('0');
    await page
      .locator('#plan-training-rounds-error')
      .getByText(/Rounds must be at least 1/)
      .waitFor();
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('heading', { name: '4. Training' }).waitFor();
    await rounds.fill('3');
    await page.getByLabel('Local epochs per round').fill('2');
    await page.getByRole('button', { name: 'Next' }).click();

    // The privacy step's calculator, with the hub's accountant, before settling on a plan without DP.
    await page.getByRole('heading', { name: '5. Privacy' }).waitFor();
    await page.getByLabel('Differential privacy').selectOption('dp-sgd');
    await page.getByText(/needs noise multiplier σ =/).waitFor();
    await page.getByText(/spends ε =/).waitFor();
    expect(Number(await page.locator('output').first().getAttribute('data-value'))).toBeGreaterThan(0);
    await shot(page, 'console-wizard-privacy');
    await page.getByLabel('Differential privacy').selectOption('none');
    await page.getByRole('button', { name: 'Next' }).click();

    // FedAvg and no screening unless the designer chooses otherwise.
    await page.getByRole('heading', { name: '6. Aggregation' }).waitFor();
    expect(await page.getByLabel('Aggregator').inputValue()).toBe('fedavg');
    await page.getByRole('button', { name: 'Next' }).click();

    // Without DP the default releases are the exact metrics every round and the record counts, said plainly.
    await page.getByRole('heading', { name: '7. Releases' }).waitFor();
    const evaluation = page.getByLabel('Evaluation results');
    expect(await evaluation.inputValue()).toBe('exact');
    expect(await evaluation.locator('option:checked').textContent()).toMatch(/released without differential privacy/);
    expect(await page.getByLabel('Training-record count').inputValue()).toBe('exact');
    await page.getByRole('button', { name: 'Next' }).click();

    await page.getByRole('heading', { name: '8. Participants' }).waitFor();
    await page.getByRole('button', { name: 'Next' }).click();
    await page
      .locator('#plan-silos-error')
      .getByText(/needs at least/)
      .waitFor();
    for (const s of silos) await page.getByLabel(s.name).check();
    await page.getByRole('button', { name: 'Next' }).click();
    await page.getByRole('heading', { name: '9. Review' }).waitFor();
    await page.getByText(/3 rounds × 2 local epochs/).waitFor();
    const reviewedConsent = await page
      .getByRole('region', { name: 'Released without differential privacy' })
      .getByRole('listitem')
      .allTextContents();
    await shot(page, 'console-wizard-review');
    await page.getByRole('button', { name: 'Create the draft study' }).click();
    await page.getByRole('heading', { name: /Heart disease, two hospitals/ }).waitFor();
    studyId = new URL(page.url()).pathname.split('/').pop() ?? '';
    expect(studyId).toMatch(/^[0-9a-f-]{36}$/);
    // The review listed, and the study page lists, exactly what the saved plan releases without DP: here the update
    // itself, the record counts and the exact metrics.
    const admin = await signIn(hub, ADMIN.username, ADMIN.password);
    const saved = (await api(hub, 'GET', `/api/studies/${studyId}`, { headers: admin })).body as StudyView;
    expect(releasedWithoutDp(saved.plan)).toHaveLength(3);
    expect(reviewedConsent).toEqual(releasedWithoutDp(saved.plan));
    const shownConsent = page
      .locator('#releases')
      .getByRole('region', { name: 'Released without differential privacy' })
      .getByRole('listitem');
    expect(await shownConsent.allTextContents()).toEqual(releasedWithoutDp(saved.plan));
  });

  it('submits, shows each steward’s approval as it arrives, starts, and follows rounds live without a reload', async () => {
    await page.getByRole('button', { name: 'Submit for approval' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Submit' }).click();
    await page.getByText('Awaiting approvals').first().waitFor();
    const admin = await signIn(hub, ADMIN.username, ADMIN.password);
    const study = (await api(hub, 'GET', `/api/studies/${studyId}`, { headers: admin })).body as StudyView;
    // A marker that a reload would erase: everything below must arrive over the live stream.
    await page.evaluate('window.liveMarker = 42');
    for (const s of silos) {
      const approved = await runAgent(['studies', 'approve', studyId, '--plan-hash', study.planHash], s.env);
      expect(approved.code).toBe(0);
    }
    const approvals = page.locator('#approvals').getByText('approved', { exact: true });
    await expect.poll(() => approvals.count(), { timeout: 10_000 }).toBe(2);

    const exits: Promise<number | null>[] = [];
    for (const s of silos) {
      const run = startAgentRun(studyId, s.env);
      agents.push(run.child);
      exits.push(run.exited);
    }
    await page.getByRole('button', { name: 'Start the study' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Start' }).click();
    await page.locator('.live-live').waitFor();

    // A later round appears in the page as the hub records it (rounds can be quick: whichever comes after round 1).
    await page
      .locator('.round-title', { hasText: /Round [23] of 3|Final evaluation/ })
      .first()
      .waitFor({ timeout: 60_000 });
    await page.getByText('Completed', { exact: true }).first().waitFor({ timeout: 90_000 });
    const accuracyRows = page.locator('#metrics table').nth(1).locator('tbody tr');
    await expect.poll(() => accuracyRows.count()).toBeGreaterThanOrEqual(3);
    expect(await accuracyRows.allTextContents()).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^1/),
        expect.stringMatching(/^2/),
        expect.stringMatching(/^final/),
      ]),
    );
    expect(await page.evaluate('window.liveMarker')).toBe(42);

    // No DP in this plan: every silo's gauge says so.
    const gauges = page.locator('#privacy .gauge');
    expect(await gauges.count()).toBe(2);
    expect(await gauges.allTextContents()).toEqual(silos.map((s) => `${s.name}no DP`));
    await shot(page, 'console-study-completed');
    expect(await Promise.all(exits)).toEqual([0, 0]);
  });

  it('downloads the final model through the bearer-authenticated API', async () => {
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'model.onnx (ONNX)' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('model.onnx');
    const path = await download.path();
    expect(statSync(path).size).toBeGreaterThan(100);
    const [json] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'model.json (TensorFlow.js)' }).click(),
    ]);
    const modelJson = JSON.parse(readFileSync(await json.path(), 'utf8')) as { weightsManifest?: unknown };
    expect(modelJson.weightsManifest).toBeDefined();
  });

  it('gives an auditor a read-only console with the audit trail and the compliance report', async () => {
    const admin = await signIn(hub, ADMIN.username, ADMIN.password);
    const created = await api(hub, 'POST', '/api/users', { headers: admin, json: { ...AUDITOR, role: 'auditor' } });
    expect(created.status).toBe(201);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Username').fill(AUDITOR.username);
    await page.getByLabel('Password').fill(AUDITOR.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Read-only console').waitFor();
    expect(await page.getByRole('link', { name: 'New study' }).count()).toBe(0);

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit' }).click();
    await page.getByText('✓ intact').waitFor();
    await page.getByLabel('Action starts with').fill('study.');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.locator('.audit-table').getByText('study.started').waitFor();
    expect(await page.locator('.audit-table').getByText('silo.registered').count()).toBe(0);
    await shot(page, 'console-audit', false);

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Studies' }).click();
    await page.getByRole('link', { name: 'Heart disease, two hospitals' }).click();
    expect(await page.getByRole('button', { name: 'Stop' }).count()).toBe(0);
    const report = page.locator('#report');
    const openapi = (await api(hub, 'GET', '/api/docs/openapi.json')).body as { paths: Record<string, unknown> };
    if ('/api/studies/{id}/report.pdf' in openapi.paths) {
      const [pdf] = await Promise.all([
        page.waitForEvent('download'),
        report.getByRole('button', { name: 'Download PDF (for people)' }).click(),
      ]);
      expect(pdf.suggestedFilename()).toMatch(/\.pdf$/);
      expect(
        readFileSync(await pdf.path())
          .subarray(0, 5)
          .toString('latin1'),
      ).toBe('%PDF-');
    } else {
      await report.getByText('The compliance report is not available from this hub.').waitFor();
    }
    await shot(page, 'console-study-auditor');
  });

  it('shows an auditor, per silo, what every study spent on its data', async () => {
    const studyUrl = page.url();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Privacy' }).click();
    await page.getByRole('link', { name: 'Cleveland Clinic' }).click();
    await page.getByRole('heading', { name: "Privacy spent on Cleveland Clinic's data" }).waitFor();
    const total = page.getByRole('note', { name: 'Total across studies' });
    // The study of this suite runs without DP: nothing to total, and said so.
    await total.getByText(/no ε to total/).waitFor();
    await total.getByText(/1 study uses no differential privacy/).waitFor();
    const row = page
      .getByRole('row')
      .filter({ has: page.getByRole('rowheader', { name: /Heart disease, two hospitals/ }) });
    await row.getByText('no DP').waitFor();

    // A second study, with DP-SGD, started (its first round charges every participant) though no agent runs it:
    // its ε spent, planned and targeted appear beside the first study's, and the total counts it alone.
    const admin = await signIn(hub, ADMIN.username, ADMIN.password);
    const registered = (await api(hub, 'GET', HUB_API.silos, { headers: admin })).body as SiloView[];
    const plan = heartDiseasePlan(
      registered.map((s) => s.id),
      {
        privacy: {
          mode: 'dp-sgd',
          unit: 'record',
          targetEpsilon: 3,
          delta: 1e-5,
          clipNorm: 1,
          noiseMultiplier: 'derive',
          samplingRate: 0.1,
        },
      },
    );
    plan.name = 'Heart disease with DP-SGD';
    const dp = (await api(hub, 'POST', HUB_API.studies, { headers: admin, json: { plan } })).body as StudyView;
    expect((await api(hub, 'POST', HUB_API.studySubmit(dp.id), { headers: admin })).status).toBe(200);
    for (const s of silos) {
      expect((await runAgent(['studies', 'approve', dp.id, '--plan-hash', dp.planHash], s.env)).code).toBe(0);
    }
    expect((await api(hub, 'POST', HUB_API.studyStart(dp.id), { headers: admin })).status).toBe(200);
    await page.reload();
    await total.getByText(/Total over 1 study with DP: ε ≤ [0-9.]+ at δ ≤ 1e-5/).waitFor();
    const dpRow = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: /with DP-SGD/ }) });
    await dpRow.getByText('DP-SGD, unit: one record').waitFor();
    await dpRow.getByRole('meter').waitFor();
    await shot(page, 'console-silo-privacy');
    await page.getByRole('link', { name: '← Privacy' }).click();
    await page.getByRole('link', { name: 'Hungarian Institute' }).waitFor();
    await shot(page, 'console-privacy', false);
    await page.goto(studyUrl);
    await page.getByRole('heading', { name: /Heart disease, two hospitals/ }).waitFor();
  });

  it('stays usable in a narrow window', async () => {
    await page.setViewportSize({ width: 420, height: 860 });
    await page.reload();
    await page.getByRole('heading', { name: /Heart disease, two hospitals/ }).waitFor();
    // The navigation folds behind a menu button that says whether it is open.
    const toggle = page.getByRole('button', { name: 'Menu' });
    expect(await toggle.getAttribute('aria-expanded')).toBe('false');
    await toggle.click();
    expect(await toggle.getAttribute('aria-expanded')).toBe('true');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Silos' }).waitFor();
    await toggle.click();
    // Nothing wider than the window but the tables, which scroll in their own frame.
    const overflow = Number(await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'));
    expect(overflow).toBeLessThanOrEqual(0);
    await shot(page, 'console-study-narrow', false);
    await page.getByRole('button', { name: 'Menu' }).click();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Silos' }).click();
    await page.getByRole('heading', { name: 'Silos' }).waitFor();
    expect(Number(await page.evaluate('document.documentElement.scrollWidth - window.innerWidth'))).toBeLessThanOrEqual(
      0,
    );
    await shot(page, 'console-silos-narrow', false);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('made no request to any other host and met no script or CSP error', () => {
    expect(outsideRequests).toEqual([]);
    expect(consoleErrors).toEqual([]);
  });
});
