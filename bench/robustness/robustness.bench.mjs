/* global console */
// Robust aggregation under attack (issue 20, item 3): federated runs of the heart-disease study (the demo's plan:
// logistic regression, 10 rounds × 5 local epochs, FedAdam on the server) on the real UCI data of the four hospitals
// (heart-4; heart-8 splits each hospital in two), and of the digits demo's MNIST images dealt with label skew to 8
// or 32 silos (digits-8, digits-32; the ten classes, MLP 784-32-10), with f of the n silos attacking, for every
// attack × defence pair and the attack-free run of the same defence; then screening's false flags and detections by threshold.
//
//   npm run bench:robustness [-- --smoke] [-- --configs=heart-4,heart-8,digits-8,digits-32]
//                            [-- --attacks=sign-flip,…] [-- --defences=fedavg,median,…] [-- --clean-runs=20]
//                            [-- --attack-runs=5] [-- --thresholds=3.5,5,7,10] [-- --threshold=3.5] [-- --rounds=N]
//                            [-- --seeds=N: every cell the mean of N seeded runs, per-seed values kept]
//                            [-- --out=FILE]
//                            [-- --defences=trimmed-mean-f,trimmed-mean-f+norm-bound,multi-krum-n-f(+screening):
//                                opt-in, run only when named: β = f/n, the same behind the norm bound, Multi-Krum
//                                averaging n − f]
//                            [-- --calibration-only: no defence table, only screening's attack-free and attack runs]
//                            [-- --first-seed=N: the calibration's run seeds start at N (default 1)]
//                            [-- --dump-statistics=FILE: every calibration round's statistics, to replay other rules]
//
// The issue's screening check, 20 attack-free runs of the heart-disease demo at the default threshold (the JSON's
// calibration rows, with `falseFlagsBy`: which silo, statistic and round each false flag fell on):
//   npm run bench:robustness -- --configs=heart-4 --calibration-only
//
// Imports the BUILT workspace (libs/ml, libs/aggregation, the hub's heartDiseasePlan and the digits demo's dealer).
// Writes bench/results/robustness.json (smoke: robustness.smoke.json). The figures of record were taken as one
// run per study group: --configs=heart-4,heart-8; --configs=digits-8 --out=bench/results/robustness-digits.json;
// --configs=digits-32 --out=bench/results/robustness-digits32.json.
//
// Method. Each silo trains with @tessera/ml's trainLocal exactly as an agent does (the plan's epochs, batch size,
// learning rate; its own keyed train/test split of its hospital's file) and uploads its delta; the round is closed as
// the hub closes it (apps/hub/src/rounds/round-aggregation.ts): norm bound, then FedAvg weighted by example counts or
// the plan's robust aggregator (@tessera/aggregation's aggregateRobust, unweighted), then screening of the raw
// updates against that aggregate and the previous global update, and with `exclude` the round aggregated again
// without the flagged updates — or not at all when fewer than minSilosPerRound remain — then one FedAdam step. The
// transport (TLS, frames, the database) is left out: it does not change a single number of the model. Attackers run
// the same training and then replace what they upload:
//   sign-flip     −1 × its honest delta
//   scale-x10     10 × its honest delta (a boosted update, as in model replacement)
//   gaussian      random direction, norm 10 × its honest delta's norm
//   label-flip    honest training on its own data with every label flipped (heart: y → 1 − y; digits: y → 9 − y)
//   alie          "a little is enough" (Baruch et al. 2019): the honest updates' coordinate mean − z·std (z = 1),
//                 an omniscient attacker that knows the honest updates of the round; every attacker sends it
//   backdoor      trains on its data plus a triggered copy of every record labelled with the target class 0 (heart:
//                 feature `oldpeak` set to +4 in encoded units, "no disease"; digits: a 4×4 white square, digit 0);
//                 success = share of the honest silos' test records whose true label is not the target that the
//                 final model, given the trigger, assigns to the target (heart: the sick called healthy; digits:
//                 digits 1–9 read as 0). The same figure on the attack-free run is what the trigger alone does.
//   backdoor-x4   the backdoor delta boosted ×n (model replacement, Bagdasaryan et al. 2020)
// Figures: the final model's accuracy (mean over the HONEST silos' test splits, and pooled over their records), the
// AUC of their pooled test records and the mean loss, beside the same
// defence's attack-free run; screening's flags per silo-round (honest and attacker). All seeded: the figures are
// the same on every run on the same build.
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
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

const require = createRequire(import.meta.url);
requireBuilt([
  'libs/ml/dist/index.js',
  'libs/aggregation/dist/index.js',
  'apps/hub/dist/studies/heart-disease-plan.js',
]);
const ml = require('@tessera/ml');
const agg = require('@tessera/aggregation');
const { modelSpecOf, tabularSchemaOf } = require('@tessera/protocol');
const { heartDiseasePlan } = require(resolve(repoRoot, 'apps/hub/dist/studies/heart-disease-plan.js'));

const args = benchArgs();
const { smoke } = args;
const DATA_DIR = args.value('data') ?? '/work/shared/data/heart-disease';
const HOSPITALS = [
  { key: 'cleveland', file: 'processed.cleveland.data' },
  { key: 'hungarian', file: 'processed.hungarian.data' },
  { key: 'switzerland', file: 'processed.switzerland.data' },
  { key: 'va', file: 'processed.va.data' },
];
const TRIGGER_FEATURE = 'oldpeak';
const TRIGGER_VALUE = 4;
const ALIE_Z = 1;

