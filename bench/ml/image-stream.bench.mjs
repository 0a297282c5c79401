/* global console, process, setInterval, clearInterval */
// Agent memory while training on many images (issue 17): the peak resident set of a process that does what an agent
// does with an image study — reads the manifest, checks every file once (decodes it), then trains a network with
// DP-SGD, reading each step's images from disk — at N = 10,000 and N = 100,000 generated 28×28 grey PNGs. The claim
// is that the peak does not grow with N: memory is bounded by the process's fixed cost (Node, tfjs-wasm, the network)
// plus one batch of rows, the decodes in flight, and the manifest's index (its paths and labels, about 100 bytes per
// row), with the decoded-image cache off (cacheBytes 0: the agent's setting for folders beyond its cache budget).
//
//   npm run bench:image-stream [-- --smoke] [-- --sizes=10000,100000] [-- --steps=N] [-- --out=FILE]
//
// Each size runs in a fresh child process (this file with --child), so one size's heap never carries into another's;
// the parent reads the child's VmHWM (peak RSS) from /proc when it exits, and the child also reports its own
// process.memoryUsage() peak sampled every step. Training: the digits DP preset network, DP-SGD at C = 1, σ = 1,
// expected batch 64 at every N (q = 64 / N), `--steps` steps (default 200): the same image reads per step at both
// sizes; an epoch of 100,000 images is not needed to show the bound, and would take an hour on this machine.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  benchArgs,
  codeVersion,
  machine,
  printTable,
  procMemory,
  requireBuilt,
  round3,
  target,
  writeReport,
} from '../lib/bench-common.mjs';

const require = createRequire(import.meta.url);
const args = benchArgs();
const MiB = 2 ** 20;
const BATCH = 64;
/** The stated bound on the measured process's peak RSS, whatever the number of images (docs/benchmarks.md). */
const BOUND_MIB = 512;

/** A deterministic 28×28 grey "digit": a stroke pattern of the label, shifted by the index (no real data needed). */
function syntheticPixels(index, label) {
  const pixels = new Uint8Array(784);
  const dx = index % 5;
  const dy = (index >> 3) % 5;
  for (let r = 4; r < 24; r++) {
    for (let c = 4; c < 24; c++) {
      const on = (r * (label + 3) + c * (label + 1)) % 11 < 3;
      if (on) pixels[Math.min(27, r + dy) * 28 + Math.min(27, c + dx)] = 128 + ((index * 7 + r * c) % 128);
    }
  }
  return pixels;
}

/** Writes N PNG files in folders of 1,000 and the manifest (file,label); returns the manifest's path. */
function generateImages(dir, n, greyPng) {
  const lines = ['file,label'];
  for (let i = 0; i < n; i++) {
    const folder = `images/${String(Math.floor(i / 1000)).padStart(3, '0')}`;
    if (i % 1000 === 0) mkdirSync(join(dir, folder), { recursive: true });
    const label = i % 10;
    const file = `${folder}/${i}.png`;
    writeFileSync(join(dir, file), greyPng(syntheticPixels(i, label), 28, 28));
    lines.push(`${file},${label}`);
  }
  const manifest = join(dir, 'manifest.csv');
  writeFileSync(manifest, lines.join('\n') + '\n');
  return manifest;
}

/** The measured process: prepare the images as the agent does, then DP-SGD steps reading batches from disk. */
async function child(manifest, steps) {
  const { readFileSync } = await import('node:fs');
  const { dirname } = await import('node:path');
  const ml = require('@tessera/ml');
  const { prepareImages } = require('../../apps/agent/dist/data/image-dataset.js');
  const { digitsDpNetwork, DIGITS_SCHEMA } = require('../../apps/hub/dist/cli/demo-digits.js');
  await ml.selectBackend();
  let peakHeap = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peakHeap = Math.max(peakHeap, m.heapUsed + m.external + m.arrayBuffers);
  };
  const started = Date.now();
  const prepared = await prepareImages({
    manifest: readFileSync(manifest, 'utf8'),
    folder: dirname(manifest),
    schema: DIGITS_SCHEMA,
    shape: { height: 28, width: 28, channels: 1 },
    cacheBytes: 0,
  });
  sample();
  const prepareSeconds = (Date.now() - started) / 1000;
  const train = prepared.train;
  const network = digitsDpNetwork();
  const parameters = ml.initialNetworkParameters(network, 7);
  const q = Math.min(1, BATCH / train.n);
  const source = {
    n: train.n,
    readRows: async (indices, out, step) => {
      await train.readRows(indices, out, step);
      sample();
    },
  };
  const noiseWorker = new (require('@tessera/dp').GaussianNoiseWorker)();
  const trainingStarted = Date.now();
  const result = await ml.trainNetwork({
    network,
    parameters,
    x: source,
    y: train.y,
    steps,
    learningRate: 0.5,
    seed: 1,
    dp: {
      clipNorm: 1,
      noiseMultiplier: 1,
      samplingRate: q,
      expectedBatchSize: BATCH,
      noise: (length, latticeSigma) => noiseWorker.drawIntegers(length, latticeSigma),
    },
  });
  await noiseWorker.close();
  sample();
  process.stdout.write(
    JSON.stringify({
      images: prepared.train.n + prepared.test.n,
      train: train.n,
      cached: prepared.cached,
      steps: result.steps,
      examplesUsed: result.examplesUsed,
      prepareSeconds,
      trainingSeconds: (Date.now() - trainingStarted) / 1000,
      peakHeapBytes: peakHeap,
    }) + '\n',
  );
}

