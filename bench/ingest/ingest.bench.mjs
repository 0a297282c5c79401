/* global console, performance, process, Buffer, URL */
// Hub ingest: k agents upload framed updates of m float32 parameters CONCURRENTLY over mutual TLS on loopback into
// a running hub (a separate `node apps/hub/dist/main.js` process on a fresh PostgreSQL database), against the same
// uploads into a bare Node HTTPS server with the same TLS settings that discards the bytes (baseline, same run).
//
//   npm run bench:ingest [-- --smoke] [-- --out=FILE]
//
// Setup goes through the real API and protocol: silos registered by the admin and enrolled with a CSR, a study whose
// model is an MLP on the heart-disease schema with ~10M parameters (hidden layers [3100, 3100]), each silo approves
// the exact plan hash, the study starts. One study per measured wave (round 1 of each). Each study invites one
// extra silo that never uploads, so the round stays open and the hub's memory is that of INGEST, not aggregation.
// Throughput = k × frame bytes / wall time from the first request to the last response. Hub memory: VmHWM (peak
// resident set) of the hub process from /proc, read after the last wave of each k (a fresh hub per k).
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { request as httpsRequest } from 'node:https';
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
const { encodeUpdateFrame, float32Bytes, sha256Hex, SILO_STUDY_API } = require('@tessera/protocol');
const { parameterLayout, parseModelSpec } = require('@tessera/ml');
const { createCertificateAuthority, issueServerCertificate } = require('@tessera/pki');
const { heartDiseasePlan } = require('../../apps/hub/dist/studies/heart-disease-plan.js');
const { modelSpecOf } = require('@tessera/protocol');
const { Float32StreamCheck } = require('../../apps/hub/dist/rounds/update-receiver.js');

const args = benchArgs();
const { smoke } = args;
const HIDDEN = smoke ? [64, 64] : [3100, 3100];
// --k=4,16 measures only those agent counts; --hub-cpu-prof=DIR runs the hub under --cpu-prof (for docs/benchmarks.md).
const KS = args.value('k') ? args.value('k').split(',').map(Number) : smoke ? [2] : [4, 16, 64];
const hubProfileDir = args.value('hub-cpu-prof');
const WARMUPS = smoke ? 0 : 1;
const RUNS = smoke ? 1 : 3;
const MB = 1e6;

const basePlanOf = (siloIds) =>
  heartDiseasePlan(siloIds, {
    model: { kind: 'mlp', hiddenLayers: HIDDEN, activation: 'relu' },
    participation: { minSilosPerRound: 1, roundDeadlineSeconds: 3600, maxRoundRetries: 0, onSiloFailure: 'continue' },
  });
const M = parameterLayout(parseModelSpec(modelSpecOf(basePlanOf(['00000000-0000-4000-8000-000000000000'])))).size;

// One synthetic delta shared by every silo (the frames still differ: each header names its own example count).
const delta = new Float32Array(M);
for (let i = 0; i < M; i += 1) delta[i] = (((i * 2654435761) >>> 0) / 4294967296 - 0.5) * 1e-3;
const payload = Buffer.from(float32Bytes(delta));
const payloadSha256 = sha256Hex(payload);
let sumSquares = 0;
for (let i = 0; i < M; i += 1) sumSquares += delta[i] * delta[i];
const l2Norm = Math.sqrt(sumSquares);

/** The frame's prefix + header for one silo; the payload is written after it from the shared buffer. */
function frameHead(task, studyId, numExamples) {
  const header = {
    studyId,
    round: task.round,
    attempt: task.attempt,
    planHash: task.planHash,
    baseModelHash: task.modelHash,
    numExamples,
    length: M,
    payloadSha256,
    l2Norm,
    // The plan (no DP) releases exact metrics and record counts; training loss never leaves a silo.
    evaluation: { kind: 'exact', loss: 0.6, accuracy: 0.7, auc: 0.75, n: 20, positives: 9 },
    privacy: null,
  };
  const frame = encodeUpdateFrame(header, delta);
  return Buffer.from(frame.subarray(0, frame.length - payload.length));
}

/**
 * Streams head + payload as one request; resolves { status, body, sentMs, answeredMs } at the end of the response
 * (times from `t0`: the last body byte handed to the socket, and the whole answer received).
 */
function upload(url, tls, head, t0) {
  return new Promise((done, fail) => {
    let sentMs = NaN;
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
            sentMs,
            answeredMs: performance.now() - t0,
          }),
        );
      },
    );
    req.on('error', fail);
    req.write(head);
    req.end(payload, () => (sentMs = performance.now() - t0));
  });
}

