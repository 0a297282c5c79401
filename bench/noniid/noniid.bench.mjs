/* global console, process */
// Non-IID algorithms on the digits study (issue 20 item 4): FedAvg, FedProx and SCAFFOLD on the demo's eight sites
// dealt with label skew Dirichlet(α) for α ∈ {0.1, 0.5} (seeded), reporting the rounds each needs to reach a target
// mean test accuracy and its final accuracy.
//
// In one process, through @tessera/ml (trainNetwork, scaffoldControlUpdate, serverControlStep) and the demo's own
// deal, split and accuracy functions: the real protocol (hub, agents, TLS) on 2 cores would take hours for 2 × 3 ×
// ROUNDS rounds and changes no number. What the hub does is mirrored: updates weighted by record counts (the non-DP
// plan releases them), the mean control delta weighted the same way, c += |S|/N · mean Δc (full participation here,
// |S| = N), the server step x += mean Δy (FedAvg server optimizer, rate 1). Model: a 784-64-10 MLP network (the
// demo's CNN is ~10× slower per round on wasm); no DP.
//
//   npm run bench:noniid                     # 25 rounds, targets: mean accuracy 0.85 and 0.90
//   npm run bench:noniid -- --smoke          # 2 rounds, α = 0.5 only, a check that it runs
//   npm run bench:noniid -- --rounds=40 --targets=0.8,0.9 --mu=0.1
//   npm run bench:noniid -- --deal-seed=18 --init-seed=8 --out=bench/results/noniid-seed18.json
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { benchArgs, machine, printTable, repoRoot, requireBuilt, writeReport } from '../lib/bench-common.mjs';

requireBuilt(['apps/hub/dist/cli/demo-digits.js', 'libs/ml/dist/index.js']);
const require = createRequire(import.meta.url);
const demo = require(resolve(repoRoot, 'apps/hub/dist/cli/demo-digits.js'));
const deal = require(resolve(repoRoot, 'apps/hub/dist/cli/demo-digits-data.js'));
const ml = require('@tessera/ml');

const args = benchArgs();
const ROUNDS = Number(args.value('rounds') ?? (args.smoke ? 2 : 25));
const TARGETS = (args.value('targets') ?? '0.85,0.9').split(',').map(Number);
const MU = Number(args.value('mu') ?? 0.1);
const ALPHAS = args.smoke ? [0.5] : [0.1, 0.5];
const DEAL_SEED = Number(args.value('deal-seed') ?? 17);
const SITES = 8;
const ALGORITHMS = ['fedavg', 'fedprox', 'scaffold'];

const network = {
  format: 'tessera.network/1',
  input: { kind: 'image', height: 28, width: 28, channels: 1 },
  task: { kind: 'multiclass', classes: 10 },
  layers: [
    { id: 'flatten', kind: 'flatten' },
    { id: 'hidden', kind: 'dense', units: 64, activation: 'relu' },
    { id: 'logits', kind: 'dense', units: 10 },
  ],
};
const training = { localEpochs: 2, batchSize: 32, learningRate: 0.05, initSeed: Number(args.value('init-seed') ?? 7) };
const MEAN = 0.1307;
const STD = 0.3081;

function inputsOf(images) {
  const x = new Float32Array(images.length * 784);
  images.forEach((im, k) => {
    for (let i = 0; i < 784; i++) x[k * 784 + i] = (im.pixels[i] / 255 - MEAN) / STD;
  });
  return { x, y: Int32Array.from(images, (im) => im.label) };
}