/**
 * Study configurations: which silos, which attack. heart-8 deals each hospital's rows to two silos (seeded);
 * digits-8 deals the 10,000 MNIST digits of the digits demo to 8 silos with label skew Dirichlet(0.5) (the demo's
 * own dealer), the ten classes, an MLP 784-32-10.
 */
const CONFIGS = {
  'heart-4': { kind: 'heart', split: 1, attackers: ['va'] },
  'heart-8': { kind: 'heart', split: 2, attackers: ['va-a', 'hungarian-a'] },
  'digits-8': {
    kind: 'digits',
    silos: 8,
    alpha: 0.5,
    attackers: ['silo-1', 'silo-2'],
    // An MLP run costs ~10× a heart-disease run: by default a subset, and 5 attack-free calibration runs.
    defences: [
      'fedavg',
      'fedavg+screening',
      'fedavg+norm-bound',
      'median',
      'trimmed-mean',
      'krum',
      'multi-krum',
      'geometric-median',
      'geometric-median+screening',
    ],
    attacks: ['sign-flip', 'scale-x10', 'label-flip', 'backdoor', 'backdoor-x4'],
    cleanRuns: 5,
    attackRuns: 1,
  },
};
// The issue's third setting: 20% of 32 silos (6 attackers), the same digits, the same subsets.
CONFIGS['digits-32'] = {
  ...CONFIGS['digits-8'],
  silos: 32,
  attackers: Array.from({ length: 6 }, (_, k) => `silo-${k + 1}`),
};
const PIXELS = 784;
/** The digits trigger: a 4×4 white square near the bottom-right corner (rows and columns 22–25). */
const PATCH = Array.from({ length: 16 }, (_, k) => (22 + (k >> 2)) * 28 + 22 + (k & 3));
/** The backdoor's target class on both studies: heart "no disease" (0), digits the digit 0. */
const TARGET_LABEL = 0;
const DIGIT_CLASSES = 10;
/**
 * The digits model: the image study's ten classes through an MLP 784-32-10 (25,450 parameters), small enough for
 * a 2-core machine to run every attack against every defence (the demo's CNN is ~10× slower per round on wasm).
 */
const DIGITS_SPEC = {
  kind: 'mlp',
  inputDim: PIXELS,
  hiddenLayers: [32],
  activation: 'relu',
  task: 'multiclass',
  classes: DIGIT_CLASSES,
};

/** The digits study's plan (a benchmark plan, not a demo): ten classes, MLP 784-32-10 (DIGITS_SPEC), FedAvg. */
function digitsPlan() {
  const columns = [...Array.from({ length: PIXELS }, (_, i) => `p${i}`), 'label'];
  return {
    name: 'Robustness bench digits',
    purpose: 'Benchmark only: digits 0-9 from 784 pixels, 8 or 32 silos with label skew.',
    model: { kind: 'mlp', hiddenLayers: [32], activation: 'relu' },
    schema: {
      columns,
      features: columns.slice(0, PIXELS).map((name) => ({ name, type: 'numeric' })),
      label: { column: 'label', operator: 'class', classes: Array.from({ length: DIGIT_CLASSES }, (_, k) => `${k}`) },
      missing: 'drop-rows',
      split: { testFraction: 0.2, salt: 'robustness-bench/v1' },
    },
    training: {
      rounds: 10,
      localEpochs: 1,
      batchSize: 32,
      learningRate: 0.1,
      algorithm: 'fedavg',
      serverOptimizer: { kind: 'fedavg', learningRate: 1 },
      initSeed: 42,
    },
    privacy: { mode: 'none' },
    release: { evaluation: { mode: 'exact', rounds: 'every' }, trainingExamples: 'exact' },
    participation: { minSilosPerRound: 8, roundDeadlineSeconds: 3600, maxRoundRetries: 0, onSiloFailure: 'continue' },
    silos: [],
  };
}

/** The digits silos: the demo's label-skewed deal, each silo's digits split 80/20 by a seeded draw. */
function loadDigitSilos(config) {
  const { loadMnistDigits, dealWithLabelSkew } = require(resolve(repoRoot, 'apps/hub/dist/cli/demo-digits-data.js'));
  const keys = Array.from({ length: config.silos }, (_, k) => `silo-${k + 1}`);
  const dealt = dealWithLabelSkew(loadMnistDigits(), keys, config.alpha, 20);
  return dealt.map(({ key, images }, k) => {
    const random = seededRandom(3000 + k);
    const test = images.map(() => random() < 0.2);
    const part = (inTest) => {
      const chosen = images.filter((_, i) => test[i] === inTest);
      const x = new Float32Array(chosen.length * PIXELS);
      chosen.forEach((img, r) => {
        for (let i = 0; i < PIXELS; i += 1) x[r * PIXELS + i] = img.pixels[i] / 255;
      });
      return { x, y: Uint8Array.from(chosen, (img) => img.label), n: chosen.length };
    };
    return { key, train: part(false), test: part(true) };
  });
}