/**
 * k concurrent uploads; wall ms from the first request to the last response, and the median over uploads of the
 * time between the last body byte leaving the client and the answer (the server's per-upload tail: commit,
 * database, audit, receipt).
 */
async function wave(targets) {
  const t0 = performance.now();
  const results = await Promise.all(targets.map((t) => upload(t.url, t.tls, t.head, t0)));
  const ms = performance.now() - t0;
  for (const r of results) if (r.status !== 200) throw new Error(`upload refused: ${r.status} ${r.body}`);
  return { ms, answerAfterSentMs: stats(results.map((r) => r.answeredMs - r.sentMs)).median };
}

async function startDiscardServer(clientCaPem) {
  const ca = createCertificateAuthority({ commonName: 'Tessera bench baseline CA', validityDays: 2 });
  const server = issueServerCertificate({ ca, hostnames: ['localhost'], ips: ['127.0.0.1'], validityDays: 2 });
  const child = spawn(process.execPath, [new URL('./discard-server.mjs', import.meta.url).pathname], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  child.stdin.end(JSON.stringify({ keyPem: server.privateKeyPem, certPem: server.certificatePem, clientCaPem }));
  const port = await new Promise((done) => child.stdout.once('data', (c) => done(Number(c.toString().trim()))));
  return {
    url: `https://127.0.0.1:${port}/upload`,
    caPem: ca.certificatePem,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.on('exit', r));
    },
  };
}

/** The receiver's float check alone, in process: the previous per-value readFloatLE loop vs Float32StreamCheck. */
function receiverCheckFigures() {
  const chunk = 64 * 1024; // a typical TLS socket read
  const bytes = payload;
  const previous = () => {
    let s = 0;
    let pending = Buffer.alloc(0);
    for (let off = 0; off < bytes.length; off += chunk) {
      const data = pending.length
        ? Buffer.concat([pending, bytes.subarray(off, off + chunk)])
        : bytes.subarray(off, off + chunk);
      const whole = data.length - (data.length % 4);
      for (let o = 0; o < whole; o += 4) {
        const v = data.readFloatLE(o);
        if (!Number.isFinite(v)) throw new Error('not finite');
        s += v * v;
      }
      pending = Buffer.from(data.subarray(whole));
    }
    return s;
  };
  const current = () => {
    const check = new Float32StreamCheck();
    // Odd chunk size: every chunk after the first is split mid-float and unaligned, the worst case.
    for (let off = 0; off < bytes.length; off += chunk + 1) check.push(bytes.subarray(off, off + chunk + 1));
    return check.sumSquares;
  };
  const time = (f) => {
    const ms = [];
    for (let r = 0; r < 1 + (smoke ? 1 : 5); r += 1) {
      const t0 = performance.now();
      f();
      if (r > 0) ms.push(performance.now() - t0);
    }
    return { ms: stats(ms), gbps: round3(bytes.length / (stats(ms).median / 1e3) / 1e9) };
  };
  return { payloadBytes: bytes.length, previousReadFloatLE: time(previous), float32StreamCheck: time(current) };
}

const useServer = !smoke && (await serverDatabaseAvailable());
const machineAtStart = machine();
const receiverCheck = receiverCheckFigures();
console.log(
  `model: MLP 13-${HIDDEN.join('-')}-1, ${M} parameters, frame ${(payload.length / MB).toFixed(1)} MB; database: ${useServer ? 'PostgreSQL server (fresh database per k)' : 'embedded PGlite'}`,
);
console.log(
  `receiver float check alone: readFloatLE loop ${receiverCheck.previousReadFloatLE.gbps} GB/s → Float32StreamCheck ${receiverCheck.float32StreamCheck.gbps} GB/s`,
);

