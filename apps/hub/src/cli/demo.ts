#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { inspect } from 'node:util';
import { Command } from 'commander';
import { MetricsService } from '../metrics/metrics.service';
import { DemoAdmin, startDemoHub } from './demo-hub';
import { demoTable, formatDemoSummary } from './demo-report';
import { downloadModels, fetchVerifiedReports, measureAccuracy, privacySpent } from './demo-results';
import { runStudy, startAgents } from './demo-run';
import { approveStudy, createStudy, demoPlan, enrollSilos, prepareDataDir } from './demo-study';
import { runDigitsDemo } from './demo-digits-main';

// A complete federated study on one machine: a hub on the embedded database, four hospitals' agents as their own
// processes, the study from plan to compliance report, then the final table. Each step is a function of its own
// (demo-study, demo-run, demo-results, demo-report); main only puts them in order.

interface DemoOptions {
  dataDir: string;
  json?: string;
  quiet?: boolean;
  study: 'heart-disease' | 'digits';
  privacy?: string;
  epsilon?: string;
  rounds?: string;
  personalize?: string;
  localBaseline?: boolean;
  personalizeMethod?: string;
  seed?: string;
}

function parseOptions(argv: string[]): DemoOptions {
  return new Command('demo')
    .description('A complete federated study across four hospitals on the embedded database.')
    .option('--data-dir <dir>', 'where the demo keeps the hub and silo state (wiped at start)', '.tessera/demo')
    .option('--json <file>', 'also write the final table as JSON')
    .option('--quiet', 'print only the final table')
    .option(
      '--study <name>',
      'heart-disease (four hospitals, tabular), or digits (eight sites, images)',
      'heart-disease',
    )
    .option(
      '--privacy <mode>',
      'none, dp-sgd (example-level differential privacy), or distributed-dp (heart-disease: silo-level DP, noise ' +
        'added by each hospital under secure aggregation); digits also both (default dp-sgd; digits both)',
    )
    .option(
      '--epsilon <e>',
      'target ε for the whole study with dp-sgd or distributed-dp, δ = 1e-5 (default 1; digits 3)',
    )
    .option(
      '--rounds <n>',
      "digits only: training rounds of every study (default: each preset's, 5 without DP, 10 with DP-SGD)",
    )
    .option('--personalize <epochs>', 'heart-disease: fine-tune the final model at each hospital for this many epochs')
    .option('--local-baseline', 'heart-disease, with --personalize: also a local-only model at each hospital')
    .option(
      '--personalize-method <method>',
      "heart-disease, with --personalize: 'fine-tune' (default) or 'select' (each hospital cross-validates its choice on its training split; no DP)",
    )
    .option('--seed <n>', "heart-disease: the plan's initSeed (initial model and shuffling; default 42)")
    .parse(argv)
    .opts<DemoOptions>();
}

function positiveInteger(value: string, option: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${option} must be a whole number, not ${value}`);
  return n;
}

function personalizeMethodOf(value: string): 'fine-tune' | 'select' {
  if (value !== 'fine-tune' && value !== 'select') {
    throw new Error(`--personalize-method must be fine-tune or select, not ${value}`);
  }
  return value;
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv);
  const log = (line: string) => {
    if (!opts.quiet) process.stdout.write(line + '\n');
  };
  if (opts.study === 'digits') {
    await runDigitsDemo({
      dataDir: opts.dataDir,
      privacy: opts.privacy ?? 'both',
      epsilon: Number(opts.epsilon ?? '3'),
      ...(opts.rounds === undefined ? {} : { rounds: Number(opts.rounds) }),
      ...(opts.json ? { json: opts.json } : {}),
      log,
    });
    return;
  }
  if (opts.study !== 'heart-disease')
    throw new Error(`--study must be heart-disease or digits, not ${String(opts.study)}`);
  const started = Date.now();
  const root = prepareDataDir(opts.dataDir);
  const password = randomBytes(12).toString('base64url');
  const hub = await startDemoHub(root, password);
  const agents: ChildProcess[] = [];
  // Each phase's end, to say where the wall time went (DemoTable.phasesMs).
  const marks = [Date.now()];
  try {
    log(
      `hub: ${hub.url} (embedded PostgreSQL in ${relative(process.cwd(), join(root, 'hub'))}), ready in ${Date.now() - started} ms`,
    );
    const admin = await DemoAdmin.signIn(hub, password);
    const silos = await enrollSilos(admin, root);
    marks.push(Date.now());
    log(`silos: ${silos.length} hospitals enrolled over mutual TLS, each with its own key and certificate`);

    const plan = demoPlan(silos, opts.privacy ?? 'dp-sgd', opts.epsilon ?? '1', {
      ...(opts.personalize !== undefined
        ? { personalizeEpochs: positiveInteger(opts.personalize, '--personalize') }
        : {}),
      ...(opts.localBaseline ? { localBaseline: true } : {}),
      ...(opts.personalizeMethod !== undefined
        ? { personalizeMethod: personalizeMethodOf(opts.personalizeMethod) }
        : {}),
      ...(opts.seed !== undefined ? { seed: positiveInteger(opts.seed, '--seed') } : {}),
    });
    const study = await createStudy(admin, plan);
    // The daemons load (Node, TensorFlow.js, state) while the stewards approve.
    const exits = startAgents(study.id, silos, agents);
    await approveStudy(study, silos);
    marks.push(Date.now());
    log(
      `study: ${plan.name} (${study.id}), plan hash ${study.planHash.slice(0, 16)}…, approved by all ${silos.length} stewards`,
    );

    const { final, trainingMs, secureAggregationCost } = await runStudy(admin, study.id, exits, log);
    marks.push(Date.now());
    const accuracy = await measureAccuracy(admin, study.id, plan, silos);
    const models = await downloadModels(admin, study.id, root);
    const reports = await fetchVerifiedReports(admin, study.id, root, log);
    const privacy = await privacySpent(admin, study.id, silos);
    const wire = await hub.app.get(MetricsService).wireTotals();
    const [hubReady, enrolled, approved, ended] = marks as [number, number, number, number];
    const table = demoTable({
      phasesMs: {
        hub: hubReady - started,
        enrollment: enrolled - hubReady,
        approvals: approved - enrolled,
        rounds: ended - approved,
        after: Date.now() - ended,
      },
      secureAggregationCost,
      study,
      plan,
      final,
      accuracy,
      privacy,
      models,
      reports,
      wallMs: Date.now() - started,
      trainingMs,
      wire,
      hubDataDir: relative(process.cwd(), join(root, 'hub')),
    });
    process.stdout.write(formatDemoSummary(table, silos, password));
    if (opts.json) writeFileSync(opts.json, JSON.stringify(table, null, 2) + '\n');
  } finally {
    for (const a of agents) if (a.exitCode === null) a.kill('SIGTERM');
    await hub.close();
  }
}

main().catch((err: unknown) => {
  // fetch's "fetch failed" says why only in its cause (a refused or reset connection, a TLS error): print it too.
  const cause = (err as { cause?: unknown }).cause;
  const why =
    cause === undefined
      ? ''
      : `\ncaused by: ${cause instanceof Error ? (cause.stack ?? cause.message) : inspect(cause)}`;
  process.stderr.write(`demo: ${(err as Error).stack ?? String(err)}${why}\n`);
  process.exit(1);
});
