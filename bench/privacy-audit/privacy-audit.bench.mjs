/* global console, process */
// The long version of the agent's empirical privacy audit (issue 13; docs/privacy.md, "Empirical audit"): the real
// task executor run many times on the Cleveland file with a canary record and as many times without, for each worst
// case neighbour (a duplicated training row, an outlier, a mislabeled copy, a held-out copy audited through the noisy
// evaluation release), on the demo plan with one round (q = 0.1, σ derived for ε = 1) and on its full-batch variant
// (q = 1), plus the positive controls (an under-noised pipeline certified against the same claim). Each case reports
// the certified lower bound ε_lb (Clopper–Pearson, 95%, threshold chosen on half the runs and certified on the
// other half) next to the claimed ε. Targets: ε_lb ≤ claimed ε for every honest case; ε_lb > claimed ε for every
// positive control. `--runs=N` sets the runs per world of every case (default: the case's own count below);
// `--only=name,name` runs a subset.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  benchArgs,
  codeVersion,
  machine,
  printTable,
  repoRoot,
  requireBuilt,
  round3,
  target,
  writeReport,
} from '../lib/bench-common.mjs';

const args = benchArgs();
requireBuilt(['apps/agent/dist/privacy-audit/privacy-audit.js', 'libs/dp/dist/noise-worker.js']);
const require = createRequire(import.meta.url);
const { runPrivacyAudit } = require(resolve(repoRoot, 'apps/agent/dist/privacy-audit/privacy-audit.js'));
const { heartDiseaseAuditPlan, underNoisedPlan } = require(
  resolve(repoRoot, 'apps/agent/dist/privacy-audit/audit-plan.util.js'),
);
const ml = require(resolve(repoRoot, 'libs/ml/dist/index.js'));

const dataFile = 'processed.cleveland.data';
const text = readFileSync(resolve(ml.heartDiseaseDataDirectory(), dataFile), 'utf8');
const demo = heartDiseaseAuditPlan();
const fullBatch = heartDiseaseAuditPlan({ samplingRate: 1 });

// Runs per world in full mode, chosen from the measured cost per run (about 160 ms on the demo plan, 35 ms full
// batch, 250 ms for an evaluation task, whose cost is mostly the accountant) to keep the whole bench near 20 minutes
// on an idle 2-core VM.
const cases = [
  { name: 'demo-duplicate', plan: demo, planName: 'demo, q = 0.1', canary: 'duplicate', runs: 1000 },
  { name: 'demo-outlier', plan: demo, planName: 'demo, q = 0.1', canary: 'outlier', runs: 1000 },
  { name: 'demo-mislabeled', plan: demo, planName: 'demo, q = 0.1', canary: 'mislabeled', runs: 250 },
  { name: 'demo-held-out', plan: demo, planName: 'demo, q = 0.1', canary: 'held-out', runs: 400 },
  { name: 'full-batch-duplicate', plan: fullBatch, planName: 'full batch, q = 1', canary: 'duplicate', runs: 1500 },
  { name: 'full-batch-outlier', plan: fullBatch, planName: 'full batch, q = 1', canary: 'outlier', runs: 1500 },
  {
    name: 'control-full-batch-duplicate',
    plan: fullBatch,
    planName: 'full batch, q = 1',
    canary: 'duplicate',
    runs: 300,
    control: true,
  },
  {
    name: 'control-demo-held-out',
    plan: demo,
    planName: 'demo, q = 0.1',
    canary: 'held-out',
    runs: 150,
    control: true,
  },
];
const smokeCases = new Set(['demo-duplicate', 'demo-held-out', 'control-full-batch-duplicate']);
const only = args.value('only')?.split(',');
const runsOverride = args.value('runs') === undefined ? undefined : Number(args.value('runs'));
const selected = cases.filter((c) => (only ? only.includes(c.name) : args.smoke ? smokeCases.has(c.name) : true));
if (selected.length === 0) {
  console.error(`no case selected; cases: ${cases.map((c) => c.name).join(', ')}`);
  process.exit(2);
}

