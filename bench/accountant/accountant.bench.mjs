/* global console, process */
// Accountant speed: ε for T = 100,000 steps of the Poisson-sampled Gaussian over the whole default order grid
// (libs/dp: RDP curve at every order, composition, Balle et al. 2020 conversion), and σ calibration for a target.
// Baseline in the same run: the closed-form RDP of the plain Gaussian mechanism (q = 1: α/(2σ²)) over the same grid
// with the same conversion — the least work any RDP accountant must do. Target: < 10 ms for the 100,000-step ε.
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import {
  benchArgs,
  codeVersion,
  machine,
  printTable,
  repoRoot,
  round3,
  stats,
  target,
  writeReport,
} from '../lib/bench-common.mjs';

const args = benchArgs();
const require = createRequire(import.meta.url);
const dp = require(resolve(repoRoot, 'libs/dp/dist/accountant.js'));

const runs = args.smoke ? 3 : 25;
const steps = args.smoke ? 1_000 : 100_000;
const query = { noiseMultiplier: 1.1, samplingRate: 0.01, steps, delta: 1e-5 };

function time(fn) {
  const t = process.hrtime.bigint();
  const result = fn();
  return { ms: Number(process.hrtime.bigint() - t) / 1e6, result };
}

function measure(fn) {
  for (let i = 0; i < 3; i++) fn(); // warm-up (JIT)
  const samples = [];
  let last;
  for (let i = 0; i < runs; i++) {
    const { ms, result } = time(fn);
    samples.push(ms);
    last = result;
  }
  return { ms: stats(samples), result: last };
}

const epsilon = measure(() => dp.epsilonForNoise(query));
const baseline = measure(() => {
  const orders = dp.DEFAULT_RDP_ORDERS;
  const rdp = orders.map((a) => (steps * a) / (2 * query.noiseMultiplier ** 2));
  return dp.epsilonFromRdp(orders, rdp, query.delta);
});
const calibration = measure(() =>
  dp.noiseForEpsilon({ targetEpsilon: 1, samplingRate: query.samplingRate, steps, delta: query.delta }),
);

const rows = [
  {
    what: `ε, ${steps} sampled-Gaussian steps, default grid`,
    median_ms: round3(epsilon.ms.median),
    min_ms: round3(epsilon.ms.min),
    max_ms: round3(epsilon.ms.max),
    value: round3(epsilon.result.epsilon),
  },
  {
    what: 'baseline: closed-form Gaussian RDP, same grid',
    median_ms: round3(baseline.ms.median),
    min_ms: round3(baseline.ms.min),
    max_ms: round3(baseline.ms.max),
    value: '',
  },
  {
    what: `σ for ε = 1 over ${steps} steps (bisection)`,
    median_ms: round3(calibration.ms.median),
    min_ms: round3(calibration.ms.min),
    max_ms: round3(calibration.ms.max),
    value: round3(calibration.result.noiseMultiplier),
  },
];
printTable(rows, ['what', 'median_ms', 'min_ms', 'max_ms', 'value']);

const targets = {
  epsilonUnder10ms: target(epsilon.ms.median, 10, {
    atMost: true,
    description: 'ε for 100,000 steps over the whole grid in under 10 ms (median)',
  }),
};
const report = {
  benchmark: 'accountant',
  mode: args.smoke ? 'smoke' : 'full',
  machine: machine(),
  code: codeVersion(),
  query,
  orders: dp.DEFAULT_RDP_ORDERS.length,
  figures: { epsilon: epsilon.ms, closedFormBaseline: baseline.ms, calibration: calibration.ms },
  ratios: { epsilonOverClosedForm: round3(epsilon.ms.median / baseline.ms.median) },
  targets,
  pass: Object.values(targets).every((t) => t.met !== false),
};
console.log(`wrote ${writeReport('accountant', report, args)}`);