/** Defences: the plan's `aggregation` (null aggregator = FedAvg) and whether the plan screens with exclusion. */
function defences(n, f) {
  const base = {
    fedavg: { aggregator: { kind: 'fedavg' } },
    'fedavg+norm-bound': { aggregator: { kind: 'fedavg' }, normBound: { mode: 'median-multiple', multiplier: 2 } },
    median: { aggregator: { kind: 'coordinate-median' } },
    'trimmed-mean': { aggregator: { kind: 'trimmed-mean', trimFraction: 0.25 } },
    krum: { aggregator: { kind: 'krum', byzantine: f, selected: 1 } },
    'multi-krum': { aggregator: { kind: 'krum', byzantine: f, selected: n - 2 * f } },
    'geometric-median': { aggregator: { kind: 'geometric-median' } },
    // β matched to the study's attacker fraction, β = f/n: trims exactly ⌊βn⌋ = f values from each end of every
    // coordinate, the least trimming that can remove f updates pushing one coordinate the same way (Yin et al. 2018
    // need β ≥ f/n); every further trimmed value is an honest one lost to the label-skewed silos.
    'trimmed-mean-f': { aggregator: { kind: 'trimmed-mean', trimFraction: f / n } },
    // The same with the server's norm bound (2 × the round's median norm) applied to every update before it.
    'trimmed-mean-f+norm-bound': {
      aggregator: { kind: 'trimmed-mean', trimFraction: f / n },
      normBound: { mode: 'median-multiple', multiplier: 2 },
    },
    // Multi-Krum averaging n − f updates, the most the plan check allows (every update but f).
    'multi-krum-n-f': { aggregator: { kind: 'krum', byzantine: f, selected: n - f } },
  };
  const out = {};
  for (const [name, choice] of Object.entries(base)) {
    out[name] = { choice, screening: null };
    out[`${name}+screening`] = { choice, screening: { exclude: true } };
  }
  return out;
}

/** Defences run only when --defences names them (issue 20's digits-32 backdoor target): not in the default tables. */
const OPT_IN = new Set(['trimmed-mean-f', 'trimmed-mean-f+norm-bound', 'multi-krum-n-f']);
const isDefault = (name) => !OPT_IN.has(name.replace(/\+screening$/, ''));

/** The smallest participation.minSilosPerRound the plan check accepts for the defence (docs/aggregation.md). */
function minSilosOf(defence, n) {
  const a = defence.choice.aggregator;
  let min = 1;
  if (a.kind === 'coordinate-median' || a.kind === 'geometric-median') min = 3;
  if (defence.choice.normBound?.mode === 'median-multiple' || defence.screening) min = Math.max(min, 3);
  if (a.kind === 'trimmed-mean') min = Math.max(min, Math.ceil(1 / a.trimFraction));
  if (a.kind === 'krum') min = Math.max(min, 2 * a.byzantine + 3, a.selected + a.byzantine);
  return Math.min(Math.max(min, 2), n);
}

/** Mulberry32 (the demo's dealer), for the seeded deal of heart-8 and the attackers' noise. */
function seededRandom(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const normalOf = (random) => () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());

function loadSilos(plan, split) {
  const schema = tabularSchemaOf(plan);
  const silos = [];
  let featureNames;
  for (const h of HOSPITALS) {
    const prepared = ml.prepareTabularData(readFileSync(join(DATA_DIR, h.file), 'utf8'), schema);
    featureNames = prepared.featureNames;
    if (split === 1) {
      silos.push({ key: h.key, train: prepared.train, test: prepared.test });
      continue;
    }
    const d = prepared.train.x.length / prepared.train.n;
    const deal = (part, seed) => {
      const random = seededRandom(seed);
      const owner = Array.from({ length: part.n }, () => Math.floor(random() * split));
      return Array.from({ length: split }, (_, s) => {
        const rows = owner.flatMap((o, i) => (o === s ? [i] : []));
        const x = new Float32Array(rows.length * d);
        rows.forEach((r, k) => x.set(part.x.subarray(r * d, (r + 1) * d), k * d));
        return { x, y: Uint8Array.from(rows, (r) => part.y[r]), n: rows.length };
      });
    };
    const trains = deal(prepared.train, 1000 + silos.length);
    const tests = deal(prepared.test, 2000 + silos.length);
    for (let s = 0; s < split; s += 1) {
      silos.push({ key: `${h.key}-${'ab'[s]}`, train: trains[s], test: tests[s] });
    }
  }
  return { silos, featureNames };
}

/** A triggered copy of n×d records: heart disease, one feature set to TRIGGER_VALUE; digits, the patch set white. */
function triggerOf(kind, d, column) {
  return (x) => {
    const out = Float32Array.from(x);
    for (let row = 0; row < out.length; row += d) {
      if (kind === 'heart') out[row + column] = TRIGGER_VALUE;
      else for (const p of PATCH) out[row + p] = 1;
    }
    return out;
  };
}

/** The backdoor attacker's training set: its records plus a triggered copy of each, labelled TARGET_LABEL. */
function backdoorSet(train, d, trigger) {
  const x = new Float32Array(2 * train.n * d);
  x.set(train.x, 0);
  x.set(trigger(train.x), train.n * d);
  const y = new Uint8Array(2 * train.n).fill(TARGET_LABEL);
  y.set(train.y, 0);
  return { x, y, n: 2 * train.n };
}

