/* global console, performance, Buffer, URL, setTimeout */
// Round turnaround at scale (issue 21, item 5): one round with N = 64 simulated silos speaking the real protocol —
// enrolled with a CSR, the study approved over mutual TLS, every update uploaded as a framed binary over mutual TLS,
// concurrently — into a real hub process (node apps/hub/dist/main.js), on a PostgreSQL server and on the embedded
// database, at ~1M and ~10M parameters.
//
//   npm run bench:round-latency [-- --smoke] [-- --out=FILE] [-- --sizes=1m,10m] [-- --databases=server,embedded]
//   [-- --threads=N (TESSERA_AGGREGATION_THREADS of the hub; default: the hub's own, one per core)]
//   [-- --silos=N] [-- --runs=N] [-- --hub-cpu-prof=DIR]
//
// Measured per round:
//   turnaround  from the answer to the LAST upload (the round's quorum is then complete) to the next round's task
//               being served to a silo: the hub verifies the 64 stored updates, aggregates them (fused SIMD sum on
//               worker threads), steps the server optimizer, stores the model and opens round 2. The silo asks with
//               ?wait=0 every 50 ms over one kept connection, so the figure is exact to ~50 ms plus one request.
//   read once   baseline, same run, same files: the 64 stored update blobs read once from the hub's blob store
//               directory into one reused 4 MiB buffer (page cache as the hub sees it right after the uploads).
//               Also the same read with SHA-256 (a verified read, what the hub's integrity check costs).
//   fused sum   the aggregation step alone, in this process, on the same files: ThreadedBlockSum (what the hub's
//               FedAvg runs) on 2 worker threads and on the calling thread, block reads included.
//   hub's close the closer's own log line: ms to claim, verify the stored updates (SHA-256), aggregate and store,
//               and commit (the next round opened in the same transaction).
//   hub memory  VmHWM (peak resident set) of the hub process after each size (a fresh hub per database; the 1M
//               rounds run first, so the 10M figure is the process's peak over both).
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Agent, request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import {
  benchArgs,
  codeVersion,
  machine,
  printTable,
  procMemory,
  requireBuilt,
  round3,
  stats,
  target,
  writeReport,
} from '../lib/bench-common.mjs';
import {
  enrollSilo,
  freshDatabase,
  serverDatabaseAvailable,
  startHubProcess,
  startStudy,
  taskFor,
} from '../lib/hub-harness.mjs';

const require = createRequire(import.meta.url);
requireBuilt(['apps/hub/dist/main.js', 'apps/hub/dist/studies/heart-disease-plan.js', 'libs/protocol/dist/index.js']);
const { encodeUpdateFrame, float32Bytes, sha256Hex, modelSpecOf, SILO_STUDY_API } = require('@tessera/protocol');
const { parameterLayout, parseModelSpec } = require('@tessera/ml');
const { heartDiseasePlan } = require('../../apps/hub/dist/studies/heart-disease-plan.js');
const { ThreadedBlockSum } = require('@tessera/aggregation');

const args = benchArgs();
const { smoke } = args;
const SILOS = smoke ? 3 : Number(args.value('silos') ?? 64);
const ALL_SIZES = { '1m': [1000, 1000], '10m': [3100, 3100] };
const SIZES = smoke ? { smoke: [16, 16] } : pick(ALL_SIZES, args.value('sizes'));
const RUNS = smoke ? 1 : Number(args.value('runs') ?? 2);
const THREADS = args.value('threads');
// --hub-cpu-prof=DIR runs the hub under --cpu-prof (where a round's close spends its time, docs/benchmarks.md §13).
const hubProfileDir = args.value('hub-cpu-prof');
const MB = 1e6;

function pick(all, list) {
  if (!list) return all;
  return Object.fromEntries(list.split(',').map((k) => [k, all[k]]));
}

const planOf = (siloIds, hidden) =>
  heartDiseasePlan(siloIds, {
    model: { kind: 'mlp', hiddenLayers: hidden, activation: 'relu' },
    participation: {
      minSilosPerRound: siloIds.length,
      roundDeadlineSeconds: 3600,
      maxRoundRetries: 0,
      onSiloFailure: 'continue',
    },
  });
const parametersOf = (hidden) =>
  parameterLayout(parseModelSpec(modelSpecOf(planOf(['00000000-0000-4000-8000-000000000000'], hidden)))).size;

