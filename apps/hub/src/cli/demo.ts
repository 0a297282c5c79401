#!/usr/bin/env node
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { Command } from 'commander';
import { modelSpecOf, releasedWithoutDp, type StudyPlan } from '@tessera/protocol';
import { loadHubConfig } from '../config/hub-config';
import { startHub, type RunningHub } from '../hub';
import type { RoundView } from '../rounds/rounds-query.service';
import type { EnrollmentIssued } from '../silos/silos.service';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyPrivacyView } from '../studies/studies.controller';
import type { StudyView } from '../studies/studies.service';
import { pooledBaseline } from './demo-baseline';

/** The four hospitals of UCI Heart Disease, each a silo with its own file (libs/ml/data/heart-disease). */
const HOSPITALS = [
  { key: 'cleveland', name: 'Cleveland Clinic Foundation', file: 'processed.cleveland.data' },
  { key: 'hungarian', name: 'Hungarian Institute of Cardiology', file: 'processed.hungarian.data' },
  { key: 'switzerland', name: 'University Hospitals Zurich and Basel', file: 'processed.switzerland.data' },
  { key: 'va', name: 'V.A. Medical Center Long Beach', file: 'processed.va.data' },
] as const;

const REPO = resolve(__dirname, '../../../..');
const AGENT = join(REPO, 'apps/agent/dist/main.js');
const DATA = join(REPO, 'libs/ml/data/heart-disease');

interface Options {
  dataDir: string;
  json?: string;
  quiet?: boolean;
  privacy: 'none' | 'dp-sgd';
  epsilon: string;
}

/**
 * The true test accuracy of the final model at each hospital. Under DP the hub only ever receives a noisy
 * evaluation; the demo, a simulation that holds all four files, measures the model itself: the parameters as the
 * hub exports them, each hospital's test split prepared with @tessera/ml exactly as its agent prepares it.
 */