async function run(alpha, algorithm, sites, plan, tests) {
  const size = ml.initialNetworkParameters(network, training.initSeed).length;
  let global = ml.initialNetworkParameters(network, training.initSeed);
  let serverControl = new Float32Array(size);
  const clientControls = sites.map(() => new Float32Array(size));
  const history = [];
  for (let round = 0; round < ROUNDS; round++) {
    const sum = new Float64Array(algorithm === 'scaffold' ? 2 * size : size);
    let weights = 0;
    for (const [i, data] of sites.entries()) {
      const correction = algorithm === 'scaffold' ? ml.controlCorrection(serverControl, clientControls[i]) : undefined;
      const result = await ml.trainNetwork({
        network,
        parameters: global,
        x: data.x,
        y: data.y,
        epochs: training.localEpochs,
        batchSize: training.batchSize,
        learningRate: training.learningRate,
        seed: 1000 * round + i,
        ...(algorithm === 'fedprox' ? { proximalMu: MU } : {}),
        ...(correction ? { controlCorrection: correction } : {}),
      });
      const w = data.y.length;
      for (let j = 0; j < size; j++) sum[j] += w * result.delta[j];
      if (algorithm === 'scaffold') {
        const update = ml.scaffoldControlUpdate({
          clientControl: clientControls[i],
          serverControl,
          delta: result.delta,
          steps: result.steps,
          learningRate: training.learningRate,
        });
        clientControls[i] = update.control;
        for (let j = 0; j < size; j++) sum[size + j] += w * update.controlDelta[j];
      }
      weights += w;
    }
    const mean = Float32Array.from(sum, (v) => v / weights);
    global = Float32Array.from(global, (v, j) => v + mean[j]);
    if (algorithm === 'scaffold') {
      serverControl = ml.serverControlStep(serverControl, mean.subarray(size), sites.length, sites.length);
    }
    const accuracy = (await demo.accuracyPerSilo(plan, global, tests)).mean;
    history.push(accuracy);
    console.error(`α ${alpha} ${algorithm} round ${round + 1}: mean accuracy ${accuracy.toFixed(4)}`);
  }
  const roundsTo = Object.fromEntries(
    TARGETS.map((t) => {
      const reached = history.findIndex((a) => a >= t);
      return [t, reached < 0 ? null : reached + 1];
    }),
  );
  return {
    alpha,
    algorithm,
    roundsTo,
    finalAccuracy: history[history.length - 1],
    bestAccuracy: Math.max(...history),
    history,
  };
}

await ml.selectBackend();
const keys = Array.from({ length: SITES }, (_, i) => `site-${i + 1}`);
const ids = keys.map((_, i) => `00000000-0000-4000-8000-00000000000${i}`);
const plan = demo.digitsPlan(ids, { privacy: 'none', epsilon: 3 });
plan.model.network = network;
const digits = deal.loadMnistDigits();
const started = Date.now();
const results = [];
for (const alpha of ALPHAS) {
  const dealt = deal.dealWithLabelSkew(digits, keys, alpha, DEAL_SEED);
  const splits = new Map();
  for (const s of dealt) splits.set(s.key, await demo.splitOf({ images: s.images }));
  const sites = [...splits.values()].map((s) => inputsOf(s.train));
  const tests = new Map([...splits].map(([k, s]) => [k, { test: s.test }]));
  for (const algorithm of ALGORITHMS) results.push(await run(alpha, algorithm, sites, plan, tests));
}
const seconds = (Date.now() - started) / 1000;
printTable(
  results.map((r) => ({
    α: r.alpha,
    algorithm: r.algorithm === 'fedprox' ? `fedprox μ=${MU}` : r.algorithm,
    ...Object.fromEntries(TARGETS.map((t) => [`rounds to ${t}`, r.roundsTo[t] ?? `not in ${ROUNDS}`])),
    final: r.finalAccuracy.toFixed(4),
    best: r.bestAccuracy.toFixed(4),
  })),
  ['α', 'algorithm', ...TARGETS.map((t) => `rounds to ${t}`), 'final', 'best'],
);
console.log(`${seconds.toFixed(0)} s in all`);
writeReport(
  'noniid',
  {
    machine: machine(),
    settings: { rounds: ROUNDS, targets: TARGETS, mu: MU, sites: SITES, dealSeed: DEAL_SEED, network, training },
    seconds,
    results,
  },
  args,
);
process.exit(0);