/** One synthetic delta of m values shared by every silo (each frame still differs: its header names its silo's count). */
function syntheticUpdate(m) {
  const delta = new Float32Array(m);
  for (let i = 0; i < m; i += 1) delta[i] = (((i * 2654435761) >>> 0) / 4294967296 - 0.5) * 1e-3;
  let s = 0;
  for (let i = 0; i < m; i += 1) s += delta[i] * delta[i];
  const payload = Buffer.from(float32Bytes(delta));
  return { delta, payload, payloadSha256: sha256Hex(payload), l2Norm: Math.sqrt(s) };
}

/** Prefix + header of one silo's frame (the payload follows from the shared buffer), and the whole frame's SHA-256. */
function frameOf(update, task, studyId, numExamples) {
  const header = {
    studyId,
    round: task.round,
    attempt: task.attempt,
    planHash: task.planHash,
    baseModelHash: task.modelHash,
    numExamples,
    length: update.delta.length,
    payloadSha256: update.payloadSha256,
    l2Norm: update.l2Norm,
    evaluation: { kind: 'exact', loss: 0.6, accuracy: 0.7, auc: 0.75, n: 20, positives: 9 },
    privacy: null,
  };
  const frame = encodeUpdateFrame(header, update.delta);
  const head = Buffer.from(frame.subarray(0, frame.length - update.payload.length));
  return { head, hash: createHash('sha256').update(frame).digest('hex') };
}

/** Streams head + payload; resolves { status, body, answeredMs } (ms since t0 when the answer was complete). */
function upload(url, tls, head, payload, t0) {
  return new Promise((done, fail) => {
    const req = httpsRequest(
      url,
      {
        method: 'POST',
        agent: false,
        ...tls,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(head.length + payload.length) },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          done({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString(),
            answeredMs: performance.now() - t0,
          }),
        );
      },
    );
    req.on('error', fail);
    req.write(head);
    req.end(payload);
  });
}

/**
 * Polls (?wait=0, every 50 ms, over ONE kept mutual-TLS connection, as an agent keeps its connection) until round
 * `round` of the study is offered; ms since t0 when it was. A new handshake per poll would load the hub's main
 * thread with 20 TLS handshakes a second while it closes the round.
 */
async function nextRoundServed(silo, hubSiloUrl, studyId, round, t0) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ...silo.tls });
  const ask = () =>
    new Promise((done, fail) => {
      const req = httpsRequest(new URL(`${SILO_STUDY_API.tasks}?wait=0`, hubSiloUrl), { agent }, (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => done(JSON.parse(Buffer.concat(chunks).toString() || '{}')));
      });
      req.on('error', fail);
      req.end();
    });
  try {
    const deadline = performance.now() + 600_000;
    while (performance.now() < deadline) {
      const body = await ask();
      if ((body.tasks ?? []).some((t) => t.studyId === studyId && t.round === round)) return performance.now() - t0;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`round ${round} of ${studyId} was not offered within 600 s`);
  } finally {
    agent.destroy();
  }
}

/** The hub's own account of its latest close (RoundCloser logs it at info), ms per phase; null if not found. */
function closeTiming(output) {
  const re =
    /closed: claimed in (\d+) ms, stored updates (?:verified|hashed as they were summed, re-checked) in (\d+) ms, aggregated and stored in (\d+) ms, committed \(next round opened\) in (\d+) ms/g;
  const all = [...output.matchAll(re)];
  const last = all[all.length - 1];
  if (!last) return null;
  const [claimed, verified, aggregated, committed] = last.slice(1, 5).map(Number);
  return { claimed, verified, aggregated, committed };
}

/** Reads the blobs once (raw, then with SHA-256) from the hub's filesystem blob store; ms of each pass. */
async function readOnce(dataDir, hashes) {
  const buffer = Buffer.alloc(4 * 2 ** 20);
  const pass = async (hashing) => {
    const t0 = performance.now();
    let bytes = 0;
    for (const hash of hashes) {
      const file = await open(join(dataDir, 'blobs', hash.slice(0, 2), hash), 'r');
      const digest = hashing ? createHash('sha256') : null;
      try {
        for (;;) {
          const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
          if (bytesRead === 0) break;
          bytes += bytesRead;
          digest?.update(buffer.subarray(0, bytesRead));
        }
      } finally {
        await file.close();
      }
      if (digest && digest.digest('hex') !== hash) throw new Error(`blob ${hash} does not hash to its name`);
    }
    return { ms: performance.now() - t0, bytes };
  };
  const raw = await pass(false);
  const verified = await pass(true);
  return { rawMs: raw.ms, verifiedMs: verified.ms, bytes: raw.bytes };
}