async function trueAccuracy(
  plan: StudyPlan,
  parameters: Float32Array,
  files: Record<string, string>,
): Promise<Record<string, number>> {
  const ml = await import('@tessera/ml');
  await ml.selectBackend();
  const spec = ml.parseModelSpec(modelSpecOf(plan));
  const out: Record<string, number> = {};
  for (const [key, file] of Object.entries(files)) {
    const data = ml.prepareTabularData(readFileSync(join(DATA, file), 'utf8'), plan.schema);
    out[key] = (await ml.evaluate(spec, parameters, data.test.x, data.test.y)).accuracy;
  }
  return out;
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

function log(opts: Options, line: string): void {
  if (!opts.quiet) process.stdout.write(line + '\n');
}

/** Runs the agent CLI as its own process (as the Docker image would), resolving with its output. */
function agent(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [AGENT, ...args], {
      env: { PATH: process.env.PATH, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', fail);
    child.on('exit', (code) => done({ code, out }));
  });
}

async function adminApi<T>(hub: RunningHub, token: string, method: string, path: string, json?: unknown): Promise<T> {
  const res = await fetch(`${hub.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(json !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  const type = res.headers.get('content-type') ?? '';
  return (type.includes('json') ? await res.json() : Buffer.from(await res.arrayBuffer())) as T;
}

async function main(): Promise<void> {
  const opts = new Command('demo')
    .description('A complete federated study across four hospitals on the embedded database.')
    .option('--data-dir <dir>', 'where the demo keeps the hub and silo state (wiped at start)', '.tessera/demo')
    .option('--json <file>', 'also write the final table as JSON')
    .option('--quiet', 'print only the final table')
    .option('--privacy <mode>', 'none, or dp-sgd (example-level differential privacy)', 'dp-sgd')
    .option('--epsilon <e>', 'target ε for the whole study with dp-sgd (δ = 1e-5)', '1')
    .parse(process.argv)
    .opts<Options>();
  const started = Date.now();
  const root = resolve(opts.dataDir);
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });

  const password = randomBytes(12).toString('base64url');
  const hub = await startHub(
    loadHubConfig({
      TESSERA_DATA_DIR: join(root, 'hub'),
      TESSERA_PORT: '0',
      TESSERA_SILO_PORT: '0',
      TESSERA_ENROLL_PORT: '0',
      TESSERA_LOG_LEVEL: process.env.TESSERA_LOG_LEVEL ?? 'warn',
      TESSERA_ADMIN_USERNAME: 'admin',
      TESSERA_ADMIN_PASSWORD: password,
    }),
    { logger: false },
  );
  const agents: ChildProcess[] = [];
  try {
    log(
      opts,
      `hub: ${hub.url} (embedded PostgreSQL in ${relative(process.cwd(), join(root, 'hub'))}), ready in ${Date.now() - started} ms`,
    );
    const login = (await (
      await fetch(`${hub.url}/api/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin', password }),
      })
    ).json()) as { accessToken: string };
    const token = login.accessToken;

    // Each hospital: registered by the administrator, enrolled by its own agent process with its own state.
    const silos = await Promise.all(
      HOSPITALS.map(async (h) => {
        const issued = await adminApi<EnrollmentIssued>(hub, token, 'POST', '/api/silos', {
          name: h.name,
          contact: `it@${h.key}.example`,
        });
        const dir = join(root, 'silos', h.key);
        mkdirSync(join(dir, 'data'), { recursive: true });
        copyFileSync(join(DATA, h.file), join(dir, 'data', h.file));
        const env = { TESSERA_STATE_DIR: join(dir, 'state'), TESSERA_DATA_FILE: join(dir, 'data', h.file) };
        const enrolled = await agent(['enroll', '--bundle', issued.bundleText], env);
        if (enrolled.code !== 0) throw new Error(`${h.name}: enrollment failed: ${enrolled.out}`);
        return { ...h, id: issued.silo.id, env };
      }),
    );
    log(opts, `silos: ${silos.length} hospitals enrolled over mutual TLS, each with its own key and certificate`);

    if (opts.privacy !== 'dp-sgd' && opts.privacy !== 'none') {
      throw new Error(`--privacy must be none or dp-sgd, not ${String(opts.privacy)}`);
    }
    // Example-level DP-SGD: unit one patient record; σ derived from the target for the whole study. The plan's
    // release follows the privacy mode (defaultRelease): under DP only a noisy evaluation of the final model and no
    // record counts leave the silos; without DP exact metrics and counts, listed as released without DP.
    const plan = heartDiseasePlan(
      silos.map((s) => s.id),
      opts.privacy === 'dp-sgd'
        ? {
            privacy: {
              mode: 'dp-sgd',
              unit: 'record',
              targetEpsilon: Number(opts.epsilon),
              delta: 1e-5,
              clipNorm: 1,
              noiseMultiplier: 'derive',
              samplingRate: 0.1,
            },
          }
        : {},
    );
    const study = await adminApi<StudyView>(hub, token, 'POST', '/api/studies', { plan });
    await adminApi(hub, token, 'POST', `/api/studies/${study.id}/submit`);
    // Each data steward approves the exact plan at their own agent.
    for (const s of silos) {
      const r = await agent(['studies', 'approve', study.id, '--plan-hash', study.planHash], s.env);
      if (r.code !== 0) throw new Error(`${s.name}: approval failed: ${r.out}`);
    }
    log(
      opts,
      `study: ${plan.name} (${study.id}), plan hash ${study.planHash.slice(0, 16)}…, approved by all ${silos.length} stewards`,
    );

    const exits = silos.map((s) => {
      const child = spawn(process.execPath, [AGENT, 'run', '--exit-after-study', study.id, '--poll-wait', '5'], {
        env: { PATH: process.env.PATH, ...s.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      agents.push(child);
      let out = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
      return new Promise<{ name: string; code: number | null; out: string }>((done) =>
        child.on('exit', (code) => done({ name: s.name, code, out })),
      );
    });
    await adminApi(hub, token, 'POST', `/api/studies/${study.id}/start`);
    const trainingStarted = Date.now();

    // Progress: one line per closed round, as it closes.
    const shown = new Set<string>();
    let final: StudyView;
    for (;;) {
      final = await adminApi<StudyView>(hub, token, 'GET', `/api/studies/${study.id}`);
      const rounds = await adminApi<RoundView[]>(hub, token, 'GET', `/api/studies/${study.id}/rounds`);
      for (const r of rounds.filter((x) => x.status !== 'open')) {
        const key = `${r.number}.${r.attempt}`;
        if (shown.has(key)) continue;
        shown.add(key);
        const acc = r.summary?.evaluation.accuracy.unweighted;
        log(
          opts,
          `round ${String(r.number).padStart(2)} ${r.kind === 'train' ? 'trained ' : 'evaluated'} ${r.status}: ` +
            `${r.summary?.reported ?? 0}/${r.participants.length} silos, mean accuracy of the model it started from ` +
            (acc === null || acc === undefined
              ? '— (not released)'
              : `${acc.toFixed(3)}${r.summary?.evaluation.noisy ? ' (noisy DP estimate)' : ''}`),
        );
      }
      if (['completed', 'failed', 'stopped'].includes(final.status)) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    const agentResults = await Promise.all(exits);
    const trainingMs = Date.now() - trainingStarted;
    if (final.status !== 'completed') throw new Error(`the study ${final.status}: ${final.endReason ?? ''}`);
    const failedAgents = agentResults.filter((a) => a.code !== 0);
    if (failedAgents.length)
      throw new Error(`agents failed: ${failedAgents.map((a) => `${a.name}\n${a.out}`).join('\n')}`);

    // Results: the final model's true accuracy at each hospital, measured here on the model the hub exports, beside
    // what the hub itself learned from the evaluation round (a noisy DP estimate under DP), and the pooled baseline.
    const files = Object.fromEntries(HOSPITALS.map((h) => [h.key, h.file]));
    const parameters = await adminApi<Buffer>(hub, token, 'GET', `/api/studies/${study.id}/model/parameters.f32`);
    const finalParameters = new Float32Array(new Uint8Array(parameters).buffer.slice(0));
    const perHospital = await trueAccuracy(plan, finalParameters, files);
    const meanAccuracy = mean(Object.values(perHospital));
    const rounds = await adminApi<RoundView[]>(hub, token, 'GET', `/api/studies/${study.id}/rounds`);
    const evaluation = rounds.find((r) => r.kind === 'evaluate' && r.status === 'closed');
    const reportedOf = (s: { id: string }) => evaluation?.participants.find((p) => p.siloId === s.id)?.evaluation;
    const hubNoisy = silos.some((s) => reportedOf(s)?.noisy === true);
    const hubPerHospital = Object.fromEntries(silos.map((s) => [s.key, reportedOf(s)?.accuracy ?? null]));
    const hubValues = Object.values(hubPerHospital).filter((v): v is number => v !== null);
    const hubMean = hubValues.length ? mean(hubValues) : null;
    const baseline = await pooledBaseline(plan, DATA, files);

    // The administrator downloads the final model in both formats.
    const modelDir = join(root, 'models');
    mkdirSync(modelDir, { recursive: true });
    const models: Record<string, string> = {};
    for (const file of ['model.json', 'weights.bin', 'model.onnx'] as const) {
      const body = await adminApi<unknown>(hub, token, 'GET', `/api/studies/${study.id}/model/${file}`);
      const path = join(modelDir, file);
      writeFileSync(path, Buffer.isBuffer(body) ? body : JSON.stringify(body));
      models[file] = relative(process.cwd(), path);
    }
    // ---- compliance report (docs/audit.md): report.pdf and report.json through the API, then the offline verifier ----
    const reportDir = join(root, 'reports');
    mkdirSync(reportDir, { recursive: true });
    const reports = { pdf: join(reportDir, 'report.pdf'), json: join(reportDir, 'report.json') };
    for (const format of ['pdf', 'json'] as const) {
      const res = await fetch(`${hub.url}/api/studies/${study.id}/report.${format}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      if (!res.ok) throw new Error(`report.${format}: ${res.status} ${await res.text()}`);
      writeFileSync(reports[format], Buffer.from(await res.arrayBuffer())); // the exact bytes the hub signed
      reports[format] = relative(process.cwd(), reports[format]);
    }
    log(opts, `compliance report: ${reports.pdf}, ${reports.json}`);
    const verdict = await new Promise<{ code: number | null; out: string }>((done, fail) => {
      const child = spawn(process.execPath, [join(REPO, 'libs/audit/dist/verify-cli.js'), reports.json], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (out += c.toString()));
      child.on('error', fail);
      child.on('exit', (code) => done({ code, out }));
    });
    log(opts, `tessera-verify: ${verdict.out.split('\n')[0]}`);
    if (verdict.code !== 0)
      throw new Error(`the compliance report does not verify (exit ${verdict.code}):\n${verdict.out}`);
    // ---- end compliance report ----
    const ledger = await adminApi<StudyPrivacyView>(hub, token, 'GET', `/api/studies/${study.id}/privacy`);
    const m = ledger.mechanism;
    const privacy = Object.fromEntries(
      silos.map((s) => {
        const b = ledger.budgets.find((x) => x.siloId === s.id);
        return [
          s.key,
          m && b && b.trainingRounds + b.evaluationReleases > 0
            ? {
                // The hub's own figure (its charges, or the silo's reports if larger), beside the silo's report.
                epsilon: b.epsilon,
                reportedEpsilon: b.reportedEpsilon,
                delta: m.delta,
                unit: m.unit,
                accountant: m.accountant,
                noiseMultiplier: m.noiseMultiplier,
                clipNorm: m.clipNorm,
                samplingRate: m.samplingRate,
                stepsPerRound: m.stepsPerRound,
                rounds: b.trainingRounds,
                evaluationReleases: b.evaluationReleases,
              }
            : null,
        ];
      }),
    );
    const wallMs = Date.now() - started;
    const table = {
      study: { id: study.id, name: plan.name, planHash: study.planHash, rounds: plan.training.rounds },
      // True accuracy of the final model on each hospital's test split (measured by the demo itself).
      accuracy: { perHospital, mean: meanAccuracy },
      // What the hub learned from the evaluation round: under DP a noisy estimate from the silos' noisy releases.
      hubEvaluation: { noisy: hubNoisy, perHospital: hubPerHospital, mean: hubMean },
      noisyMeanAccuracy: hubNoisy ? hubMean : null,
      pooledBaseline: { perHospital: baseline.perHospital, mean: baseline.meanAccuracy, epochs: baseline.epochs },
      gapToPooled: meanAccuracy - baseline.meanAccuracy,
      privacy: { mode: plan.privacy.mode, releasedWithoutDp: releasedWithoutDp(plan), perHospital: privacy },
      wallTimeMs: wallMs,
      trainingTimeMs: trainingMs,
      finalModelSha256: final.currentModelHash,
      models,
      reports, // compliance report (docs/audit.md)
      hubDataDir: relative(process.cwd(), join(root, 'hub')),
    };
    const pad = (s: string, n: number) => s.padEnd(n);
    const hubColumn = hubNoisy ? 'hub (noisy DP estimate)' : 'hub (as reported)';
    const figure = (v: number | null | undefined) => (v === null || v === undefined ? '—' : v.toFixed(3));
    const lines = [
      '',
      'Accuracy of the final model on each hospital\'s test split: "federated" is its true accuracy, measured by this',
      `demo on the exported model; "${hubColumn}" is what the hub itself learned from the evaluation round.`,
      `${pad('hospital', 40)} ${pad('federated', 10)} ${pad('pooled', 8)} ${hubColumn}`,
      ...silos.map(
        (s) =>
          `${pad(s.name, 40)} ${pad(figure(perHospital[s.key]), 10)} ${pad(figure(baseline.perHospital[s.key]), 8)} ${figure(hubPerHospital[s.key])}`,
      ),
      `${pad('mean (unweighted)', 40)} ${pad(meanAccuracy.toFixed(3), 10)} ${pad(baseline.meanAccuracy.toFixed(3), 8)} ${figure(hubMean)}`,
      '',
      ...(plan.privacy.mode === 'none'
        ? ['privacy: none (no differential privacy)']
        : [
            `${pad('privacy spent', 40)} ε (hub) ε (silo) δ       unit    σ       C  q    steps evals accountant`,
            ...silos.map((s) => {
              const p = privacy[s.key];
              return p
                ? `${pad(s.name, 40)} ${p.epsilon.toFixed(4)}  ${p.reportedEpsilon === null ? '—     ' : p.reportedEpsilon.toFixed(4)}   ${p.delta}  ${p.unit}  ${p.noiseMultiplier.toFixed(3)}   ${p.clipNorm}  ${p.samplingRate}  ${p.stepsPerRound * p.rounds}   ${p.evaluationReleases}     ${p.accountant}`
                : `${pad(s.name, 40)} (nothing spent)`;
            }),
          ]),
      `released without differential privacy: ${releasedWithoutDp(plan).length === 0 ? 'nothing' : releasedWithoutDp(plan).join('; ')}`,
      '',
      `federated − pooled: ${(100 * table.gapToPooled).toFixed(1)} points; ${plan.training.rounds} rounds in ${(trainingMs / 1000).toFixed(1)} s; whole demo ${(wallMs / 1000).toFixed(1)} s`,
      `final model sha256 ${final.currentModelHash}`,
      `models: ${Object.values(models).join(', ')}`,
      '',
      `Open the console on this data: TESSERA_DATA_DIR=${table.hubDataDir} npm run hub   (sign in as admin / ${password})`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
    if (opts.json) writeFileSync(opts.json, JSON.stringify(table, null, 2) + '\n');
  } finally {
    for (const a of agents) if (a.exitCode === null) a.kill('SIGTERM');
    await hub.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
