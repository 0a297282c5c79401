/* global process, console, performance -- Node globals: the repository ESLint config declares none for .mjs files. */
// Streaming weighted FedAvg throughput against a memory copy of the same bytes, and against numpy.average.
//
//   npx tsc -p libs/aggregation && node bench/aggregation/aggregation.bench.mjs [--smoke] [--no-numpy] [--out=FILE]
//
// Imports the BUILT library (libs/aggregation/dist through the @tessera/aggregation workspace link), so it runs
// with plain node. Writes bench/results/aggregation.json; --smoke (tiny sizes, a few seconds, run by
// aggregation-bench.spec.ts so the script cannot rot) writes bench/results/aggregation.smoke.json instead, so a CI
// smoke run never overwrites the figures of a full run.
//
// Method: n updates of m float32 parameters are added one at a time (validation + accumulation, then result()
// into a reused buffer),
// cycling through four pre-generated buffers so generation is not timed and at most 4·m floats of updates exist.
// Baseline in the same run: TypedArray.set of the same n·m floats into one destination. Runs of the two are
// interleaved after a warm-up; we report the median, min and max over runs. Bandwidth = bytes of updates read
// (n·4m) per second, in GB/s (1e9 bytes).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
let lib;
try {
  lib = require('@tessera/aggregation');
} catch (error) {
  console.error('Build the library first: npx tsc -p libs/aggregation\n', error);
  process.exit(2);
}
const { WeightedMeanAccumulator, accumulateScaled } = lib;

const smoke = process.argv.includes('--smoke');
const skipNumpy = process.argv.includes('--no-numpy');
const outArg = process.argv.find((a) => a.startsWith('--out='));
const sizes = smoke ? [10_000, 100_000] : [1_000_000, 10_000_000];
const counts = smoke ? [4, 16] : [4, 16, 64];
const warmups = 1;
const runs = smoke ? 3 : 5;
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

function stats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  return { median: s[s.length >> 1], min: s[0], max: s[s.length - 1], runs: s.length };
}
const gbps = (bytes, ms) => bytes / (ms / 1e3) / 1e9;
const round3 = (x) => Math.round(x * 1000) / 1000;

function timeAggregate(acc, sources, n, out) {
  acc.reset();
  const t0 = performance.now();
  for (let k = 0; k < n; k += 1) acc.add(sources[k % SOURCES], weightOf(k));
  acc.result(out);
  return performance.now() - t0;
}
function timeKernel(sum, sources, n) {
  sum.fill(0);
  const t0 = performance.now();
  for (let k = 0; k < n; k += 1) accumulateScaled(sum, sources[k % SOURCES], weightOf(k));
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

const figures = [];
for (const m of sizes) {
  const sources = makeSources(m);
  const acc = new WeightedMeanAccumulator(m);
  const kernelSum = new Float64Array(m);
  const dst = new Float32Array(m);
  // The mean is written into a reused buffer, as the copy writes into a reused destination: a fresh 4m-byte array
  // per round costs page faults (measured ~60 ms for 40 MB on this VM) that neither side should be charged for.
  const mean = new Float32Array(m);
  for (const n of counts) {
    const agg = [];
    const kernel = [];
    const copy = [];
    for (let r = 0; r < warmups + runs; r += 1) {
      const a = timeAggregate(acc, sources, n, mean);
      const k = timeKernel(kernelSum, sources, n);
      const c = timeCopy(dst, sources, n);
      if (r >= warmups) {
        agg.push(a);
        kernel.push(k);
        copy.push(c);
      }
    }
    const bytes = n * m * 4;
    const figure = {
      parameters: m,
      updates: n,
      updateBytes: bytes,
      fedAvgStreaming: { ms: stats(agg), gbps: round3(gbps(bytes, stats(agg).median)) },
      accumulateKernelOnly: { ms: stats(kernel), gbps: round3(gbps(bytes, stats(kernel).median)) },
      memoryCopy: { ms: stats(copy), gbps: round3(gbps(bytes, stats(copy).median)) },
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
        const parsed = JSON.parse(out);
        figure.numpyAverage = { ms: stats(parsed.ms), gbps: round3(gbps(bytes, stats(parsed.ms).median)) };
      }
    }
    figures.push(figure);
    const np = typeof figure.numpyAverage === 'string' ? figure.numpyAverage : `${figure.numpyAverage.gbps} GB/s`;
    console.log(
      `m=${m} n=${n}: fedavg ${figure.fedAvgStreaming.gbps} GB/s (kernel ${figure.accumulateKernelOnly.gbps}), ` +
        `copy ${figure.memoryCopy.gbps} GB/s, numpy ${np}`,
    );
  }
}

const ratios = figures.map((f) => ({
  parameters: f.parameters,
  updates: f.updates,
  fedAvgOverCopy: round3(f.fedAvgStreaming.gbps / f.memoryCopy.gbps),
  kernelOverCopy: round3(f.accumulateKernelOnly.gbps / f.memoryCopy.gbps),
  fedAvgOverNumpy: typeof f.numpyAverage === 'string' ? null : round3(f.fedAvgStreaming.gbps / f.numpyAverage.gbps),
}));
const minCopyRatio = Math.min(...ratios.map((r) => r.fedAvgOverCopy));
const numpyRatios = ratios.map((r) => r.fedAvgOverNumpy).filter((r) => r !== null);
const targets = {
  fedAvgAtLeastHalfOfCopy: { target: 0.5, worst: minCopyRatio, met: minCopyRatio >= 0.5 },
  fasterThanNumpy: {
    target: 1,
    worst: numpyRatios.length ? Math.min(...numpyRatios) : null,
    met: numpyRatios.length ? Math.min(...numpyRatios) > 1 : null,
  },
  // Bytes touched per parameter per update, for reading the ratios: FedAvg reads 4 (finiteness check, a separate
  // pass so a refused update leaves the sum untouched) + 4 (update) + 8 and writes 8 (float64 sum); the kernel alone
  // skips the check; a copy reads 4 and writes 4.
  bytesTouchedPerParameter: { fedAvgStreaming: 24, accumulateKernelOnly: 20, memoryCopy: 8 },
};
const result = {
  benchmark: 'aggregation',
  mode: smoke ? 'smoke' : 'full',
  date: new Date().toISOString(),
  machine: {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model ?? 'unknown',
    memory: os.totalmem(),
    node: process.version,
    numpy: numpyVersion ?? numpyAbsent,
  },
  method: { warmups, runs, statistic: 'median (min, max) over runs', sourceBuffers: SOURCES, gb: 1e9 },
  figures,
  ratios,
  targets,
  pass: targets.fedAvgAtLeastHalfOfCopy.met && targets.fasterThanNumpy.met !== false,
};
const file = outArg
  ? resolve(outArg.slice('--out='.length))
  : resolve(root, smoke ? 'bench/results/aggregation.smoke.json' : 'bench/results/aggregation.json');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
console.log(`targets: ${JSON.stringify(targets)}\npass: ${result.pass}\nwrote ${file}`);
