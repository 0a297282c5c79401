/* global console, performance */
// Weighted FedAvg throughput against a memory copy of the same bytes (single thread), and against numpy.average.
//
//   npm run bench:aggregation [-- --smoke] [-- --no-numpy] [-- --out=FILE]
//
// Imports the BUILT library (libs/aggregation/dist through the @tessera/aggregation workspace link). Writes
// bench/results/aggregation.json (smoke: aggregation.smoke.json, so CI never overwrites the figures of a full run).
//
// Method: n updates of m float32 parameters cycle through SOURCES = 8 pre-generated buffers (generation is not
// timed); each path adds the n updates with their weights, then writes the mean into a reused buffer. Paths:
//   fused      WeightedMeanAccumulator.addValidatedManyAndResult over updates held in the accumulator's input
//              buffers (inputBuffers: the kernel's memory, where a reader puts the bytes it reads), WebAssembly SIMD,
//              one sweep: per chunk of 4,096 coordinates every update (8 per kernel call), then the division, the
//              mean written into one more input buffer. One thread. The targets apply to this path.
//   two cores  the same with threads: 2 (a worker thread takes the upper half of the coordinates).
//   streaming  addValidatedMany then result(out) on the same buffers (the sum goes to memory and back once).
//   per update addValidated one update at a time from ordinary arrays (copied chunkwise into the kernel's memory),
//              SIMD: the hub's streaming FedAvg today.
//   scalar     addValidated one at a time with kernel: 'scalar': the JavaScript loop the library ran before.
// Baselines in the same run: TypedArray.set of the same n·m floats (the same input buffers) into one destination,
// single thread; numpy.average over an (n, m) float32 stack with float64 weights where python3 + numpy exist. Runs
// are interleaved after a warm-up; median, min and max over runs. Bandwidth = bytes of updates read (n·4m) per
// second, GB/s (1e9 bytes). After the runs the four paths' means are compared byte for byte (must be identical).
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
const warmups = smoke ? 1 : 2;
const runs = smoke ? 3 : 9;
const SOURCES = 8;
// numpy.average materialises the whole n×m stack plus a float64 product of the same shape; skip what would not fit
// comfortably on a shared machine.
const NUMPY_BYTE_CAP = 4e9;

function lcg(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296) * 2 - 1;
}
function fill(u, k) {
  const next = lcg(1 + k);
  for (let i = 0; i < u.length; i += 1) u[i] = next() * 1e-2;
}
const weightOf = (k) => 50 + ((k * 37) % 1000);
const gbps = (bytes, ms) => bytes / (ms / 1e3) / 1e9;