/** Runs one size in a child process and reads its peak RSS (VmHWM) just before it exits. */
function measure(manifest, steps) {
  return new Promise((resolvePromise, reject) => {
    const proc = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', manifest, String(steps)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    let peakRssBytes = 0;
    // VmHWM is the process's own high-water mark; polled so the last reading before exit is kept.
    const poll = setInterval(() => {
      try {
        // A process on its way out has no VmHWM line any more (NaN): keep the last reading.
        const { peakRssBytes: now } = procMemory(proc.pid);
        if (Number.isFinite(now)) peakRssBytes = Math.max(peakRssBytes, now);
      } catch {
        // the process has just exited: its last reading stands
      }
    }, 200);
    proc.stdout.on('data', (d) => (out += d));
    proc.on('exit', (code) => {
      clearInterval(poll);
      if (code !== 0) return reject(new Error(`the measured process exited with ${code}`));
      resolvePromise({ ...JSON.parse(out.trim().split('\n').pop()), peakRssBytes });
    });
  });
}

async function parent() {
  requireBuilt(['libs/ml/dist/index.js', 'apps/agent/dist/data/image-dataset.js', 'apps/hub/dist/cli/demo-digits.js']);
  const { greyPng } = require('../../apps/hub/dist/cli/demo-digits-data.js');
  const sizes = (args.value('sizes') ?? (args.smoke ? '500,2000' : '10000,100000')).split(',').map(Number);
  const steps = Number(args.value('steps') ?? (args.smoke ? 5 : 200));
  const scratch = mkdtempSync(join(tmpdir(), 'tessera-image-stream-'));
  const rows = [];
  try {
    for (const n of sizes) {
      const dir = join(scratch, String(n));
      const generated = Date.now();
      const manifest = generateImages(dir, n, greyPng);
      const generateSeconds = (Date.now() - generated) / 1000;
      const r = await measure(manifest, steps);
      rows.push({ n, generateSeconds, ...r });
      console.log(
        `${n} images: peak RSS ${(r.peakRssBytes / MiB).toFixed(1)} MiB, peak JS heap + buffers ${(r.peakHeapBytes / MiB).toFixed(1)} MiB; checked in ${r.prepareSeconds.toFixed(1)} s, ${r.steps} DP-SGD steps in ${r.trainingSeconds.toFixed(1)} s`,
      );
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  printTable(
    rows.map((r) => ({
      images: r.n,
      'peak RSS MiB': (r.peakRssBytes / MiB).toFixed(1),
      'heap+buffers MiB': (r.peakHeapBytes / MiB).toFixed(1),
      'check s': r.prepareSeconds.toFixed(1),
      'train s': r.trainingSeconds.toFixed(1),
      cached: String(r.cached),
    })),
    ['images', 'peak RSS MiB', 'heap+buffers MiB', 'check s', 'train s', 'cached'],
  );
  const first = rows[0];
  const last = rows[rows.length - 1];
  const growth = (last.peakRssBytes - first.peakRssBytes) / MiB;
  const file = writeReport(
    'image-stream',
    {
      benchmark: 'image-stream',
      command: `npm run bench:image-stream${args.smoke ? ' -- --smoke' : ''}`,
      machine: machine(),
      code: codeVersion(),
      batch: BATCH,
      steps,
      sizes: rows.map((r) => ({
        ...r,
        peakRssMiB: round3(r.peakRssBytes / MiB),
        peakHeapMiB: round3(r.peakHeapBytes / MiB),
      })),
      targets: {
        peakBounded: target(last.peakRssBytes / MiB, BOUND_MIB, {
          atMost: true,
          description: `peak RSS (MiB) at ${last.n} images, against the stated bound of ${BOUND_MIB} MiB whatever the number of images`,
        }),
        growthMiB: round3(growth),
      },
    },
    args,
  );
  console.log(
    `peak RSS ${first.n} → ${last.n} images: ${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MiB; report: ${file}`,
  );
}

if (process.argv[2] === '--child') await child(process.argv[3], Number(process.argv[4]));
else await parent();
