/* global console, process */
// The digits study simulated in one process, to compare configurations fast (issue 17): the demo's splits (eight sites,
// label skew Dirichlet(0.5), seed 17, the plan's keyed 80/20 split), the demo's plan with the configuration's changes,
// σ derived by @tessera/dp's accountant from that plan (privacyMechanismOf: the same ε, δ and steps as the hub and
// agents compute), each site's local training by @tessera/ml's trainNetwork (DP-SGD: Poisson sampling, per-example
// clipping, lattice noise from GaussianNoiseWorker, division by the plan's batch size), the unweighted mean of the
// updates (the plan releases no counts under DP) and the plan's server optimizer (@tessera/aggregation). What it
// leaves out of the real path: processes, TLS, the hub's database — none of which changes a number — and the CSPRNG
// batch sampling (seeded here, so runs repeat). The figures the docs quote for the chosen presets come from the real
// demo (bench:dp-accuracy -- --study=digits); this script is for the search.
//
//   node bench/dp-accuracy/digits-sweep.mjs '{"dp":true,"network":"tanhStride","training":{"rounds":10,"learningRate":0.5}}'
//
// Config: dp (true: DP-SGD), epsilon (3), network (a name below or a whole spec; absent: the small-CNN preset), training (fields of
// the plan's training section), privacy (fields of its dp-sgd section), everyRound (print every round's accuracy),
// pooled (also the pooled baseline of the same plan).
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { repoRoot, requireBuilt } from '../lib/bench-common.mjs';

requireBuilt(['apps/hub/dist/cli/demo-digits.js', 'libs/aggregation/dist/index.js']);
const require = createRequire(import.meta.url);
const demo = require(resolve(repoRoot, 'apps/hub/dist/cli/demo-digits.js'));
const deal = require(resolve(repoRoot, 'apps/hub/dist/cli/demo-digits-data.js'));
const ml = require('@tessera/ml');
const dp = require('@tessera/dp');
const aggregation = require('@tessera/aggregation');
const protocol = require('@tessera/protocol');

const input = { kind: 'image', height: 28, width: 28, channels: 1 };
const task = { kind: 'multiclass', classes: 10 };
const F = 'tessera.network/1';
const conv = (id, filters, activation, extra = {}) => ({
  id,
  kind: 'conv2d',
  filters,
  kernel: 3,
  stride: 2,
  padding: 'same',
  activation,
  ...extra,
});
/** Candidate networks, by name. scattering is the DP preset (digitsDpNetwork), tanhStride the former one. */
const NETWORKS = {
  scattering: demo.digitsDpNetwork(),
  tanhStride: demo.digitsConvDpNetwork(),
  reluStride: {
    format: F,
    input,
    task,
    layers: [
      conv('conv_1', 8, 'relu'),
      conv('conv_2', 16, 'relu'),
      { id: 'flatten', kind: 'flatten' },
      { id: 'logits', kind: 'dense', units: 10 },
    ],
  },
  tanhStrideGn: {
    format: F,
    input,
    task,
    layers: [
      conv('conv_1', 8, undefined),
      { id: 'norm_1', kind: 'groupNorm', groups: 4 },
      { id: 'act_1', kind: 'activation', fn: 'tanh' },
      conv('conv_2', 16, undefined),
      { id: 'norm_2', kind: 'groupNorm', groups: 4 },
      { id: 'act_2', kind: 'activation', fn: 'tanh' },
      { id: 'flatten', kind: 'flatten' },
      { id: 'logits', kind: 'dense', units: 10 },
    ],
  },
  tanhWide: {
    format: F,
    input,
    task,
    layers: [
      conv('conv_1', 16, 'tanh'),
      conv('conv_2', 32, 'tanh'),
      { id: 'pool', kind: 'avgPool2d', size: 2, padding: 'same' },
      { id: 'flatten', kind: 'flatten' },
      { id: 'logits', kind: 'dense', units: 10 },
    ],
  },
  pooledLinear: {
    format: F,
    input,
    task,
    layers: [
      { id: 'pool', kind: 'avgPool2d', size: 2 },
      { id: 'flatten', kind: 'flatten' },
      { id: 'logits', kind: 'dense', units: 10 },
    ],
  },
  tramer: {
    format: F,
    input,
    task,
    layers: [
      { id: 'conv_1', kind: 'conv2d', filters: 16, kernel: 8, stride: 2, padding: 'same', activation: 'tanh' },
      { id: 'pool_1', kind: 'maxPool2d', size: 2, stride: 1 },
      { id: 'conv_2', kind: 'conv2d', filters: 32, kernel: 4, stride: 2, padding: 'valid', activation: 'tanh' },
      { id: 'pool_2', kind: 'maxPool2d', size: 2, stride: 1 },
      { id: 'flatten', kind: 'flatten' },
      { id: 'dense_1', kind: 'dense', units: 32, activation: 'tanh' },
      { id: 'logits', kind: 'dense', units: 10 },
    ],
  },
};
for (const n of Object.values(NETWORKS)) for (const l of n.layers) if (l.activation === undefined) delete l.activation;

