/* global console, process, performance, global */
// Robust aggregators against FedAvg, in the same run: time and peak memory of one aggregation of n updates of m float32
// parameters, each aggregator in memory (all n updates loaded) and blockwise (read through an UpdateBlockReader from a
// file of the n updates, so the process never holds them all). Plus a calibration of update screening: false flags in
// attack-free rounds and misses of a ×10 and a sign-flipped update, over 200 seeded rounds per model size.
//
//   npm run bench:robust-aggregation [-- --smoke] [-- --parameters=10000000] [-- --updates=8,32]
//                                    [-- --only=median,krum,…] [-- --variants=blockwise] [-- --runs=N] [-- --out=FILE]
//
// Imports the BUILT library. Writes bench/results/robust-aggregation.json (smoke: robust-aggregation.smoke.json).
//
// Method. For each n the parent writes one file of n updates (a shared centre plus per-silo noise, the last update
// sign-flipped ×10: a realistic round, and Weiszfeld's iteration count depends on the data) to a temporary directory.
// Every (aggregator, variant, n) case then runs in a fresh Node process (--expose-gc): it loads the updates (in
// memory) or opens the file (blockwise), collects garbage, resets the kernel's peak-RSS mark (/proc/self/clear_refs
// "5"), runs the aggregation once and reads VmHWM: peak memory = VmHWM − RSS before the run, i.e. what the
// aggregation added on top of its inputs. Then it times `runs` more aggregations, each followed by FedAvg over the same
// updates, so the ratio compares the two within the same seconds (median, min, max). FedAvg is the library's
// validating FedAvgAggregator (weighted, one update at a time; in the blockwise rows it streams each whole update from
// the file into one reused buffer, the hub's path). Blockwise reads come from the page cache after the first pass, so the
// times are CPU times of the algorithms, not disk times.
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  benchArgs,
  codeVersion,
  machine,
  printTable,
  requireBuilt,
  round3,
  stats,
  writeReport,
} from '../lib/bench-common.mjs';

const require = createRequire(import.meta.url);
requireBuilt(['libs/aggregation/dist/index.js']);
const lib = require('@tessera/aggregation');

const args = benchArgs();
const thisFile = fileURLToPath(import.meta.url);

/** The cases: how each aggregator is configured for n updates (f = ⌊(n − 3)/2⌋, the most Krum tolerates). */
const byzantineFor = (n) => Math.floor((n - 3) / 2);
const AGGREGATORS = {
  fedavg: () => ({ aggregator: { kind: 'fedavg' } }),
  median: () => ({ aggregator: { kind: 'coordinate-median' } }),
  'trimmed-mean': () => ({ aggregator: { kind: 'trimmed-mean', trimFraction: 0.2 } }),
  krum: (n) => ({ aggregator: { kind: 'krum', byzantine: byzantineFor(n) } }),
  'multi-krum': (n) => ({ aggregator: { kind: 'krum', byzantine: byzantineFor(n), selected: n - byzantineFor(n) } }),
  'geometric-median': () => ({ aggregator: { kind: 'geometric-median' } }),
  'median+norm-bound': () => ({
    aggregator: { kind: 'coordinate-median' },
    normBound: { mode: 'median-multiple', multiplier: 2 },
  }),
  screening: () => ({ screening: true }),
};

// ---------------------------------------------------------------------------------------------------------------
// Child: one case, one process.