const serverAvailable = !smoke && (await serverDatabaseAvailable());
// The smoke run needs no PostgreSQL server; a full run measures both unless --databases names one.
/**
 * The hub's aggregation step alone, in this process, on the same stored files: the 64 updates read block by block
 * into the fused sum's slots (ranged reads of the frames' payloads) and summed on `threads` worker threads (0: this
 * thread), then the mean; ms. The same work as the hub's FedAvg minus its verification pass and its database.
 */
async function fusedSumAlone(dataDir, frames, m, threads) {
  const files = await Promise.all(frames.map((f) => open(join(dataDir, 'blobs', f.hash.slice(0, 2), f.hash), 'r')));
  const source = {
    count: frames.length,
    length: m,
    async readInto(k, start, end, target) {
      const into = Buffer.from(target.buffer, target.byteOffset, target.byteLength);
      const at = frames[k].head.length + 4 * start;
      for (let filled = 0; filled < into.length;) {
        const { bytesRead } = await files[k].read(into, filled, into.length - filled, at + filled);
        if (bytesRead === 0) throw new Error('short read');
        filled += bytesRead;
      }
    },
  };
  const sum = ThreadedBlockSum.create(m, { threads });
  try {
    const t0 = performance.now();
    await sum.sum(source, { indices: frames.map((_, k) => k), weights: frames.map(() => 1) });
    await sum.quotient(frames.length);
    return performance.now() - t0;
  } finally {
    await sum.close();
    await Promise.all(files.map((f) => f.close()));
  }
}

const databases = smoke
  ? ['embedded']
  : (args.value('databases') ?? 'server,embedded').split(',').filter((d) => d !== 'server' || serverAvailable);
const machineAtStart = machine();
console.log(
  `${SILOS} silos; sizes ${Object.entries(SIZES)
    .map(([k, h]) => `${k} (${parametersOf(h)} parameters)`)
    .join(', ')}; databases: ${databases.join(', ')}; ${RUNS} round(s) each`,
);

const figures = [];
for (const database of databases) {
  const db = database === 'server' ? await freshDatabase('tessera_bench_round_latency') : null;
  const hub = await startHubProcess({
    ...(db ? { databaseUrl: db.url } : {}),
    // info: the closer logs where each close spent its time (claimed, verified, aggregated, committed).
    env: { TESSERA_LOG_LEVEL: 'info', ...(THREADS === undefined ? {} : { TESSERA_AGGREGATION_THREADS: THREADS }) },
    ...(hubProfileDir ? { nodeOptions: ['--cpu-prof', `--cpu-prof-dir=${hubProfileDir}`] } : {}),
  });
  try {
    const silos = [];
    for (let i = 0; i < SILOS; i += 1) silos.push(await enrollSilo(hub, `Round silo ${i + 1}`));
    for (const [size, hidden] of Object.entries(SIZES)) {
      const m = parametersOf(hidden);
      const update = syntheticUpdate(m);
      const rows = [];
      for (let r = 0; r < RUNS; r += 1) {
        const study = await startStudy(
          hub,
          planOf(
            silos.map((s) => s.id),
            hidden,
          ),
          silos,
        );
        const task = await taskFor(silos[0], study.id, 2);
        const frames = silos.map((_, i) => frameOf(update, task, study.id, 100 + i));
        const t0 = performance.now();
        const answers = await Promise.all(
          silos.map((s, i) =>
            upload(
              new URL(SILO_STUDY_API.update(study.id, task.round), hub.siloUrl),
              s.tls,
              frames[i].head,
              update.payload,
              t0,
            ),
          ),
        );
        for (const a of answers) if (a.status !== 200) throw new Error(`upload refused: ${a.status} ${a.body}`);
        const lastAnswerMs = Math.max(...answers.map((a) => a.answeredMs));
        const servedMs = await nextRoundServed(silos[0], hub.siloUrl, study.id, task.round + 1, t0);
        const close = closeTiming(hub.output());
        const read = await readOnce(
          hub.dataDir,
          frames.map((f) => f.hash),
        );
        // Two cores (the hub's default here) and the calling thread alone, interleaved with the read above.
        const fused2Ms = await fusedSumAlone(hub.dataDir, frames, m, 2);
        const fused0Ms = await fusedSumAlone(hub.dataDir, frames, m, 0);
        const row = {
          close,
          fused2Ms,
          fused0Ms,
          uploadWaveMs: lastAnswerMs,
          turnaroundMs: servedMs - lastAnswerMs,
          readOnceMs: read.rawMs,
          verifiedReadMs: read.verifiedMs,
          updateBytes: read.bytes,
        };
        rows.push(row);
        console.log(
          `  ${database} ${size} round ${r + 1}: uploads ${row.uploadWaveMs.toFixed(0)} ms; turnaround ` +
            `${row.turnaroundMs.toFixed(0)} ms; read once ${row.readOnceMs.toFixed(0)} ms ` +
            `(verified ${row.verifiedReadMs.toFixed(0)} ms) for ${(read.bytes / MB).toFixed(0)} MB; fused sum alone ` +
            `${row.fused2Ms.toFixed(0)} ms on 2 threads, ${row.fused0Ms.toFixed(0)} ms on the calling thread; hub's close: ` +
            JSON.stringify(close),
        );
      }
      const memory = procMemory(hub.pid);
      const turnaround = stats(rows.map((x) => x.turnaroundMs));
      const readMs = stats(rows.map((x) => x.readOnceMs));
      figures.push({
        database: database === 'server' ? 'postgresql server' : 'embedded pglite',
        size,
        silos: SILOS,
        parameters: m,
        updateBytesTotal: rows[0].updateBytes,
        uploadWaveMs: stats(rows.map((x) => x.uploadWaveMs)),
        turnaroundMs: turnaround,
        readOnceMs: readMs,
        verifiedReadMs: stats(rows.map((x) => x.verifiedReadMs)),
        hubCloseMs: Object.fromEntries(
          ['claimed', 'verified', 'aggregated', 'committed'].map((k) => [
            k,
            rows.some((x) => x.close) ? stats(rows.filter((x) => x.close).map((x) => x.close[k])) : null,
          ]),
        ),
        fusedSumAloneMs: {
          twoThreads: stats(rows.map((x) => x.fused2Ms)),
          callingThread: stats(rows.map((x) => x.fused0Ms)),
        },
        turnaroundOverReadOnce: round3(turnaround.median / readMs.median),
        hubPeakRssMB: round3(memory.peakRssBytes / 2 ** 20),
        hubPeakRssBytes: memory.peakRssBytes,
      });
    }
  } finally {
    await hub.stop();
    await db?.drop();
  }
}