const cfg = JSON.parse(process.argv[2] ?? '{}');
await ml.selectBackend();
const keys = Array.from({ length: 8 }, (_, i) => `site-${i + 1}`);
const silos = deal.dealWithLabelSkew(deal.loadMnistDigits(), keys, demo.DIRICHLET_ALPHA, 17);
const splits = new Map();
for (const s of silos) splits.set(s.key, await demo.splitOf({ images: s.images }));
const ids = keys.map((_, i) => `00000000-0000-4000-8000-00000000000${i}`);
const plan = demo.digitsPlan(ids, { privacy: cfg.dp ? 'dp-sgd' : 'none', epsilon: cfg.epsilon ?? 3 });
if (cfg.network) plan.model.network = typeof cfg.network === 'object' ? cfg.network : NETWORKS[cfg.network];
Object.assign(plan.training, cfg.training ?? {});
if (cfg.dp) Object.assign(plan.privacy, cfg.privacy ?? {});
const problems = protocol.studyPlanProblems(plan);
if (problems.length) throw new Error(problems.join('; '));
const network = plan.model.network;
const mechanism = dp.privacyMechanismOf(plan);
const worker = cfg.dp ? new dp.GaussianNoiseWorker() : null;
const size = ml.initialNetworkParameters(network, plan.training.initSeed).length;
console.log(
  JSON.stringify({
    config: cfg,
    parameters: size,
    sigma: mechanism?.noiseMultiplier ?? null,
    steps: mechanism ? mechanism.stepsPerRound * mechanism.rounds : null,
    plannedEpsilon: mechanism?.plannedEpsilon ?? null,
  }),
);
const so = plan.training.serverOptimizer;
const optimizer =
  so.kind === 'fedavgm'
    ? new aggregation.FedAvgMServerOptimizer({
        length: size,
        serverLearningRate: so.learningRate,
        momentum: so.momentum,
      })
    : null;
let global = ml.initialNetworkParameters(network, plan.training.initSeed);
// SCAFFOLD (plan.training.algorithm 'scaffold'): each site's control variate and the server's, as agent and hub keep
// them (ADR 0019): the silos' control deltas averaged with the same weights as the model deltas, c += |S|/N · mean Δc.
const scaffold = plan.training.algorithm === 'scaffold';
let serverControl = new Float32Array(size);
const clientControls = Array.from({ length: 8 }, () => new Float32Array(size));
const MEAN = 0.1307;
const STD = 0.3081;
const inputsOf = (images) => {
  const x = new Float32Array(images.length * 784);
  images.forEach((im, k) => {
    for (let i = 0; i < 784; i++) x[k * 784 + i] = (im.pixels[i] / 255 - MEAN) / STD;
  });
  return { x, y: Int32Array.from(images, (im) => im.label) };
};
const train = [...splits].map(([, s]) => inputsOf(s.train));
const tests = new Map([...splits].map(([k, s]) => [k, { test: s.test }]));
const started = Date.now();
for (let round = 0; round < plan.training.rounds; round++) {
  const sum = new Float64Array(scaffold ? 2 * size : size);
  let weights = 0;
  for (const [i, data] of train.entries()) {
    const options = {
      ...(scaffold ? { controlCorrection: ml.controlCorrection(serverControl, clientControls[i]) } : {}),
      network,
      parameters: global,
      x: data.x,
      y: data.y,
      epochs: plan.training.localEpochs,
      learningRate: plan.training.learningRate,
      seed: 1000 * round + i,
      ...(plan.training.algorithm === 'fedprox' ? { proximalMu: plan.training.proximalMu } : {}),
      ...(cfg.dp
        ? {
            dp: {
              clipNorm: mechanism.clipNorm,
              noiseMultiplier: mechanism.noiseMultiplier,
              samplingRate: mechanism.samplingRate,
              expectedBatchSize: plan.training.batchSize,
              noise: (length, latticeSigma) => worker.drawIntegers(length, latticeSigma),
            },
          }
        : { batchSize: plan.training.batchSize }),
    };
    const result = await ml.trainNetwork(options);
    // Without DP the plan releases record counts and FedAvg weights by them; with DP every update weighs the same.
    const w = cfg.dp ? 1 : data.y.length;
    for (let j = 0; j < size; j++) sum[j] += w * result.delta[j];
    if (scaffold) {
      const update = ml.scaffoldControlUpdate({
        clientControl: clientControls[i],
        serverControl,
        delta: result.delta,
        steps: result.steps,
        learningRate: plan.training.learningRate,
      });
      clientControls[i] = update.control;
      for (let j = 0; j < size; j++) sum[size + j] += w * update.controlDelta[j];
    }
    weights += w;
  }
  const delta = Float32Array.from(sum.subarray(0, size), (v) => v / weights);
  if (scaffold) {
    const meanControlDelta = Float32Array.from(sum.subarray(size), (v) => v / weights);
    serverControl = ml.serverControlStep(serverControl, meanControlDelta, train.length, train.length);
  }
  if (optimizer) global = optimizer.step(global, delta).weights;
  else global = Float32Array.from(global, (v, j) => v + so.learningRate * delta[j]);
  if (cfg.everyRound || round === plan.training.rounds - 1) {
    const accuracy = await demo.accuracyPerSilo(plan, global, tests);
    console.log(
      `round ${round + 1}: mean accuracy ${accuracy.mean.toFixed(4)} (${((Date.now() - started) / 1000).toFixed(0)} s)`,
    );
  }
}
if (cfg.pooled) console.log(`pooled ${(await demo.pooledDigitsBaseline(plan, splits)).mean.toFixed(4)}`);
await worker?.close();