function procStatus() {
  const text = readFileSync('/proc/self/status', 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
}

function loadAll(file, n, m) {
  const fd = openSync(file, 'r');
  try {
    return Array.from({ length: n }, (_, k) => {
      const u = new Float32Array(m);
      readSync(fd, new Uint8Array(u.buffer), 0, 4 * m, 4 * m * k);
      return u;
    });
  } finally {
    closeSync(fd);
  }
}

/** File handles a child opened, closed before it reports. */
const openHandles = [];
async function openFile(file) {
  const handle = await open(file, 'r');
  openHandles.push(handle);
  return handle;
}

/** An UpdateBlockReader over the file: one reusable buffer per update (the contract allows it). */
async function fileReader(file, n, m) {
  const handle = await openFile(file);
  const buffers = new Map();
  return {
    handle,
    reader: {
      count: n,
      length: m,
      readBlock: async (k, start, end) => {
        const length = end - start;
        let buffer = buffers.get(k);
        if (buffer === undefined || buffer.length < length) {
          buffer = new Float32Array(length);
          buffers.set(k, buffer);
        }
        const view = buffer.subarray(0, length);
        await handle.read(new Uint8Array(view.buffer, view.byteOffset, 4 * length), 0, 4 * length, 4 * (m * k + start));
        return view;
      },
    },
  };
}

/** FedAvg over loaded updates: the library's validating FedAvgAggregator, weighted by example counts. */
function fedAvgInMemory(updates) {
  const m = updates[0].length;
  return async () => {
    const fedavg = new lib.FedAvgAggregator(m);
    updates.forEach((u, k) => fedavg.add(u, 100 + k));
    return fedavg.finish();
  };
}

/** FedAvg streaming from the file, the hub's path: each whole update read in turn into one reused buffer. */
async function fedAvgStreaming(file, n, m) {
  const handle = await openFile(file);
  const update = new Float32Array(m);
  return async () => {
    const fedavg = new lib.FedAvgAggregator(m);
    for (let k = 0; k < n; k += 1) {
      await handle.read(new Uint8Array(update.buffer), 0, 4 * m, 4 * m * k);
      fedavg.add(update, 100 + k);
    }
    return fedavg.finish();
  };
}

/** Builds the `run()` of a case: a function doing one whole aggregation, and what the library predicts for it. */
async function prepareCase({ name, variant, file, n, m }) {
  const spec = AGGREGATORS[name](n);
  const shape = { updates: n, parameters: m };
  if (spec.screening) {
    const aggregate = new Float32Array(m);
    const previousUpdate = new Float32Array(m).fill(1e-3);
    const predicted = lib.screeningMemory(shape, { previousUpdate: true }).find((v) => v.variant === variant);
    if (variant === 'in-memory') {
      const updates = loadAll(file, n, m);
      aggregate.set(updates[0]);
      // Loaded before the measurement: the updates and both reference vectors.
      const resident = 4 * n * m + 8 * m;
      return { predicted, resident, run: async () => lib.screenUpdates(updates, { aggregate, previousUpdate }) };
    }
    const { reader } = await fileReader(file, n, m);
    await reader.readBlock(0, 0, m).then((b) => aggregate.set(b));
    return { predicted, resident: 8 * m, run: () => lib.screenUpdatesBlockwise(reader, { aggregate, previousUpdate }) };
  }
  const variants = lib.aggregationMemory(spec, shape);
  if (spec.aggregator.kind === 'fedavg') {
    const predicted = variants[0];
    if (variant === 'in-memory') {
      // The update being added is already loaded.
      return { predicted, resident: 4 * m, run: fedAvgInMemory(loadAll(file, n, m)) };
    }
    return { predicted, resident: 0, run: await fedAvgStreaming(file, n, m) };
  }
  const predicted = variants.find((v) => v.variant === variant);
  if (variant === 'in-memory') {
    const updates = loadAll(file, n, m);
    return { predicted, resident: 4 * n * m, run: async () => lib.aggregateRobust(spec, updates) };
  }
  const { reader } = await fileReader(file, n, m);
  return { predicted, resident: 0, run: () => lib.aggregateRobustBlockwise(spec, reader) };
}

async function child(config) {
  const { run, predicted, resident } = await prepareCase(config);
  global.gc();
  const before = procStatus();
  writeFileSync('/proc/self/clear_refs', '5');
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const first = await run();
  const firstMs = performance.now() - t0;
  const firstCpuUsage = process.cpuUsage(c0);
  const firstCpuMs = (firstCpuUsage.user + firstCpuUsage.system) / 1e3;
  const after = procStatus();
  // Timed runs alternate with FedAvg over the same updates (loaded, or streamed from the file), so the ratio compares
  // the two within the same seconds of a shared machine.
  const baseline =
    config.runs === 0
      ? undefined
      : config.variant === 'in-memory'
        ? fedAvgInMemory(loadAll(config.file, config.n, config.m))
        : await fedAvgStreaming(config.file, config.n, config.m);
  // Wall time, and CPU time of the process (all threads, user + system): on a shared machine the CPU time is what
  // load disturbs least.
  const times = [];
  const fedAvgTimes = [];
  const cpuTimes = [];
  const fedAvgCpuTimes = [];
  const cpuMs = (start) => {
    const { user, system } = process.cpuUsage(start);
    return (user + system) / 1e3;
  };
  for (let r = 0; r < config.runs; r += 1) {
    global.gc();
    let t = performance.now();
    let c = process.cpuUsage();
    await run();
    times.push(performance.now() - t);
    cpuTimes.push(cpuMs(c));
    global.gc();
    t = performance.now();
    c = process.cpuUsage();
    await baseline();
    fedAvgTimes.push(performance.now() - t);
    fedAvgCpuTimes.push(cpuMs(c));
  }
  await Promise.all(openHandles.map((h) => h.close()));
  const trace = first.trace ? first.trace.map((t) => t.step) : undefined;
  const geometric = first.trace?.find?.((t) => t.step === 'geometric-median');
  const ms = stats(times.length ? times : [firstMs]);
  const fedAvgMs = fedAvgTimes.length ? stats(fedAvgTimes) : null;
  const cpu = stats(cpuTimes.length ? cpuTimes : [firstCpuMs]);
  const fedAvgCpu = fedAvgCpuTimes.length ? stats(fedAvgCpuTimes) : null;
  process.stdout.write(
    `${JSON.stringify({
      firstMs,
      firstCpuMs,
      ms,
      fedAvgMs,
      timeOverFedAvg: fedAvgMs ? round3(ms.median / fedAvgMs.median) : null,
      cpuMs: cpu,
      fedAvgCpuMs: fedAvgCpu,
      cpuOverFedAvg: fedAvgCpu ? round3(cpu.median / fedAvgCpu.median) : null,
      peakBytes: after.hwm - before.rss,
      rssBeforeBytes: before.rss,
      predictedBytes: predicted.bytes,
      // What the library's descriptor predicts beyond what was loaded before the measurement started.
      predictedBeyondInputsBytes: predicted.bytes - resident,
      predictedFormula: predicted.formula,
      passes: predicted.passes,
      trace,
      weiszfeldIterations: geometric?.iterations,
    })}\n`,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Parent.

function lcg(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296) * 2 - 1;
}

/** n updates: centre + noise (uniform, scale 1e-2), the last one sign-flipped and scaled ×10. */
function writeRound(file, n, m) {
  const centreRandom = lcg(12345);
  const centre = Float32Array.from({ length: m }, () => centreRandom() * 1e-2);
  const fd = openSync(file, 'w');
  try {
    const u = new Float32Array(m);
    for (let k = 0; k < n; k += 1) {
      const noise = lcg(1000 + k);
      const scale = k === n - 1 ? -10 : 1;
      for (let i = 0; i < m; i += 1) u[i] = scale * (centre[i] + noise() * 1e-2);
      writeSync(fd, new Uint8Array(u.buffer));
    }
  } finally {
    closeSync(fd);
  }
}

function runChild(config) {
  const out = execFileSync(process.execPath, ['--expose-gc', thisFile, '--child', JSON.stringify(config)], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').pop());
}

/** False-flag and miss rates of screening at its defaults, over 200 seeded rounds of 8 honest silos per size. */
function screeningCalibration(sizes, trials) {
  const normal = (() => {
    const u = lcg(777);
    return () => Math.sqrt(-2 * Math.log(1 - (u() + 1) / 2)) * Math.cos(Math.PI * (u() + 1));
  })();
  const mean = (us) => Float32Array.from(us[0], (_, i) => us.reduce((s, x) => s + x[i], 0) / us.length);
  return sizes.map((m) => {
    let falseFlags = 0;
    let missedScaled = 0;
    let missedFlipped = 0;
    for (let t = 0; t < trials; t += 1) {
      const mu = Float32Array.from({ length: m }, () => normal() / Math.sqrt(m));
      const honest = () => Float32Array.from(mu, (x) => x + (2 / Math.sqrt(m)) * normal());
      const previousUpdate = Float32Array.from(mu, (x) => x + (2 / Math.sqrt(8 * m)) * normal());
      const clean = Array.from({ length: 8 }, honest);
      if (lib.screenUpdates(clean, { aggregate: mean(clean), previousUpdate }).flagged.length > 0) falseFlags += 1;
      const attacked = [...clean, Float32Array.from(honest(), (x) => 10 * x), Float32Array.from(honest(), (x) => -x)];
      const report = lib.screenUpdates(attacked, { aggregate: lib.coordinateMedian(attacked), previousUpdate });
      if (!report.flagged.includes(8)) missedScaled += 1;
      if (!report.flagged.includes(9)) missedFlipped += 1;
    }
    // Each attack counted apart: at the defaults a ×10 update is flagged, while a sign flip among updates this noisy
    // sits within the cosine floor (the price of flagging no honest hospital, docs/aggregation.md).
    return {
      parameters: m,
      trials,
      falseFlagRounds: falseFlags,
      missedScaledRounds: missedScaled,
      missedSignFlipRounds: missedFlipped,
    };
  });
}

async function parent() {
  const { smoke } = args;
  const m = Number(args.value('parameters') ?? (smoke ? 20_000 : 1_000_000));
  const counts = (args.value('updates') ?? (smoke ? '8' : '8,32')).split(',').map(Number);
  const names = (args.value('only') ?? Object.keys(AGGREGATORS).join(',')).split(',');
  const variants = (args.value('variants') ?? 'in-memory,blockwise').split(',');
  const runs = Number(args.value('runs') ?? (smoke ? 1 : 3));
  for (const name of names) if (!AGGREGATORS[name]) throw new Error(`unknown aggregator ${name}`);
  const machineAtStart = machine();
  const dir = mkdtempSync(join(tmpdir(), 'tessera-robust-bench-'));
  const figures = [];
  try {
    for (const n of counts) {
      const file = join(dir, `round-${n}.f32`);
      writeRound(file, n, m);
      for (const name of names) {
        for (const variant of variants) {
          const result = runChild({ name, variant, file, n, m, runs });
          figures.push({ aggregator: name, variant, updates: n, parameters: m, ...result });
          console.log(
            `${name} ${variant} n=${n}: ${result.ms.median.toFixed(1)} ms, peak +${lib.formatBytes(result.peakBytes)}`,
          );
        }
      }
      rmSync(file);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  printTable(
    figures.map((f) => ({
      aggregator: f.aggregator,
      variant: f.variant,
      n: f.updates,
      'ms median [min–max]': `${f.ms.median.toFixed(0)} [${f.ms.min.toFixed(0)}–${f.ms.max.toFixed(0)}]`,
      'FedAvg ms': f.fedAvgMs ? f.fedAvgMs.median.toFixed(0) : '—',
      '× FedAvg': f.timeOverFedAvg ?? '—',
      'CPU ms': f.cpuMs.median.toFixed(0),
      'CPU × FedAvg': f.cpuOverFedAvg ?? '—',
      'peak (measured)': lib.formatBytes(Math.max(0, f.peakBytes)),
      'predicted beyond inputs': lib.formatBytes(f.predictedBeyondInputsBytes),
      'predicted total': lib.formatBytes(f.predictedBytes),
      passes: f.passes,
    })),
    [
      'aggregator',
      'variant',
      'n',
      'ms median [min–max]',
      'FedAvg ms',
      '× FedAvg',
      'CPU ms',
      'CPU × FedAvg',
      'peak (measured)',
      'predicted beyond inputs',
      'predicted total',
      'passes',
    ],
  );
  const calibration = args.has('--no-calibration')
    ? []
    : screeningCalibration(smoke ? [200] : [20, 50, 200, 2000], smoke ? 20 : 200);
  for (const c of calibration) {
    console.log(
      `screening m=${c.parameters}: false flags in ${c.falseFlagRounds}/${c.trials} attack-free rounds, ` +
        `missed ×10 in ${c.missedScaledRounds}/${c.trials}, sign flip in ${c.missedSignFlipRounds}/${c.trials}`,
    );
  }
  const report = {
    benchmark: 'robust-aggregation',
    mode: smoke ? 'smoke' : 'full',
    date: new Date().toISOString(),
    code: codeVersion(),
    machine: machineAtStart,
    loadAverageAtEnd: machine().loadAverage,
    method: {
      runs,
      statistic: 'median (min, max) over timed runs after one measured first run; peak = VmHWM − RSS before the run',
      blockParameters: lib.DEFAULT_BLOCK_PARAMETERS,
      data: 'centre + uniform noise (1e-2), last update sign-flipped ×10',
      krumByzantine: 'f = ⌊(n − 3)/2⌋; Multi-Krum selects n − f',
    },
    figures,
    screeningCalibration: calibration,
    targets: {},
    pass: true,
  };
  console.log(`wrote ${writeReport('robust-aggregation', report, args)}`);
}

if (process.argv.includes('--child')) {
  await child(JSON.parse(process.argv[process.argv.indexOf('--child') + 1]));
} else {
  await parent();
}