function timeSweep(acc, updates, weights, out) {
  acc.reset();
  const t0 = performance.now();
  acc.addValidatedManyAndResult(updates, weights, out);
  return performance.now() - t0;
}
function timeMany(acc, updates, weights, out) {
  acc.reset();
  const t0 = performance.now();
  acc.addValidatedMany(updates, weights);
  acc.result(out);
  return performance.now() - t0;
}
function timeOneByOne(acc, updates, weights, out) {
  acc.reset();
  const t0 = performance.now();
  for (let k = 0; k < updates.length; k += 1) acc.addValidated(updates[k], weights[k]);
  acc.result(out);
  return performance.now() - t0;
}
function timeCopy(dst, updates) {
  const t0 = performance.now();
  for (let k = 0; k < updates.length; k += 1) dst.set(updates[k]);
  return performance.now() - t0;
}
function sameBytes(a, b) {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return x.length === y.length && x.every((v, i) => v === y[i]);
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
const kernels = {};
for (const m of sizes) {
  // SOURCES input buffers for the updates, one more for the mean (written by the kernel in place).
  const fused = new WeightedMeanAccumulator(m, { inputBuffers: SOURCES + 1 });
  const twoCores = new WeightedMeanAccumulator(m, { inputBuffers: SOURCES + 1, threads: 2 });
  const perUpdate = new WeightedMeanAccumulator(m);
  const scalar = new WeightedMeanAccumulator(m, { kernel: 'scalar' });
  const plain = [];
  for (let k = 0; k < SOURCES; k += 1) {
    fill(fused.inputBuffer(k), k);
    twoCores.inputBuffer(k).set(fused.inputBuffer(k));
    plain.push(fused.inputBuffer(k).slice());
  }
  const dst = new Float32Array(m);
  // The mean goes into a reused buffer, as the copy writes into a reused destination: a fresh 4m-byte array per
  // round costs page faults (~60 ms for 40 MB on this VM) that neither side should be charged for.
  const means = {
    fused: fused.inputBuffer(SOURCES),
    twoCores: twoCores.inputBuffer(SOURCES),
    streaming: new Float32Array(m),
    perUpdate: new Float32Array(m),
  };
  const scalarMean = new Float32Array(m);
  for (const n of counts) {
    const inputs = Array.from({ length: n }, (_, k) => fused.inputBuffer(k % SOURCES));
    const sharedInputs = Array.from({ length: n }, (_, k) => twoCores.inputBuffer(k % SOURCES));
    const arrays = Array.from({ length: n }, (_, k) => plain[k % SOURCES]);
    const weights = Array.from({ length: n }, (_, k) => weightOf(k));
    const times = { fused: [], twoCores: [], streaming: [], perUpdate: [], scalar: [], copy: [] };
    for (let r = 0; r < warmups + runs; r += 1) {
      const sample = {
        copy: timeCopy(dst, inputs),
        fused: timeSweep(fused, inputs, weights, means.fused),
        twoCores: timeSweep(twoCores, sharedInputs, weights, means.twoCores),
        streaming: timeMany(fused, inputs, weights, means.streaming),
        perUpdate: timeOneByOne(perUpdate, arrays, weights, means.perUpdate),
        scalar: timeOneByOne(scalar, arrays, weights, scalarMean),
      };
      if (r >= warmups) for (const [path, ms] of Object.entries(sample)) times[path].push(ms);
    }
    const bytes = n * m * 4;
    const entry = (ms) => ({ ms: stats(ms), gbps: round3(gbps(bytes, stats(ms).median)) });
    const figure = {
      parameters: m,
      updates: n,
      updateBytes: bytes,
      fedAvgFused: entry(times.fused),
      fedAvgFusedTwoCores: entry(times.twoCores),
      fedAvgFusedStreaming: entry(times.streaming),
      fedAvgPerUpdate: entry(times.perUpdate),
      fedAvgScalar: entry(times.scalar),
      memoryCopy: entry(times.copy),
      numpyAverage: numpyAbsent,
      bitIdenticalToScalar: Object.values(means).every((mean) => sameBytes(mean, scalarMean)),
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
  // After the runs: passesOnTwoCores shows whether the worker thread really took its half.
  kernels[m] = { fused: fused.kernel, twoCores: twoCores.kernel, perUpdate: perUpdate.kernel };
  await twoCores.close();
}

const ratios = figures.map((f) => ({
  parameters: f.parameters,
  updates: f.updates,
  fusedOverCopy: round3(f.fedAvgFused.gbps / f.memoryCopy.gbps),
  twoCoresOverCopy: round3(f.fedAvgFusedTwoCores.gbps / f.memoryCopy.gbps),
  streamingOverCopy: round3(f.fedAvgFusedStreaming.gbps / f.memoryCopy.gbps),
  perUpdateOverCopy: round3(f.fedAvgPerUpdate.gbps / f.memoryCopy.gbps),
  scalarOverCopy: round3(f.fedAvgScalar.gbps / f.memoryCopy.gbps),
  fusedOverNumpy: typeof f.numpyAverage === 'string' ? null : round3(f.fedAvgFused.gbps / f.numpyAverage.gbps),
  fusedOverScalar: round3(f.fedAvgFused.gbps / f.fedAvgScalar.gbps),
}));
printTable(
  figures.map((f, i) => ({
    m: f.parameters,
    n: f.updates,
    'fused GB/s': `${f.fedAvgFused.gbps}`,
    '2 cores GB/s': `${f.fedAvgFusedTwoCores.gbps}`,
    'streaming GB/s': `${f.fedAvgFusedStreaming.gbps}`,
    'per update GB/s': `${f.fedAvgPerUpdate.gbps}`,
    'scalar GB/s': `${f.fedAvgScalar.gbps}`,
    'copy GB/s': `${f.memoryCopy.gbps}`,
    'numpy GB/s': typeof f.numpyAverage === 'string' ? '—' : `${f.numpyAverage.gbps}`,
    'fused/copy': ratios[i].fusedOverCopy,
    '2c/copy': ratios[i].twoCoresOverCopy,
    'fused/numpy': ratios[i].fusedOverNumpy ?? '—',
    identical: f.bitIdenticalToScalar,
  })),
  [
    'm',
    'n',
    'fused GB/s',
    '2 cores GB/s',
    'streaming GB/s',
    'per update GB/s',
    'scalar GB/s',
    'copy GB/s',
    'numpy GB/s',
    'fused/copy',
    '2c/copy',
    'fused/numpy',
    'identical',
  ],
);

const worstCopy = Math.min(...ratios.map((r) => r.fusedOverCopy));
const numpyRatios = ratios.map((r) => r.fusedOverNumpy).filter((r) => r !== null);
const targets = {
  atLeast70PercentOfCopyBandwidth: target(worstCopy, 0.7, {
    description: 'worst case over (m, n) of fused one-core FedAvg bandwidth / single-thread TypedArray.set bandwidth',
  }),
  threeTimesNumpy: numpyRatios.length
    ? target(Math.min(...numpyRatios), 3, { description: 'worst fused one-core / numpy.average' })
    : { description: 'worst fused one-core / numpy.average', target: 3, value: null, met: null },
  bitIdentical: {
    description:
      'the fused, two-core, streaming and per-update means equal the scalar mean byte for byte, every (m, n)',
    met: figures.every((f) => f.bitIdenticalToScalar),
  },
};
const report = {
  benchmark: 'aggregation',
  mode: smoke ? 'smoke' : 'full',
  date: new Date().toISOString(),
  code: codeVersion(),
  machine: machineAtStart,
  loadAverageAtEnd: machine().loadAverage,
  kernels,
  method: {
    warmups,
    runs,
    statistic: 'median (min, max) over runs; GB/s of update bytes read (n·4m), 1 GB = 1e9 bytes',
    sourceBuffers: SOURCES,
    // Bytes moved to and from memory per parameter and update: the fused sweep reads 4 (update), its sums stay in the
    // cache, the mean (4 per parameter) is written once per n updates; streaming also writes the 8-byte sum once per
    // 8 updates and reads it back (+2 or more); per update and scalar read 4 + 8 and write 8; a copy reads 4 and writes
    // 4 (here into one destination of 4m bytes, which stays in the cache at m = 1M).
    bytesTouchedPerParameter: {
      fedAvgFused: 4,
      fedAvgFusedStreaming: 6,
      fedAvgPerUpdate: 20,
      fedAvgScalar: 20,
      memoryCopy: 8,
    },
  },
  figures,
  ratios,
  targets,
  pass:
    targets.atLeast70PercentOfCopyBandwidth.met === true &&
    targets.threeTimesNumpy.met !== false &&
    targets.bitIdentical.met === true,
};
const file = writeReport('aggregation', report, args);
for (const [name, t] of Object.entries(targets)) {
  const value = 'value' in t ? `${t.value} (target ${t.comparison ?? '≥'} ${t.target}) ` : '';
  console.log(`${name}: ${value}${t.met === null ? 'n/a' : t.met ? 'PASS' : 'MISS'}`);
}
console.log(`wrote ${file}`);
