/* global console, performance */
// Streaming weighted FedAvg throughput against a memory copy of the same bytes, and against numpy.average.
//
//   npm run bench:aggregation [-- --smoke] [-- --no-numpy] [-- --out=FILE]
//
// Imports the BUILT library (libs/aggregation/dist through the @tessera/aggregation workspace link). Writes
// bench/results/aggregation.json (smoke: aggregation.smoke.json, so CI never overwrites the figures of a full run).
//
// Method: n updates of m float32 parameters are added one at a time, then result() into a reused buffer, cycling
// through four pre-generated buffers (generation is not timed; at most 4·m floats of updates exist). Two paths:
//   validating  WeightedMeanAccumulator.add: a read-only finiteness pass, then the accumulation (the default);
//   hub path    WeightedMeanAccumulator.addValidated: one pass, for updates validated on receipt — what the hub's
//               FedAvgAggregator({ updatesPrevalidated: true }) runs. The targets apply to this path.
// Baselines in the same run: TypedArray.set of the same n·m floats into one destination, and numpy.average over an
// (n, m) float32 stack with float64 weights where python3 + numpy exist. Runs are interleaved after a warm-up;
// median, min and max over runs. Bandwidth = bytes of updates read (n·4m) per second, GB/s (1e9 bytes).
import { execFileSync } from 'node:child_process';
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

const require = createRequire(import.meta.url);
requireBuilt(['libs/aggregation/dist/index.js']);
const { WeightedMeanAccumulator } = require('@tessera/aggregation');

const args = benchArgs();
const { smoke } = args;
const skipNumpy = args.has('--no-numpy');
const sizes = smoke ? [10_000, 100_000] : [1_000_000, 10_000_000];
const counts = smoke ? [4, 16] : [4, 16, 64];
const warmups = 1;
const runs = smoke ? 3 : 7;
const SOURCES = 4;
// numpy.average materialises the whole n×m stack plus a float64 product of the same shape; skip what would not fit
// comfortably on a shared machine.
const NUMPY_BYTE_CAP = 4e9;

function lcg(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296) * 2 - 1;
}
function makeSources(m) {
  return Array.from({ length: SOURCES }, (_, k) => {
    const next = lcg(1 + k);
    const u = new Float32Array(m);
    for (let i = 0; i < m; i += 1) u[i] = next() * 1e-2;
    return u;
  });
}
const weightOf = (k) => 50 + ((k * 37) % 1000);
const gbps = (bytes, ms) => bytes / (ms / 1e3) / 1e9;

function timeAggregate(acc, sources, n, out, validated) {
  acc.reset();
  const t0 = performance.now();
  if (validated) for (let k = 0; k < n; k += 1) acc.addValidated(sources[k % SOURCES], weightOf(k));
  else for (let k = 0; k < n; k += 1) acc.add(sources[k % SOURCES], weightOf(k));
  acc.result(out);
  return performance.now() - t0;
}
function timeCopy(dst, sources, n) {
  const t0 = performance.now();
  for (let k = 0; k < n; k += 1) dst.set(sources[k % SOURCES]);
  return performance.now() - t0;
}