/** The class a model's output rows assign: binary P(y = 1) ≥ 0.5, else the argmax of the k probabilities. */
function classesOf(probabilities, n) {
  const k = probabilities.length / n;
  return Array.from({ length: n }, (_, i) => {
    if (k === 1) return probabilities[i] >= 0.5 ? 1 : 0;
    let best = 0;
    for (let c = 1; c < k; c += 1) if (probabilities[i * k + c] > probabilities[i * k + best]) best = c;
    return best;
  });
}

const norm = (u) => Math.sqrt(u.reduce((s, x) => s + x * x, 0));

function weightedMean(updates, weights) {
  const total = weights.reduce((a, b) => a + b, 0);
  return Float32Array.from(updates[0], (_, i) => updates.reduce((s, u, k) => s + (weights[k] * u[i]) / total, 0));
}

/** The round's aggregate delta from `updates` (indices into the round's inputs), as the hub computes it. */
function aggregate(choice, updates, weights) {
  if (choice.aggregator.kind === 'fedavg') {
    let inputs = updates;
    if (choice.normBound) {
      const decision = agg.decideNormBound(
        updates.map((u) => norm(u)),
        choice.normBound,
      );
      inputs = updates.map((u, k) => agg.scaleUpdate(u, decision.factors[k]));
    }
    return weightedMean(inputs, weights);
  }
  return agg.aggregateRobust(choice, updates).delta;
}

/** The uploads of a round: honest training everywhere, then each attacker replaces its own. */
async function roundUpdates(ctx, global, round, attack) {
  const { spec, plan, silos, attackers, d, trigger, runSeed } = ctx;
  const updates = [];
  for (let k = 0; k < silos.length; k += 1) {
    const silo = silos[k];
    const attacking = attackers.has(silo.key);
    let data = silo.train;
    if (attacking && attack === 'label-flip') {
      data = { ...data, y: Uint8Array.from(data.y, (v) => ctx.classes - 1 - v) };
    }
    if (attacking && attack.startsWith('backdoor')) data = backdoorSet(data, d, trigger);
    const trained = await ml.trainLocal({
      spec,
      parameters: global,
      x: data.x,
      y: data.y,
      epochs: plan.training.localEpochs,
      batchSize: plan.training.batchSize,
      learningRate: plan.training.learningRate,
      seed: runSeed * 100_003 + round * 101 + k,
    });
    updates.push(trained.delta);
  }
  const random = seededRandom(runSeed * 7919 + round);
  const normal = normalOf(random);
  const honest = updates.filter((_, k) => !attackers.has(silos[k].key));
  let alie;
  if (attack === 'alie') {
    const m = global.length;
    const mean = new Float64Array(m);
    const sq = new Float64Array(m);
    for (const u of honest) for (let i = 0; i < m; i += 1) mean[i] += u[i] / honest.length;
    for (const u of honest) for (let i = 0; i < m; i += 1) sq[i] += (u[i] - mean[i]) ** 2 / honest.length;
    alie = Float32Array.from(mean, (mu, i) => mu - ALIE_Z * Math.sqrt(sq[i]));
  }
  return updates.map((u, k) => {
    if (!attackers.has(silos[k].key)) return u;
    switch (attack) {
      case 'sign-flip':
        return Float32Array.from(u, (x) => -x);
      case 'scale-x10':
        return Float32Array.from(u, (x) => 10 * x);
      case 'gaussian': {
        const g = Float32Array.from(u, () => normal());
        const factor = (10 * norm(u)) / norm(g);
        return Float32Array.from(g, (x) => x * factor);
      }
      case 'alie':
        return Float32Array.from(alie);
      case 'backdoor-x4':
        return Float32Array.from(u, (x) => silos.length * x);
      default:
        return u; // none, label-flip, backdoor: the poisoned training is the attack
    }
  });
}