printTable(
  figures.map((f) => ({
    database: f.database,
    size: `${f.size} (${f.parameters})`,
    'turnaround ms [min–max]': `${f.turnaroundMs.median.toFixed(0)} [${f.turnaroundMs.min.toFixed(0)}–${f.turnaroundMs.max.toFixed(0)}]`,
    'read once ms': f.readOnceMs.median.toFixed(0),
    'verified read ms': f.verifiedReadMs.median.toFixed(0),
    'fused sum ms (2 thr / 0)': `${f.fusedSumAloneMs.twoThreads.median.toFixed(0)} / ${f.fusedSumAloneMs.callingThread.median.toFixed(0)}`,
    'turnaround / read': f.turnaroundOverReadOnce,
    'hub peak RSS MiB': f.hubPeakRssMB,
  })),
  [
    'database',
    'size',
    'turnaround ms [min–max]',
    'read once ms',
    'verified read ms',
    'fused sum ms (2 thr / 0)',
    'turnaround / read',
    'hub peak RSS MiB',
  ],
);
const largest = figures.filter((f) => f.parameters === Math.max(...figures.map((x) => x.parameters)));
const worst = Math.max(...largest.map((f) => f.turnaroundOverReadOnce));
const targets = {
  turnaroundUnderTwiceReadOnce: target(worst, 2, {
    atMost: true,
    description: `worst database at the largest size of (turnaround / time to read the ${SILOS} updates once)`,
  }),
};
const report = {
  benchmark: 'round-latency',
  mode: smoke ? 'smoke' : 'full',
  date: new Date().toISOString(),
  code: codeVersion(),
  machine: machineAtStart,
  loadAverageAtEnd: machine().loadAverage,
  method: {
    silos: SILOS,
    runs: RUNS,
    aggregationThreads: THREADS ?? 'hub default (auto: one per core)',
    statistic: 'median (min, max) over rounds; ms; memory in MiB (VmHWM of the hub process)',
    poll: 'GET tasks?wait=0 every 50 ms by one silo over one kept mutual-TLS connection, after the last upload was answered',
  },
  figures,
  targets,
  pass: targets.turnaroundUnderTwiceReadOnce.met === true,
};
const file = writeReport('round-latency', report, args);
for (const [name, t] of Object.entries(targets)) {
  console.log(`${name}: ${t.value} (target ${t.comparison} ${t.target}) ${t.met ? 'PASS' : 'MISS'}`);
}
console.log(`wrote ${file}`);