const NUMPY_SCRIPT = `
import json, sys, time
import numpy as np
m, n, warm, runs = (int(a) for a in sys.argv[1:5])
rng = np.random.default_rng(1)
stack = (rng.standard_normal((n, m), dtype=np.float32) * np.float32(1e-2))
w = np.array([50 + (k * 37) % 1000 for k in range(n)], dtype=np.float64)
times = []
for r in range(warm + runs):
    t0 = time.perf_counter()
    np.average(stack, axis=0, weights=w)
    t = (time.perf_counter() - t0) * 1e3
    if r >= warm:
        times.append(t)
print(json.dumps({"version": np.__version__, "ms": times}))
`;
function numpyPresent() {
  try {
    return execFileSync('python3', ['-c', 'import numpy; print(numpy.__version__)'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}
const numpyVersion = skipNumpy ? undefined : numpyPresent();
const numpyAbsent = skipNumpy ? 'numpy not run (--no-numpy)' : 'numpy not present';
const machineAtStart = machine({ numpy: numpyVersion ?? numpyAbsent });

const figures = [];
for (const m of sizes) {
  const sources = makeSources(m);
  const acc = new WeightedMeanAccumulator(m);
  const dst = new Float32Array(m);
  // The mean goes into a reused buffer, as the copy writes into a reused destination: a fresh 4m-byte array per
  // round costs page faults (~60 ms for 40 MB on this VM) that neither side should be charged for.
  const mean = new Float32Array(m);
  for (const n of counts) {
    const times = { validating: [], hubPath: [], copy: [] };
    for (let r = 0; r < warmups + runs; r += 1) {
      const a = timeAggregate(acc, sources, n, mean, false);
      const b = timeAggregate(acc, sources, n, mean, true);
      const c = timeCopy(dst, sources, n);
      if (r >= warmups) {
        times.validating.push(a);
        times.hubPath.push(b);
        times.copy.push(c);
      }
    }
    const bytes = n * m * 4;
    const entry = (ms) => ({ ms: stats(ms), gbps: round3(gbps(bytes, stats(ms).median)) });
    const figure = {
      parameters: m,
      updates: n,
      updateBytes: bytes,
      fedAvgValidating: entry(times.validating),
      fedAvgHubPath: entry(times.hubPath),
      memoryCopy: entry(times.copy),
      numpyAverage: numpyAbsent,
    };
    if (numpyVersion !== undefined) {
      const need = n * m * (4 + 8) + m * 16;
      if (need > NUMPY_BYTE_CAP) {
        figure.numpyAverage = `skipped: needs ~${(need / 1e9).toFixed(1)} GB (whole stack + float64 product)`;
      } else {
        const out = execFileSync('python3', ['-c', NUMPY_SCRIPT, String(m), String(n), String(warmups), String(runs)], {
          encoding: 'utf8',
          maxBuffer: 1 << 20,
        });
        figure.numpyAverage = entry(JSON.parse(out).ms);
      }
    }
    figures.push(figure);
  }
}

const ratios = figures.map((f) => ({
  parameters: f.parameters,
  updates: f.updates,
  hubPathOverCopy: round3(f.fedAvgHubPath.gbps / f.memoryCopy.gbps),
  validatingOverCopy: round3(f.fedAvgValidating.gbps / f.memoryCopy.gbps),
  hubPathOverNumpy: typeof f.numpyAverage === 'string' ? null : round3(f.fedAvgHubPath.gbps / f.numpyAverage.gbps),
  hubPathSpeedupOverValidating: round3(f.fedAvgHubPath.gbps / f.fedAvgValidating.gbps),
}));
printTable(
  figures.map((f, i) => ({
    m: f.parameters,
    n: f.updates,
    'hub path GB/s': `${f.fedAvgHubPath.gbps}`,
    'validating GB/s': `${f.fedAvgValidating.gbps}`,
    'copy GB/s': `${f.memoryCopy.gbps}`,
    'numpy GB/s': typeof f.numpyAverage === 'string' ? '—' : `${f.numpyAverage.gbps}`,
    'hub/copy': ratios[i].hubPathOverCopy,
    'hub/numpy': ratios[i].hubPathOverNumpy ?? '—',
  })),
  ['m', 'n', 'hub path GB/s', 'validating GB/s', 'copy GB/s', 'numpy GB/s', 'hub/copy', 'hub/numpy'],
);

const worstCopy = Math.min(...ratios.map((r) => r.hubPathOverCopy));
const numpyRatios = ratios.map((r) => r.hubPathOverNumpy).filter((r) => r !== null);
const targets = {
  atLeastHalfOfCopyBandwidth: target(worstCopy, 0.5, {
    description: 'worst case over (m, n) of hub-path FedAvg bandwidth / TypedArray.set bandwidth',
  }),
  fasterThanNumpy: numpyRatios.length
    ? {
        ...target(Math.min(...numpyRatios), 1, { description: 'worst hub-path / numpy.average' }),
        met: Math.min(...numpyRatios) > 1,
      }
    : { description: 'worst hub-path / numpy.average', target: 1, value: null, met: null },
};
const report = {
  benchmark: 'aggregation',
  mode: smoke ? 'smoke' : 'full',
  date: new Date().toISOString(),
  code: codeVersion(),
  machine: machineAtStart,
  loadAverageAtEnd: machine().loadAverage,
  method: {
    warmups,
    runs,
    statistic: 'median (min, max) over runs; GB/s of update bytes read (n·4m), 1 GB = 1e9 bytes',
    sourceBuffers: SOURCES,
    // Bytes touched per parameter per update: the hub path reads 4 (update) + 8 and writes 8 (float64 sum); the
    // validating path reads the update once more (4); a copy reads 4 and writes 4.
    bytesTouchedPerParameter: { fedAvgHubPath: 20, fedAvgValidating: 24, memoryCopy: 8 },
  },
  figures,
  ratios,
  targets,
  pass: targets.atLeastHalfOfCopyBandwidth.met === true && targets.fasterThanNumpy.met !== false,
};
const file = writeReport('aggregation', report, args);
for (const [name, t] of Object.entries(targets)) {
  console.log(
    `${name}: ${t.value} (target ${t.comparison ?? '>'} ${t.target}) ${t.met === null ? 'n/a' : t.met ? 'PASS' : 'MISS'}`,
  );
}
console.log(`wrote ${file}`);