/** One federated run of the study: returns the honest silos' final metrics and screening's flag counts. */
async function federatedRun(ctx, attack, defence) {
  const { spec, plan, silos, attackers } = ctx;
  const n = silos.length;
  const minSilos = minSilosOf(defence, n);
  const weights = silos.map((s) => s.train.n);
  const t = plan.training;
  const optimizer =
    t.serverOptimizer.kind === 'fedadam'
      ? new agg.FedAdamServerOptimizer({
          length: ctx.parameters,
          serverLearningRate: t.serverOptimizer.learningRate,
          beta1: t.serverOptimizer.beta1,
          beta2: t.serverOptimizer.beta2,
          tau: t.serverOptimizer.tau,
        })
      : new agg.FedAvgServerOptimizer({ length: ctx.parameters, serverLearningRate: t.serverOptimizer.learningRate });
  let global = ml.initialParameters(spec, t.initSeed + ctx.runSeed);
  let previousUpdate;
  const screening = { honestFlags: 0, honestRounds: 0, attackerFlags: 0, attackerRounds: 0, roundsNotAggregated: 0 };
  const flaggedSilos = new Set();
  const recorded = [];
  for (let round = 1; round <= t.rounds; round += 1) {
    const updates = await roundUpdates(ctx, global, round, attack);
    let delta = aggregate(defence.choice, updates, weights);
    if (defence.screening) {
      const report = agg.screenUpdates(
        updates,
        { aggregate: delta, ...(previousUpdate ? { previousUpdate } : {}) },
        { ...ctx.screeningOptions, ...defence.screening },
      );
      recorded.push({
        round,
        statistics: report.updates.map(({ norm, cosineToAggregate, cosineToPrevious }) => ({
          norm,
          cosineToAggregate,
          cosineToPrevious,
        })),
        attackers: silos.flatMap((s, k) => (attackers.has(s.key) && attack !== 'none' ? [k] : [])),
      });
      for (let k = 0; k < n; k += 1) {
        const bad = attackers.has(silos[k].key) && attack !== 'none';
        const flagged = report.flagged.includes(k);
        if (bad) {
          screening.attackerRounds += 1;
          if (flagged) screening.attackerFlags += 1;
        } else {
          screening.honestRounds += 1;
          if (flagged) {
            screening.honestFlags += 1;
            flaggedSilos.add(silos[k].key);
          }
        }
      }
      if (report.excluded.length > 0) {
        const kept = updates.flatMap((u, k) => (report.excluded.includes(k) ? [] : [k]));
        if (kept.length < minSilos) {
          screening.roundsNotAggregated += 1;
          delta = null;
        } else {
          delta = aggregate(
            defence.choice,
            kept.map((k) => updates[k]),
            kept.map((k) => weights[k]),
          );
        }
      }
    }
    if (delta === null) continue; // the round closes short: the global model stays
    const next = optimizer.step(global, delta).weights;
    previousUpdate = Float32Array.from(next, (x, i) => x - global[i]);
    global = next;
  }
  const metrics = [];
  const scores = [];
  const labels = [];
  let triggered = 0;
  let positives = 0;
  for (const silo of silos) {
    if (attackers.has(silo.key)) continue;
    metrics.push(await ml.evaluate(spec, global, silo.test.x, silo.test.y));
    if (ctx.classes === 2) {
      scores.push(...(await ml.predict(spec, global, silo.test.x)));
      labels.push(...Array.from(silo.test.y, (v) => v === 1));
    }
    // The backdoor's victims: records whose true label is not the target, given the trigger.
    const victims = [];
    for (let i = 0; i < silo.test.n; i += 1) if (silo.test.y[i] !== TARGET_LABEL) victims.push(i);
    const x = new Float32Array(victims.length * ctx.d);
    victims.forEach((r, k) => x.set(silo.test.x.subarray(r * ctx.d, (r + 1) * ctx.d), k * ctx.d));
    const predicted = classesOf(await ml.predict(spec, global, ctx.trigger(x)), victims.length);
    triggered += predicted.filter((c) => c === TARGET_LABEL).length;
    positives += victims.length;
  }
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    accuracy: mean(metrics.map((m) => m.accuracy)),
    pooledAccuracy: metrics.reduce((a, m) => a + m.accuracy * m.n, 0) / metrics.reduce((a, m) => a + m.n, 0),
    // Per-silo AUC is undefined on a test split of one class (a half of Switzerland's in heart-8): the pooled AUC
    // ranks every honest test record together. Binary studies only (null on the ten digits).
    auc: ctx.classes === 2 ? ml.rocAuc(scores, labels) : null,
    loss: mean(metrics.map((m) => m.loss)),
    backdoorSuccess: triggered / positives,
    minSilosPerRound: minSilos,
    ...(defence.screening ? { screening: { ...screening, honestSilosFlagged: [...flaggedSilos] } } : {}),
    recorded,
  };
}

/**
 * One cell over `seeds` runs (run seeds 0 … seeds − 1: initialisation and shuffling): the mean of every figure, the
 * per-seed values, and screening's counts summed. With one seed, the run itself.
 */
async function seededRun(ctx, attack, defence, seeds) {
  const runs = [];
  for (let s = 0; s < seeds; s += 1) runs.push(await federatedRun({ ...ctx, runSeed: s }, attack, defence));
  if (seeds === 1) return { ...runs[0], recorded: undefined };
  const mean = (key) => runs.reduce((a, r) => a + r[key], 0) / seeds;
  const out = {
    accuracy: mean('accuracy'),
    pooledAccuracy: mean('pooledAccuracy'),
    auc: runs[0].auc === null ? null : mean('auc'),
    loss: mean('loss'),
    backdoorSuccess: mean('backdoorSuccess'),
    minSilosPerRound: runs[0].minSilosPerRound,
    perSeed: {
      accuracy: runs.map((r) => round3(r.accuracy)),
      pooledAccuracy: runs.map((r) => round3(r.pooledAccuracy)),
      backdoorSuccess: runs.map((r) => round3(r.backdoorSuccess)),
    },
  };
  if (runs[0].screening) {
    const sum = (key) => runs.reduce((a, r) => a + r.screening[key], 0);
    out.screening = {
      honestFlags: sum('honestFlags'),
      honestRounds: sum('honestRounds'),
      attackerFlags: sum('attackerFlags'),
      attackerRounds: sum('attackerRounds'),
      roundsNotAggregated: sum('roundsNotAggregated'),
      honestSilosFlagged: [...new Set(runs.flatMap((r) => r.screening.honestSilosFlagged))],
    };
  }
  return out;
}