const backend = await ml.selectBackend();
const machineAtStart = machine({ tfjsBackend: backend });
const started = Date.now();
const results = [];
for (const c of selected) {
  const runsPerWorld = args.smoke ? 4 : (runsOverride ?? c.runs);
  console.log(`${c.name}: ${runsPerWorld} runs per world (${c.planName}${c.control ? ', positive control' : ''})…`);
  const r = await runPrivacyAudit({
    data: { text, name: dataFile },
    canary: c.canary,
    runsPerWorld,
    plan: c.plan,
    ...(c.control ? { pipelinePlan: underNoisedPlan(c.plan) } : {}),
    onRun: (done, total) => {
      if (done % 200 === 0 && done < total) console.log(`  ${done}/${total}`);
    },
  });
  results.push({
    name: c.name,
    plan: c.planName,
    canary: c.canary,
    canaryDescription: r.canary.description,
    release: r.release,
    positiveControl: r.positiveControl,
    runsPerWorld,
    confidence: r.confidence,
    delta: r.delta,
    noiseMultiplier: round3(r.mechanism.noiseMultiplier),
    evaluationNoiseStddev: round3(r.mechanism.evaluationNoiseStddev),
    epsilonLowerBound: round3(r.audit.epsilonLowerBound),
    claimedEpsilon: round3(r.claimedEpsilon),
    pipelineEpsilon: round3(r.pipelineEpsilon),
    counts: r.audit.counts,
    falsePositiveRateUpper: round3(r.audit.falsePositiveRateUpper),
    falseNegativeRateUpper: round3(r.audit.falseNegativeRateUpper),
    selectionHalfBound: round3(r.audit.selectionHalfBound),
    scoresIn: r.scoresIn,
    scoresOut: r.scoresOut,
    perRunMs: round3(r.perRunMs),
    wallTimeS: round3(r.wallTimeMs / 1000),
  });
  const last = results[results.length - 1];
  console.log(
    `  ε_lb ${last.epsilonLowerBound} vs claimed ${last.claimedEpsilon} (${last.perRunMs} ms per run, ${last.wallTimeS} s)`,
  );
}

printTable(results, [
  'name',
  'runsPerWorld',
  'epsilonLowerBound',
  'claimedEpsilon',
  'pipelineEpsilon',
  'perRunMs',
  'wallTimeS',
]);

const targets = Object.fromEntries(
  results.map((r) => [
    r.name,
    r.positiveControl
      ? {
          ...target(r.epsilonLowerBound - r.claimedEpsilon, 0, {
            description: `positive control: ε_lb − claimed ε must be > 0 (an under-noised pipeline must be detected)`,
          }),
          met: r.epsilonLowerBound > r.claimedEpsilon,
        }
      : target(r.epsilonLowerBound, r.claimedEpsilon, {
          atMost: true,
          description: `certified ε lower bound at ${r.confidence * 100}% must not exceed the claimed ε`,
        }),
  ]),
);
const file = writeReport(
  'privacy-audit',
  {
    benchmark: 'privacy-audit',
    mode: args.smoke ? 'smoke' : 'full',
    command: `npm run bench:privacy-audit${args.smoke ? ' -- --smoke' : ''}`,
    date: new Date().toISOString(),
    code: codeVersion(),
    machine: machineAtStart,
    loadAverageAtEnd: machine().loadAverage,
    method:
      'real TaskExecutor per run (fresh state directory, StudyDatasets on a real file, ledger, release store, exact ' +
      'lattice noise from the CSPRNG), in-memory hub; runs alternate with/without the canary; score = projection of ' +
      "the update on the canary's normalised negative gradient at the base model (held-out: the noisy count of its " +
      'histogram cell); bestThresholdAudit (threshold on even runs, Clopper–Pearson certification on odd runs)',
    data: dataFile,
    wallTimeS: round3((Date.now() - started) / 1000),
    cases: results,
    targets,
    pass: Object.values(targets).every((t) => t.met === true),
  },
  args,
);
console.log(`report: ${file}`);