const figures = [];
for (const k of KS) {
  const db = useServer ? await freshDatabase('tessera_bench_ingest') : null;
  const hub = await startHubProcess({
    ...(db ? { databaseUrl: db.url } : {}),
    ...(hubProfileDir ? { nodeOptions: ['--cpu-prof', `--cpu-prof-dir=${hubProfileDir}`] } : {}),
  });
  let baseline;
  try {
    const silos = [];
    for (let i = 0; i <= k; i += 1) silos.push(await enrollSilo(hub, `Bench silo ${i + 1}`));
    const uploaders = silos.slice(0, k);
    const idleAfterSetup = procMemory(hub.pid);
    baseline = await startDiscardServer(silos[0].caPem);
    const hubMs = [];
    const baseMs = [];
    const hubTail = [];
    let frameBytes = 0;
    for (let r = 0; r < WARMUPS + RUNS; r += 1) {
      const study = await startStudy(hub, basePlanOf(silos.map((s) => s.id)), silos);
      const task = await taskFor(uploaders[0], study.id, 2);
      const heads = uploaders.map((s, i) => frameHead(task, study.id, 100 + i));
      frameBytes = heads[0].length + payload.length;
      const baseTargets = uploaders.map((s, i) => ({
        url: baseline.url,
        tls: { ...s.tls, ca: [baseline.caPem] },
        head: heads[i],
      }));
      const hubTargets = uploaders.map((s, i) => ({
        url: new URL(SILO_STUDY_API.update(study.id, task.round), hub.siloUrl),
        tls: s.tls,
        head: heads[i],
      }));
      const b = await wave(baseTargets);
      const h = await wave(hubTargets);
      if (r >= WARMUPS) {
        baseMs.push(b.ms);
        hubMs.push(h.ms);
        hubTail.push(h.answerAfterSentMs);
      }
      console.log(
        `  k=${k} run ${r + 1}${r < WARMUPS ? ' (warm-up)' : ''}: baseline ${b.ms.toFixed(0)} ms, hub ${h.ms.toFixed(0)} ms ` +
          `(hub answered a median ${h.answerAfterSentMs.toFixed(0)} ms after the last body byte was sent)`,
      );
    }
    const memory = procMemory(hub.pid);
    const bytes = k * frameBytes;
    const rate = (ms) => ({ ms: stats(ms), mbPerS: round3(bytes / MB / (stats(ms).median / 1e3)) });
    const hubRate = rate(hubMs);
    const baseRate = rate(baseMs);
    const memoryBound = 3 * payload.length + 300 * 2 ** 20;
    figures.push({
      agents: k,
      parameters: M,
      frameBytes,
      bytesPerWave: bytes,
      hub: hubRate,
      discardBaseline: baseRate,
      ratio: round3(hubRate.mbPerS / baseRate.mbPerS),
      hubAnswerAfterLastByteSentMs: stats(hubTail),
      hubMemory: {
        rssAfterSetupBytes: idleAfterSetup.rssBytes,
        peakRssBytes: memory.peakRssBytes,
        peakRssMB: round3(memory.peakRssBytes / 2 ** 20),
        boundBytes: memoryBound,
        boundMB: round3(memoryBound / 2 ** 20),
      },
    });
  } finally {
    await baseline?.stop();
    await hub.stop();
    await db?.drop();
  }
}

printTable(
  figures.map((f) => ({
    k: f.agents,
    'hub MB/s': f.hub.mbPerS,
    'hub ms [min–max]': `${f.hub.ms.median.toFixed(0)} [${f.hub.ms.min.toFixed(0)}–${f.hub.ms.max.toFixed(0)}]`,
    'baseline MB/s': f.discardBaseline.mbPerS,
    'hub/baseline': f.ratio,
    'hub peak RSS MB': f.hubMemory.peakRssMB,
    'bound MB': f.hubMemory.boundMB,
  })),
  ['k', 'hub MB/s', 'hub ms [min–max]', 'baseline MB/s', 'hub/baseline', 'hub peak RSS MB', 'bound MB'],
);
const worstRatio = Math.min(...figures.map((f) => f.ratio));
const worstMemory = Math.max(...figures.map((f) => f.hubMemory.peakRssBytes / f.hubMemory.boundBytes));
const targets = {
  throughputAtLeastHalfOfBaseline: target(worstRatio, 0.5, {
    description: 'worst k of hub throughput / discard-server throughput (same uploads, same TLS)',
  }),
  peakMemoryUnderBound: target(worstMemory, 1, {
    atMost: true,
    description: 'worst k of hub VmHWM / (3 × one update + 300 MiB)',
  }),
};
const report = {
  benchmark: 'ingest',
  mode: smoke ? 'smoke' : 'full',
  date: new Date().toISOString(),
  code: codeVersion(),
  machine: machineAtStart,
  loadAverageAtEnd: machine().loadAverage,
  database: useServer ? 'postgresql server' : 'embedded pglite',
  method: {
    warmups: WARMUPS,
    runs: RUNS,
    statistic: 'median (min, max) over waves; MB/s of frame bytes (1 MB = 1e6 bytes); memory in MiB',
    model: `mlp 13-${HIDDEN.join('-')}-1`,
  },
  receiverCheck,
  figures,
  targets,
  pass: targets.throughputAtLeastHalfOfBaseline.met === true && targets.peakMemoryUnderBound.met === true,
};
const file = writeReport('ingest', report, args);
for (const [name, t] of Object.entries(targets)) {
  console.log(`${name}: ${t.value} (target ${t.comparison} ${t.target}) ${t.met ? 'PASS' : 'MISS'}`);
}
console.log(`wrote ${file}`);