async function main() {
  const started = Date.now();
  await ml.selectBackend('wasm');
  const configNames = (args.value('configs') ?? (smoke ? 'heart-4' : 'heart-4,heart-8,digits-8,digits-32')).split(',');
  const allAttacks = (
    args.value('attacks') ??
    (smoke ? 'sign-flip,scale-x10' : 'sign-flip,scale-x10,gaussian,label-flip,alie,backdoor,backdoor-x4')
  ).split(',');
  const seeds = Number(args.value('seeds') ?? 1);
  if (!(Number.isInteger(seeds) && seeds >= 1)) throw new Error(`--seeds must be an integer ≥ 1`);
  const rounds = args.value('rounds') ? Number(args.value('rounds')) : smoke ? 3 : undefined;
  const screeningOptions = {};
  if (args.value('threshold')) screeningOptions.threshold = Number(args.value('threshold'));
  for (const c of configNames) if (!CONFIGS[c]) throw new Error(`unknown configuration ${c} (${Object.keys(CONFIGS)})`);
  const known = ['sign-flip', 'scale-x10', 'gaussian', 'label-flip', 'alie', 'backdoor', 'backdoor-x4'];
  for (const a of allAttacks) if (!known.includes(a)) throw new Error(`unknown attack ${a} (${known})`);

  const results = [];
  const calibration = [];

  const thresholds = (args.value('thresholds') ?? '3.5,5,7,10').split(',').map(Number);
  const refusedAll = [];
  for (const configName of configNames) {
    const config = CONFIGS[configName];
    const attackNames = args.value('attacks') || smoke || !config.attacks ? allAttacks : config.attacks;
    const cleanRuns = Number(args.value('clean-runs') ?? (smoke ? 2 : (config.cleanRuns ?? 20)));
    const attackRuns = Number(args.value('attack-runs') ?? (smoke ? 1 : (config.attackRuns ?? 5)));
    const base = config.kind === 'heart' ? heartDiseasePlan([]) : digitsPlan();
    const plan = { ...base, training: { ...base.training, ...(rounds ? { rounds } : {}) } };
    const spec = ml.parseModelSpec(config.kind === 'heart' ? modelSpecOf(plan) : DIGITS_SPEC);
    const { silos, featureNames } =
      config.kind === 'heart' ? loadSilos(plan, config.split) : { silos: loadDigitSilos(config), featureNames: [] };
    const n = silos.length;
    const f = config.attackers.length;
    const all = defences(n, f);
    const refused = [];
    for (const [name, defence] of Object.entries(all)) {
      try {
        agg.checkAggregationChoice(defence.choice, n);
      } catch (error) {
        delete all[name];
        // An opt-in defence's refusal is reported only when --defences asks for it.
        const asked =
          isDefault(name) ||
          (args.value('defences') ?? '').split(',').some((d) => d.replace(/\+screening$/, '') === name);
        if (!name.endsWith('+screening') && asked)
          refused.push({ config: configName, defence: name, reason: error.message });
      }
    }
    const defenceNames = (
      args.value('defences') ??
      (smoke ? 'fedavg,median+screening' : (config.defences ?? Object.keys(all).filter(isDefault)).join(','))
    )
      .split(',')
      .filter((name) => {
        if (all[name]) return true;
        const why = refused.find((r) => r.defence === name.replace(/\+screening$/, ''));
        if (why) return false;
        throw new Error(`unknown defence ${name} (${Object.keys(all)})`);
      });
    for (const r of refused) console.log(`  ${r.defence}: refused for ${n} silos — ${r.reason}`);
    refusedAll.push(...refused);
    const ctx = {
      spec,
      plan,
      silos,
      attackers: new Set(config.attackers),
      d: spec.inputDim,
      classes: config.kind === 'heart' ? 2 : DIGIT_CLASSES,
      parameters: ml.parameterLayout(spec).size,
      trigger: triggerOf(config.kind, spec.inputDim, featureNames.indexOf(TRIGGER_FEATURE)),
      runSeed: 0,
      screeningOptions,
    };
    if (config.kind === 'heart' && !featureNames.includes(TRIGGER_FEATURE)) {
      throw new Error(`no feature ${TRIGGER_FEATURE} in ${featureNames}`);
    }
    console.log(
      `${configName}: ${n} silos (${silos.map((s) => `${s.key} ${s.train.n}/${s.test.n}`).join(', ')}), ` +
        `attackers ${config.attackers.join(', ')}, ${ctx.parameters} parameters, ${plan.training.rounds} rounds`,
    );
    for (const defenceName of args.has('--calibration-only') ? [] : defenceNames) {
      const defence = all[defenceName];
      const clean = await seededRun(ctx, 'none', defence, seeds);
      results.push({ config: configName, defence: defenceName, attack: 'none', ...clean });
      for (const attack of attackNames) {
        const r = await seededRun(ctx, attack, defence, seeds);
        results.push({ config: configName, defence: defenceName, attack, ...r });
      }
      const rows = results.filter((r) => r.config === configName && r.defence === defenceName);
      console.log(
        `  ${defenceName.padEnd(28)} ` +
          rows.map((r) => `${r.attack} ${r.accuracy.toFixed(3)}/${r.auc?.toFixed(3) ?? '—'}`).join('  ') +
          `  (${((Date.now() - started) / 1000).toFixed(0)} s)`,
      );
    }
    // Screening's calibration: `cleanRuns` attack-free runs (seeds of initialisation and shuffling) and
    // `attackRuns` runs per attack of FedAvg with flag-only screening (a plan with exclude: false); every round's
    // statistics are kept and the rule (screenStatistics, a pure function of them) is replayed at each threshold:
    // runs with a false flag, honest silo-rounds flagged, attacker silo-rounds flagged.
    if (cleanRuns > 0) {
      const flagOnly = { choice: { aggregator: { kind: 'fedavg' } }, screening: { exclude: false } };
      const recordedRuns = { none: [] };
      // --first-seed: a fresh set of seeds, to check a calibration on runs it was not chosen on.
      const first = Number(args.value('first-seed') ?? 1);
      for (let s = first; s < first + cleanRuns; s += 1) {
        recordedRuns.none.push((await federatedRun({ ...ctx, runSeed: s }, 'none', flagOnly)).recorded);
      }
      for (const attack of attackNames) {
        recordedRuns[attack] = [];
        for (let s = first; s < first + attackRuns; s += 1) {
          recordedRuns[attack].push((await federatedRun({ ...ctx, runSeed: s }, attack, flagOnly)).recorded);
        }
      }
      if (args.value('dump-statistics')) {
        // Every calibration round's statistics (silo order of the study), for replaying other rules offline.
        writeFileSync(
          args.value('dump-statistics'),
          JSON.stringify({
            config: configName,
            silos: silos.map((s) => s.key),
            parameters: ctx.parameters,
            recordedRuns,
          }),
        );
      }
      for (const threshold of thresholds) {
        const row = { config: configName, threshold, cleanRuns, attackRuns };
        for (const [attack, runs] of Object.entries(recordedRuns)) {
          let runsWithFalseFlag = 0;
          let honest = 0;
          let honestFlagged = 0;
          let bad = 0;
          let badFlagged = 0;
          // Where the false flags fall: which silo, which statistic, which round (attack-free runs only).
          const falseFlagsBy = { silo: {}, statistic: {}, round: {}, reasons: [] };
          const count = (table, key) => (table[key] = (table[key] ?? 0) + 1);
          for (const run of runs) {
            let falseFlag = false;
            for (const { round, statistics, attackers } of run) {
              const report = agg.screenStatistics(statistics, {
                ...screeningOptions,
                threshold,
                parameters: ctx.parameters,
              });
              statistics.forEach((_, k) => {
                const flagged = report.flagged.includes(k);
                if (attackers.includes(k)) {
                  bad += 1;
                  if (flagged) badFlagged += 1;
                } else {
                  honest += 1;
                  if (flagged) {
                    honestFlagged += 1;
                    falseFlag = true;
                    if (attack === 'none') {
                      count(falseFlagsBy.silo, silos[k].key);
                      count(falseFlagsBy.round, round);
                      for (const flag of report.updates[k].flags) count(falseFlagsBy.statistic, flag.statistic);
                      falseFlagsBy.reasons.push(
                        `round ${round}, ${silos[k].key}: ${report.updates[k].flags.map((f) => f.reason).join('; ')} ` +
                          `[cosines to the aggregate: ${statistics.map((st) => st.cosineToAggregate.toFixed(3)).join(', ')}; ` +
                          `norms: ${statistics.map((st) => st.norm.toFixed(3)).join(', ')}]`,
                      );
                    }
                  }
                }
              });
            }
            if (falseFlag) runsWithFalseFlag += 1;
          }
          row[attack] = {
            runsWithFalseFlag,
            falseFlagRate: round3(honestFlagged / honest),
            ...(attack === 'none' ? { falseFlagsBy } : { detectionRate: round3(badFlagged / bad) }),
          };
        }
        calibration.push(row);
      }
      const rows = calibration.filter((r) => r.config === configName);
      printTable(
        rows.map((r) => ({
          threshold: r.threshold,
          cleanRunsFlagged: `${r.none.runsWithFalseFlag}/${cleanRuns}`,
          falseFlagRate: r.none.falseFlagRate,
          ...Object.fromEntries(attackNames.map((a) => [a, r[a].detectionRate])),
        })),
        ['threshold', 'cleanRunsFlagged', 'falseFlagRate', ...attackNames],
      );
    }
  }

  // The table: each attack beside the same defence's attack-free run.
  const rows = results.map((r) => {
    const clean = results.find((c) => c.config === r.config && c.defence === r.defence && c.attack === 'none');
    const fedavgClean = results.find((c) => c.config === r.config && c.defence === 'fedavg' && c.attack === 'none');
    return {
      ...r,
      accuracy: round3(r.accuracy),
      pooledAccuracy: round3(r.pooledAccuracy),
      auc: round3(r.auc),
      loss: round3(r.loss),
      backdoorSuccess: round3(r.backdoorSuccess),
      dropPoints: round3((clean.accuracy - r.accuracy) * 100),
      dropFromFedAvgCleanPoints: fedavgClean ? round3((fedavgClean.accuracy - r.accuracy) * 100) : null,
    };
  });
  printTable(
    rows.map((r) => ({
      config: r.config,
      defence: r.defence,
      attack: r.attack,
      acc: r.accuracy.toFixed(3),
      pooled: r.pooledAccuracy.toFixed(3),
      auc: r.auc === null ? '—' : r.auc.toFixed(3),
      drop: r.dropPoints.toFixed(1),
      asr: r.backdoorSuccess.toFixed(3),
      flags: r.screening ? `${r.screening.attackerFlags}/${r.screening.attackerRounds}` : '',
      falseFlags: r.screening ? `${r.screening.honestFlags}/${r.screening.honestRounds}` : '',
      short: r.screening ? r.screening.roundsNotAggregated : '',
    })),
    ['config', 'defence', 'attack', 'acc', 'pooled', 'auc', 'drop', 'asr', 'flags', 'falseFlags', 'short'],
  );

  // Targets of issue 20 that this bench measures on heart disease.
  const heart = rows.filter((r) => r.config === 'heart-4');
  const worstOfAttack = (defence, attacks) =>
    Math.max(...heart.filter((r) => r.defence === defence && attacks.includes(r.attack)).map((r) => r.dropPoints));
  const robustNames = [...new Set(heart.map((r) => r.defence))].filter((d) => !d.startsWith('fedavg'));
  const bestDrop = (attacks) =>
    heart.some((r) => attacks.includes(r.attack)) && robustNames.length > 0
      ? Math.min(...robustNames.map((d) => worstOfAttack(d, attacks)))
      : null;
  // Digits backdoor (issue 20): per defence, the worse of the plain and the boosted backdoor's success; the best
  // defence is the one with the lowest, its honest silos' accuracy under that attack beside FedAvg's attack-free.
  const digitsBackdoor = {};
  for (const config of configNames.filter((c) => CONFIGS[c].kind === 'digits')) {
    const of = rows.filter((r) => r.config === config);
    const fedavgClean = of.find((r) => r.defence === 'fedavg' && r.attack === 'none');
    const perDefence = [...new Set(of.map((r) => r.defence))].flatMap((defence) => {
      const attacked = of.filter((r) => r.defence === defence && r.attack.startsWith('backdoor'));
      if (attacked.length === 0) return [];
      const worst = attacked.reduce((a, r) => (r.backdoorSuccess > a.backdoorSuccess ? r : a));
      const clean = of.find((r) => r.defence === defence && r.attack === 'none');
      return [
        {
          defence,
          attack: worst.attack,
          backdoorSuccess: worst.backdoorSuccess,
          attackFreeTriggerRate: clean?.backdoorSuccess ?? null,
          accuracyDropFromFedAvgCleanPoints: fedavgClean ? round3((fedavgClean.accuracy - worst.accuracy) * 100) : null,
        },
      ];
    });
    if (perDefence.length === 0) continue;
    const best = perDefence.reduce((a, d) => (d.backdoorSuccess < a.backdoorSuccess ? d : a));
    digitsBackdoor[config] = target(best.backdoorSuccess, 0.1, {
      atMost: true,
      description:
        `${config}: backdoor success (worse of plain and boosted) of the best defence, ${best.defence} ` +
        `(attack-free trigger rate ${best.attackFreeTriggerRate}, accuracy ${best.accuracyDropFromFedAvgCleanPoints} ` +
        `points below FedAvg's attack-free run; target: < 0.10 within 2 points)`,
    });
    digitsBackdoor[config].perDefence = perDefence;
  }
  const clean4 = calibration.find((c) => c.config === 'heart-4' && c.threshold === (screeningOptions.threshold ?? 3.5));
  const file = writeReport(
    'robustness',
    {
      benchmark: 'robustness',
      mode: smoke ? 'smoke' : 'full',
      command: `npm run bench:robustness${smoke ? ' -- --smoke' : ''}`,
      date: new Date().toISOString(),
      code: codeVersion(),
      machine: machine(),
      seconds: round3((Date.now() - started) / 1000),
      method: {
        data: DATA_DIR,
        plan: 'heartDiseasePlan (apps/hub/src/studies/heart-disease-plan.ts)',
        rounds: rounds ?? 10,
        trigger: {
          heart: { feature: TRIGGER_FEATURE, value: TRIGGER_VALUE },
          digits: { patch: 'rows and columns 22–25, white' },
          targetLabel: TARGET_LABEL,
        },
        digitsModel: DIGITS_SPEC,
        alieZ: ALIE_Z,
        seeds,
        screening: { ...screeningOptions, exclude: 'per defence' },
        configs: Object.fromEntries(configNames.map((c) => [c, CONFIGS[c]])),
      },
      results: rows,
      refused: refusedAll,
      calibration,
      targets: {
        bestRobustDropUnderSignFlip: target(bestDrop(['sign-flip']), 2, {
          atMost: true,
          description: 'heart-4, 1 sign-flip attacker of 4: smallest accuracy drop (points) of a robust aggregator',
        }),
        bestRobustDropUnderScaling: target(bestDrop(['scale-x10']), 2, {
          atMost: true,
          description: 'heart-4, 1 ×10 attacker of 4: smallest accuracy drop (points) of a robust aggregator',
        }),
        cleanRunsWithAFalseFlag: target(clean4 ? clean4.none.runsWithFalseFlag : null, 0, {
          atMost: true,
          description:
            `heart-4: attack-free runs (of ${clean4?.cleanRuns ?? 0}) where screening at the plan's threshold ` +
            `(${screeningOptions.threshold ?? 3.5}) flagged an honest silo`,
        }),
        ...Object.fromEntries(Object.entries(digitsBackdoor).map(([c, t]) => [`backdoorSuccessBestDefence:${c}`, t])),
      },
    },
    args,
  );
  console.log(`report: ${file} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
}

await main();
