/* global console, performance, Buffer, URL, fetch */
// Console reads while a round runs: k silos upload updates of a ~1M-parameter model into a real hub process (mutual
// TLS on loopback, the real protocol) for several rounds, while 200 console readers, each a closed loop with a
// 1 s think time, GET what the console's pages fetch (studies, a study, its rounds, silos, the audit trail). Every
// read's latency is recorded; the target is p95 < 500 ms on the EMBEDDED database, the one a first user runs.
// The same readers against the idle hub (no round running) are the baseline of the same run; with a PostgreSQL
// server reachable the loaded case is repeated on it for comparison.
//
//   npm run bench:console-load [-- --smoke] [-- --k=32,64] [-- --readers=200] [-- --rounds=3] [-- --out=FILE]
//                              [-- --embedded-only] [-- --hub-cpu-prof=DIR] [-- --hub-log-level=info]
//                              [-- --new-connections]
//
// The bench's silos keep their mutual-TLS connections alive between calls, as the agent does since issue 21, item 3
// (apps/agent/src/hub/hub-client.ts); `--new-connections` opens one per call (a full handshake with the hub's RSA
// key each time), as agents did before, and as runs of this bench before 2026-12-08 did.
//
// The reviewers' setup (issue #14, item 18): 32 and 64 silos, a 1M-parameter model, 200 console readers during a
// round. The console polls every 10–15 s; a reader here asks once a second, ten times the console's rate.
import { setTimeout } from 'node:timers/promises';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { request as httpsRequest } from 'node:https';
import { Worker } from 'node:worker_threads';
import {
  benchArgs,
  codeVersion,
  machine,
  printTable,
  requireBuilt,
  round3,
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
const {
  encodeUpdateFrame,
  float32Bytes,
  sha256Hex,
  SILO_STUDY_API,
  HUB_API,
  modelSpecOf,
} = require('@tessera/protocol');
const { parameterLayout, parseModelSpec } = require('@tessera/ml');
const { heartDiseasePlan } = require('../../apps/hub/dist/studies/heart-disease-plan.js');

const args = benchArgs();
const { smoke } = args;
// 13·990 + 990 + 990·990 + 990 + 990 + 1 = 994,681 parameters: the reviewers' "1M-parameter model".
const HIDDEN = smoke ? [32, 32] : [990, 990];
const KS = args.value('k') ? args.value('k').split(',').map(Number) : smoke ? [3] : [32, 64];
const READERS = Number(args.value('readers') ?? (smoke ? 10 : 200));
const ROUNDS = Number(args.value('rounds') ?? (smoke ? 2 : 3));
const THINK_MS = 1000;
const IDLE_MS = smoke ? 2_000 : 15_000;
const P95_TARGET_MS = 500;
// The hub logs every request at its default level, info, as an operator runs it (runs before 2026-12-07 used warn).
const HUB_LOG_LEVEL = args.value('hub-log-level') ?? 'info';

const planOf = (siloIds) =>
  heartDiseasePlan(siloIds, {
    model: { kind: 'mlp', hiddenLayers: HIDDEN, activation: 'relu' },
    training: {
      rounds: ROUNDS,
      localEpochs: 1,
      batchSize: 16,
      learningRate: 0.05,
      algorithm: 'fedavg',
      serverOptimizer: { kind: 'fedavg', learningRate: 1 },
      initSeed: 42,
    },
    participation: {
      minSilosPerRound: siloIds.length,
      roundDeadlineSeconds: 3600,
      maxRoundRetries: 0,
      onSiloFailure: 'continue',
    },
    release: { evaluation: { mode: 'exact', rounds: 'final' }, trainingExamples: 'exact' },
  });
const M = parameterLayout(parseModelSpec(modelSpecOf(planOf(['00000000-0000-4000-8000-000000000000'])))).size;

/** Each silo's update: small deterministic values, different per silo. */
function deltaOf(i) {
  const d = new Float32Array(M);
  for (let j = 0; j < M; j += 1) d[j] = (((j * 2654435761 + i * 97) >>> 0) / 4294967296 - 0.5) * 1e-3;
  return d;
}

const NEW_CONNECTIONS = args.has('--new-connections');

function post(url, tls, body, contentType) {
  return new Promise((done, fail) => {
    const req = httpsRequest(
      url,
      {
        method: 'POST',
        agent: false,
        ...tls, // with the silo's kept-alive pool as `agent` unless --new-connections
        headers: { 'content-type': contentType, 'content-length': String(body.length) },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => done({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    req.on('error', fail);
    req.end(body);
  });
}

/** One silo doing its part of the study: every task it gets, until the evaluation of the final model. */
async function runSilo(silo, index, studyId) {
  const delta = deltaOf(index);
  const payloadSha256 = sha256Hex(Buffer.from(float32Bytes(delta)));
  let sumSquares = 0;
  for (let j = 0; j < M; j += 1) sumSquares += delta[j] * delta[j];
  const l2Norm = Math.sqrt(sumSquares);
  for (;;) {
    const task = await taskFor(silo, studyId, 10);
    if (task.kind === 'evaluate') {
      const report = {
        round: task.round,
        attempt: task.attempt,
        planHash: task.planHash,
        modelHash: task.modelHash,
        evaluation: { kind: 'exact', loss: 0.6, accuracy: 0.7, auc: 0.75, n: 20, positives: 9 },
        privacy: null,
      };
      const url = new URL(SILO_STUDY_API.evaluation(studyId, task.round), silo.hubSiloUrl);
      const r = await post(url, silo.tls, Buffer.from(JSON.stringify(report)), 'application/json');
      if (r.status !== 200) throw new Error(`evaluation of ${silo.name}: ${r.status} ${r.body}`);
      return;
    }
    const frame = encodeUpdateFrame(
      {
        studyId,
        round: task.round,
        attempt: task.attempt,
        planHash: task.planHash,
        baseModelHash: task.modelHash,
        numExamples: 100 + index,
        length: M,
        payloadSha256,
        l2Norm,
        evaluation: null,
        privacy: null,
      },
      delta,
    );
    const url = new URL(SILO_STUDY_API.update(studyId, task.round), silo.hubSiloUrl);
    const r = await post(url, silo.tls, Buffer.from(frame), 'application/octet-stream');
    if (r.status !== 200) throw new Error(`update of ${silo.name} (round ${task.round}): ${r.status} ${r.body}`);
    // The next task appears when the round closes; wait for a task of a later round.
    for (;;) {
      const next = await taskFor(silo, studyId, 10);
      if (next.kind === 'evaluate' || next.round > task.round) break;
    }
  }
}

/** Starts the reader worker; returns stop() → { latenciesMs, byPath, errors, errorCount }. */
function startReaders(hub, studyId, readers) {
  const paths = [
    { name: 'studies', path: HUB_API.studies },
    { name: 'study', path: HUB_API.study(studyId) },
    { name: 'rounds', path: HUB_API.studyRounds(studyId) },
    { name: 'silos', path: HUB_API.silos },
    { name: 'audit', path: `${HUB_API.auditEvents}?limit=50` },
  ];
  const worker = new Worker(new URL('./console-reader.mjs', import.meta.url), {
    workerData: { url: hub.url, token: hub.token, readers, thinkMs: THINK_MS, paths },
  });
  const result = new Promise((done, fail) => {
    worker.once('message', done);
    worker.once('error', fail);
  });
  return {
    async stop() {
      worker.postMessage('stop');
      const r = await result;
      await worker.terminate();
      return r;
    },
  };
}

function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

function latencyFigures(values) {
  const s = [...values].sort((a, b) => a - b);
  return {
    reads: s.length,
    p50Ms: round3(quantile(s, 0.5)),
    p95Ms: round3(quantile(s, 0.95)),
    p99Ms: round3(quantile(s, 0.99)),
    maxMs: round3(s[s.length - 1] ?? null),
  };
}

/**
 * CPU time (ms) the hub process has used so far, its main thread apart (Linux /proc; null elsewhere): unlike latency,
 * CPU per read barely moves with what else the machine runs, so it compares code versions on a busy machine too.
 */
function hubCpuMs(pid) {
  const ticksMs = 10; // USER_HZ is 100 on Linux
  const cpuOf = (stat) => {
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * ticksMs; // utime, stime
  };
  try {
    const main = cpuOf(readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8'));
    let all = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`))
      all += cpuOf(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
    return { main, all };
  } catch {
    return null;
  }
}

/**
 * The hub's read-cache and database counters (embedded database only; empty elsewhere): how reads were served and
 * how many statements the database's one connection was sent. Like CPU per read, they count work, not time.
 */
async function cacheCounters(hub) {
  const res = await fetch(`${hub.url}/metrics`);
  const text = await res.text();
  const out = {};
  for (const line of text.split('\n')) {
    const m =
      /^tessera_(read_cache_requests_total|read_cache_computations_total|database_statements_total)(?:\{(?:outcome|kind)="(\w+)"\})? (\d+)/.exec(
        line,
      );
    if (m) out[m[2] ? `${m[1]}:${m[2]}` : m[1]] = Number(m[3]);
  }
  return out;
}

/**
 * The hub's event-loop delay since the previous scrape (prom-client resets its histogram at each scrape), in ms: how
 * long a ready callback — a console read's next step among them — waited for the hub's main thread.
 */
async function loopDelay(hub) {
  const res = await fetch(`${hub.url}/metrics`);
  const text = await res.text();
  const out = {};
  for (const q of ['p50', 'p90', 'p99', 'max']) {
    const m = new RegExp(`^tessera_nodejs_eventloop_lag_${q}_seconds ([0-9.e+-]+)`, 'm').exec(text);
    if (m) out[`${q}Ms`] = round3(Number(m[1]) * 1e3);
  }
  return out;
}

function countersBetween(before, after, reads) {
  const delta = (key) => (after[key] ?? 0) - (before[key] ?? 0);
  if (!('read_cache_computations_total' in after)) return null;
  const served = ['hit', 'joined', 'queued', 'computed'].map((o) => [o, delta(`read_cache_requests_total:${o}`)]);
  return {
    ...Object.fromEntries(served),
    computations: delta('read_cache_computations_total'),
    readStatements: delta('database_statements_total:read'),
    writeStatements: delta('database_statements_total:write'),
    readStatementsPerConsoleRead: reads > 0 ? round3(delta('database_statements_total:read') / reads) : null,
  };
}

function cpuBetween(before, after, reads) {
  if (!before || !after) return null;
  const main = after.main - before.main;
  const all = after.all - before.all;
  return { mainMs: main, allMs: all, mainMsPerRead: reads > 0 ? round3(main / reads) : null };
}

/** One hub, k silos, one study: idle readers first (baseline), then the same readers during the rounds. */
async function measure(k, databaseKind) {
  const db = databaseKind === 'server' ? await freshDatabase('tessera_bench_console') : null;
  // --hub-cpu-prof=DIR: the hub writes a V8 CPU profile there when it stops (to see where a read's time goes).
  const nodeOptions = args.value('hub-cpu-prof') ? ['--cpu-prof', `--cpu-prof-dir=${args.value('hub-cpu-prof')}`] : [];
  const hub = await startHubProcess({
    ...(db ? { databaseUrl: db.url } : {}),
    nodeOptions,
    env: { TESSERA_LOG_LEVEL: HUB_LOG_LEVEL },
  });
  try {
    const silos = [];
    for (let i = 0; i < k; i += 1) {
      const s = await enrollSilo(hub, `Bench silo ${i + 1}`, { keepAlive: !NEW_CONNECTIONS });
      silos.push({ ...s, hubSiloUrl: hub.siloUrl });
    }
    const study = await startStudy(hub, planOf(silos.map((s) => s.id)), silos);

    const idleCpu0 = hubCpuMs(hub.pid);
    const idleReaders = startReaders(hub, study.id, READERS);
    await setTimeout(IDLE_MS);
    const idle = await idleReaders.stop();
    const idleCpu = cpuBetween(idleCpu0, hubCpuMs(hub.pid), idle.latenciesMs.length);

    const loadedCpu0 = hubCpuMs(hub.pid);
    const counters0 = await cacheCounters(hub); // also resets the hub's event-loop delay histogram
    const loadedReaders = startReaders(hub, study.id, READERS);
    const t0 = performance.now();
    await Promise.all(silos.map((s, i) => runSilo(s, i, study.id)));
    const studyMs = performance.now() - t0;
    const loaded = await loadedReaders.stop();
    const loadedCpu = cpuBetween(loadedCpu0, hubCpuMs(hub.pid), loaded.latenciesMs.length);
    // First: any scrape (cacheCounters too) resets the delay histogram.
    const eventLoopDelay = await loopDelay(hub);
    const counters = countersBetween(counters0, await cacheCounters(hub), loaded.latenciesMs.length);
    const status = (await hub.admin('GET', HUB_API.study(study.id))).status;
    const byPath = Object.fromEntries(Object.entries(loaded.byPath).map(([p, v]) => [p, latencyFigures(v)]));
    return {
      database: databaseKind,
      silos: k,
      readers: READERS,
      rounds: ROUNDS,
      studyStatusAfterEvaluation: status,
      studyMs: round3(studyMs),
      idle: { ...latencyFigures(idle.latenciesMs), errors: idle.errorCount, hubCpu: idleCpu },
      loaded: {
        ...latencyFigures(loaded.latenciesMs),
        errors: loaded.errorCount,
        firstErrors: loaded.errors,
        hubCpu: loadedCpu,
        cache: counters,
        eventLoopDelay,
      },
      loadedByPath: byPath,
      bodyBytesByPath: loaded.bytesByPath,
    };
  } finally {
    await hub.stop();
    await db?.drop();
  }
}

const useServer = !smoke && !args.has('--embedded-only') && (await serverDatabaseAvailable());
const machineAtStart = machine();
console.log(
  `model: MLP 13-${HIDDEN.join('-')}-1, ${M} parameters; ${READERS} readers, think time ${THINK_MS} ms; ${ROUNDS} rounds`,
);
const figures = [];
for (const k of KS) {
  for (const kind of useServer ? ['embedded', 'server'] : ['embedded']) {
    const f = await measure(k, kind);
    figures.push(f);
    console.log(
      `  ${kind} k=${k}: study ${(f.studyMs / 1e3).toFixed(1)} s; reads idle p95 ${f.idle.p95Ms} ms, ` +
        `during rounds p50 ${f.loaded.p50Ms} / p95 ${f.loaded.p95Ms} / p99 ${f.loaded.p99Ms} ms (${f.loaded.reads} reads, ${f.loaded.errors} errors)` +
        (f.idle.hubCpu && f.loaded.hubCpu
          ? `; hub main thread ${f.idle.hubCpu.mainMsPerRead} ms CPU per idle read, ` +
            `${(f.loaded.hubCpu.mainMs / 1e3).toFixed(1)} s CPU during the rounds (all threads ${(f.loaded.hubCpu.allMs / 1e3).toFixed(1)} s)`
          : '') +
        `; event-loop delay during the rounds ${JSON.stringify(f.loaded.eventLoopDelay)}` +
        (f.loaded.cache
          ? `; during the rounds ${f.loaded.cache.readStatementsPerConsoleRead} read statements per console read, ` +
            `cache ${JSON.stringify(f.loaded.cache)}`
          : ''),
    );
  }
}

printTable(
  figures.map((f) => ({
    database: f.database,
    k: f.silos,
    'study s': (f.studyMs / 1e3).toFixed(1),
    'idle p95': f.idle.p95Ms,
    'p50 ms': f.loaded.p50Ms,
    'p95 ms': f.loaded.p95Ms,
    'p99 ms': f.loaded.p99Ms,
    'max ms': f.loaded.maxMs,
    reads: f.loaded.reads,
    'ms CPU/read': f.idle.hubCpu?.mainMsPerRead ?? '-',
    'main CPU s': f.loaded.hubCpu ? (f.loaded.hubCpu.mainMs / 1e3).toFixed(1) : '-',
    errors: f.loaded.errors,
  })),
  [
    'database',
    'k',
    'study s',
    'idle p95',
    'p50 ms',
    'p95 ms',
    'p99 ms',
    'max ms',
    'reads',
    'errors',
    'ms CPU/read',
    'main CPU s',
  ],
);
const embedded = figures.filter((f) => f.database === 'embedded');
const worstP95 = Math.max(...embedded.map((f) => f.loaded.p95Ms));
const targets = {
  embeddedReadP95UnderLoad: target(worstP95, P95_TARGET_MS, {
    atMost: true,
    description: `worst k of the p95 console read latency (ms) during the rounds, embedded database, ${READERS} readers`,
  }),
};
const report = {
  benchmark: 'console-load',
  mode: smoke ? 'smoke' : 'full',
  date: new Date().toISOString(),
  code: codeVersion(),
  machine: machineAtStart,
  loadAverageAtEnd: machine().loadAverage,
  method: {
    model: `mlp 13-${HIDDEN.join('-')}-1`,
    parameters: M,
    readers: READERS,
    thinkMs: THINK_MS,
    rounds: ROUNDS,
    idleWindowMs: IDLE_MS,
    hubLogLevel: HUB_LOG_LEVEL,
    siloConnections: NEW_CONNECTIONS ? 'one per call' : 'kept alive per silo, as the agent',
    paths: ['studies', 'study', 'rounds', 'silos', 'audit?limit=50'],
    statistic: 'latency quantiles over every read of every reader (nearest rank)',
  },
  figures,
  targets,
  pass: targets.embeddedReadP95UnderLoad.met === true && figures.every((f) => f.loaded.errors === 0),
};
const file = writeReport('console-load', report, args);
for (const [name, t] of Object.entries(targets)) {
  console.log(`${name}: ${t.value} (target ${t.comparison} ${t.target}) ${t.met ? 'PASS' : 'MISS'}`);
}
console.log(`wrote ${file}`);
