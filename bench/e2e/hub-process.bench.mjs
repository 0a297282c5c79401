/* global console, fetch, performance, process, setInterval, clearInterval, setTimeout, Buffer */
// The hub PROCESS's memory in the heart-disease demo study, measured as the reviewers of issue 21 measured it: the
// hub as its own process (`node apps/hub/dist/main.js`, embedded PGlite database on a fresh data directory), four
// real agent processes (`node apps/agent/dist/main.js`: enroll, run --exit-after-study, studies approve) running the
// demo's own plan (demoPlan: DP-SGD, ε = 1) on the four hospitals' files, then everything the demo downloads from
// the hub afterwards (final parameters, rounds, model.json / weights.bin / model.onnx, report.pdf / report.json,
// privacy ledger), so the hub's on-demand code paths (TensorFlow.js and ONNX export, PDF) count in its peak. The demo
// itself (`node apps/hub/dist/cli/demo.js`) runs the hub inside its driver, whose TensorFlow.js baseline and accuracy
// checks would be mixed into the figure.
//
// Memory: /proc/<hub pid>/status VmHWM at the end (the kernel's own peak resident set), VmRSS every 100 ms for a
// timeline, and at each phase's end VmRSS / VmHWM / RssAnon / RssFile plus the hub's own V8 heap and external
// memory from its /metrics (prom-client defaults). The agents run under GNU time (/usr/bin/time -f %M): each one's
// exact peak RSS, beside VmHWM polled every 100 ms.
//
//   npm run bench:hub-process [-- --runs=N] [-- --out=FILE]
//   Diagnostics: --hub-node-options="--heapsnapshot-signal=SIGUSR2 …" (the hub's node flags), --hub-env=NAME=VALUE
//   (repeatable: the hub's extra environment), --smaps-dir=DIR (a copy of /proc/<hub pid>/smaps at each phase's end),
//   --heap-snapshot-dir=DIR (a heap snapshot of the hub's main thread at each phase's end; it inflates VmHWM),
//   --server-database (a fresh database on the PostgreSQL server instead of the embedded one, to set PGlite's share
//   apart; the target is about the embedded database).
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  benchArgs,
  codeVersion,
  machine,
  printTable,
  repoRoot,
  requireBuilt,
  round3,
  stats,
  target,
  writeReport,
} from '../lib/bench-common.mjs';
import { freshDatabase, startHubProcess } from '../lib/hub-harness.mjs';

const require = createRequire(import.meta.url);
const AGENT = resolve(repoRoot, 'apps/agent/dist/main.js');
const VERIFIER = resolve(repoRoot, 'libs/audit/dist/verify-cli.js');
requireBuilt(['apps/hub/dist/main.js', 'apps/hub/dist/cli/demo-study.js', 'apps/agent/dist/main.js', VERIFIER]);
const { demoPlan, HOSPITALS, DATA } = require('../../apps/hub/dist/cli/demo-study.js');

const args = benchArgs();
const RUNS = Number(args.value('runs') ?? 3);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs must be a positive whole number`);
// The reviewers' data files (identical to libs/ml/data/heart-disease, which the demo reads).
const DATA_DIR = existsSync('/work/shared/data/heart-disease') ? '/work/shared/data/heart-disease' : DATA;
// Not args.value: node flags carry '=' of their own (--heapsnapshot-signal=SIGUSR2).
const HUB_NODE_OPTIONS =
  process.argv
    .find((a) => a.startsWith('--hub-node-options='))
    ?.slice('--hub-node-options='.length)
    .split(' ')
    .filter(Boolean) ?? [];
// --hub-env=NAME=VALUE (repeatable): extra environment of the hub process (MALLOC_ARENA_MAX=2, for instance).
const HUB_ENV = Object.fromEntries(
  process.argv
    .filter((a) => a.startsWith('--hub-env='))
    .map((a) => {
      const kv = a.slice('--hub-env='.length);
      return [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)];
    }),
);
const SMAPS_DIR = args.value('smaps-dir');
// A heap snapshot of the hub's main thread at each phase's end. Writing one costs the hub memory of its own: its
// VmHWM is then no longer the figure of record.
const HEAP_DIR = args.value('heap-snapshot-dir') ? resolve(args.value('heap-snapshot-dir')) : undefined;
if (HEAP_DIR) HUB_NODE_OPTIONS.push('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${HEAP_DIR}`);
const SERVER_DATABASE = args.has('--server-database');
const TARGET_MIB = 350;
const SAMPLE_MS = 100;
// GNU time gives each agent's exact peak (wait4's ru_maxrss); without it, the 100 ms polling of VmHWM.
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
// Any diagnostic changes the hub's configuration or inflates its memory: its report never replaces the figure of record.
const VARIANT = SERVER_DATABASE || HUB_NODE_OPTIONS.length > 0 || Object.keys(HUB_ENV).length > 0;
const MiB = 2 ** 20;
const mib = (bytes) => (bytes === null || bytes === undefined || Number.isNaN(bytes) ? null : round3(bytes / MiB));

/** VmHWM, VmRSS, RssAnon, RssFile, RssShmem of a live process, in bytes; null once it is gone. */
function procStatus(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const kb = (key) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : null;
  };
  const hwm = kb('VmHWM');
  if (hwm === null) return null; // a zombie: its memory is already released
  return { hwm, rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), shmem: kb('RssShmem') };
}

/** The hub's V8 heap and external memory from its own /metrics (prom-client default metrics, prefix tessera_). */
async function hubHeap(hub) {
  try {
    const res = await fetch(`${hub.url}/metrics`, { headers: { authorization: `Bearer ${hub.token}` } });
    if (!res.ok) return null;
    const text = await res.text();
    const metric = (name) => {
      const m = new RegExp(`^tessera_${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text);
      return m ? Number(m[1]) : null;
    };
    return {
      heapUsed: metric('nodejs_heap_size_used_bytes'),
      heapTotal: metric('nodejs_heap_size_total_bytes'),
      external: metric('nodejs_external_memory_bytes'),
    };
  } catch {
    return null;
  }
}

/** Signals the hub to write a heap snapshot (--heapsnapshot-signal) and waits until the file is complete. */
async function heapSnapshot(pid, name) {
  mkdirSync(HEAP_DIR, { recursive: true });
  const written = () => readdirSync(HEAP_DIR).filter((f) => f.startsWith('Heap.') && f.endsWith('.heapsnapshot'));
  const before = new Set(written());
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 120_000;
  let file;
  let size = -1;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    file ??= written().find((f) => !before.has(f));
    if (!file) continue;
    const now = statSync(join(HEAP_DIR, file)).size;
    if (now > 0 && now === size) {
      renameSync(join(HEAP_DIR, file), name);
      return;
    }
    size = now;
  }
  throw new Error(`no heap snapshot from ${pid} after 120 s`);
}

/** A child's output and exit, without the environment of this process (as the demo runs its agents). */
function runProcess(command, argv, env) {
  const child = spawn(command, argv, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c.toString()));
  child.stderr.on('data', (c) => (out += c.toString()));
  const exit = new Promise((done, fail) => {
    child.on('error', fail);
    child.on('exit', (code, signal) => done({ code, signal, out }));
  });
  return { child, exit };
}

const agentCommand = (argv, env) => runProcess(process.execPath, [AGENT, ...argv], env).exit;

/** The pid of a process's (only) child: the node process GNU time started. */
function childOf(pid) {
  try {
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return kids.length ? Number(kids[0]) : null;
  } catch {
    return null;
  }
}

/**
 * Admin API call with the harness's token; JSON answers parsed, anything else (or everything with `raw`: a signed
 * report must keep its exact bytes) as bytes. Throws on a non-2xx answer.
 */
async function adminCall(hub, method, path, json, { raw = false } = {}) {
  const res = await fetch(`${hub.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${hub.token}`,
      ...(json !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  const type = res.headers.get('content-type') ?? '';
  return type.includes('json') && !raw ? res.json() : Buffer.from(await res.arrayBuffer());
}

async function oneRun(runIndex) {
  const root = mkdtempSync(join(tmpdir(), 'tessera-bench-hub-process-'));
  const agents = [];
  let hub;
  let db;
  let sampler;
  const t0 = performance.now();
  const elapsed = () => Math.round(performance.now() - t0);
  try {
    db = SERVER_DATABASE ? await freshDatabase('tessera_bench_hub_process') : null;
    hub = await startHubProcess({
      nodeOptions: HUB_NODE_OPTIONS,
      env: HUB_ENV,
      ...(db ? { databaseUrl: db.url } : {}),
    });
    const marks = { started: elapsed() };
    // The timeline: the hub's VmRSS every 100 ms; the agents' VmHWM polled (GNU time gives the exact figure).
    const timeline = [];
    sampler = setInterval(() => {
      const s = procStatus(hub.pid);
      if (s) timeline.push([elapsed(), mib(s.rss)]);
      for (const a of agents) {
        a.pid ??= a.timePid ? childOf(a.timePid) : null;
        const m = a.pid ? procStatus(a.pid) : null;
        if (m) a.polledHwm = Math.max(a.polledHwm, m.hwm);
      }
    }, SAMPLE_MS);
    const memoryAt = async (phase) => {
      const s = procStatus(hub.pid);
      if (SMAPS_DIR) {
        mkdirSync(SMAPS_DIR, { recursive: true });
        const name = `run${runIndex + 1}-${phase.replace(/\W+/g, '-')}.smaps`;
        writeFileSync(join(SMAPS_DIR, name), readFileSync(`/proc/${hub.pid}/smaps`));
      }
      const heap = await hubHeap(hub);
      if (HEAP_DIR)
        await heapSnapshot(hub.pid, join(HEAP_DIR, `run${runIndex + 1}-${phase.replace(/\W+/g, '-')}.heapsnapshot`));
      return {
        phase,
        atMs: elapsed(),
        rssMiB: mib(s.rss),
        hwmMiB: mib(s.hwm),
        rssAnonMiB: mib(s.anon),
        rssFileMiB: mib(s.file),
        heapUsedMiB: mib(heap?.heapUsed),
        heapTotalMiB: mib(heap?.heapTotal),
        externalMiB: mib(heap?.external),
      };
    };
    const memory = [await memoryAt('idle after start')];

    // Enrollment: the administrator registers each hospital; its own agent process enrolls with the bundle.
    const silos = await Promise.all(
      HOSPITALS.map(async (h) => {
        const issued = await adminCall(hub, 'POST', '/api/silos', { name: h.name, contact: `it@${h.key}.example` });
        const dir = join(root, 'silos', h.key);
        mkdirSync(join(dir, 'data'), { recursive: true });
        copyFileSync(join(DATA_DIR, h.file), join(dir, 'data', h.file));
        const env = { TESSERA_STATE_DIR: join(dir, 'state'), TESSERA_DATA_FILE: join(dir, 'data', h.file) };
        const enrolled = await agentCommand(['enroll', '--bundle', issued.bundleText], env);
        if (enrolled.code !== 0) throw new Error(`${h.name}: enrollment failed: ${enrolled.out}`);
        return { ...h, id: issued.silo.id, env };
      }),
    );
    marks.enrolled = elapsed();
    memory.push(await memoryAt('after enrollment'));

    // The demo's plan (DP-SGD, ε = 1), submitted; the daemons start while each steward approves at their agent.
    const plan = demoPlan(silos, 'dp-sgd', '1');
    const study = await adminCall(hub, 'POST', '/api/studies', { plan });
    await adminCall(hub, 'POST', `/api/studies/${study.id}/submit`);
    for (const s of silos) {
      const outFile = join(root, `time-${s.key}.txt`);
      const daemon = [process.execPath, AGENT, 'run', '--exit-after-study', study.id, '--poll-wait', '5'];
      const p = TIME
        ? runProcess(TIME, ['-f', '%M', '-o', outFile, ...daemon], s.env)
        : runProcess(daemon[0], daemon.slice(1), s.env);
      agents.push({
        name: s.name,
        key: s.key,
        timePid: TIME ? p.child.pid : null,
        pid: TIME ? null : p.child.pid,
        polledHwm: 0,
        outFile,
        exit: p.exit,
      });
    }
    await Promise.all(
      silos.map(async (s) => {
        const r = await agentCommand(['studies', 'approve', study.id, '--plan-hash', study.planHash], s.env);
        if (r.code !== 0) throw new Error(`${s.name}: approval failed: ${r.out}`);
      }),
    );
    marks.approved = elapsed();
    memory.push(await memoryAt('after approvals'));

    // The study, to its end, and every agent's exit.
    await adminCall(hub, 'POST', `/api/studies/${study.id}/start`);
    let final;
    for (;;) {
      final = await adminCall(hub, 'GET', `/api/studies/${study.id}`);
      if (['completed', 'failed', 'stopped'].includes(final.status)) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    const exits = await Promise.all(agents.map((a) => a.exit));
    marks.roundsEnded = elapsed();
    if (final.status !== 'completed') throw new Error(`the study ${final.status}: ${final.endReason ?? ''}`);
    const failed = exits.map((e, i) => ({ ...e, name: agents[i].name })).filter((e) => e.code !== 0);
    if (failed.length) throw new Error(`agents failed: ${failed.map((a) => `${a.name}\n${a.out}`).join('\n')}`);
    memory.push(await memoryAt('end of rounds'));

    // What the demo downloads afterwards, in its order: parameters and rounds (its accuracy check), the model in
    // both formats, the compliance report (checked by the offline verifier), the privacy ledger.
    const downloads = {};
    const get = async (path, name, raw = false) => {
      const body = await adminCall(hub, 'GET', `/api/studies/${study.id}/${path}`, undefined, { raw });
      downloads[name] = Buffer.isBuffer(body) ? body.length : JSON.stringify(body).length;
      return body;
    };
    await get('model/parameters.f32', 'parameters.f32');
    const rounds = await get('rounds', 'rounds');
    for (const f of ['model.json', 'weights.bin', 'model.onnx']) await get(`model/${f}`, f);
    const pdf = await get('report.pdf', 'report.pdf', true);
    const reportJson = await get('report.json', 'report.json', true);
    if (pdf.subarray(0, 5).toString('latin1') !== '%PDF-') throw new Error('report.pdf is not a PDF');
    const reportFile = join(root, 'report.json');
    writeFileSync(reportFile, reportJson);
    await get('privacy', 'privacy');
    marks.exported = elapsed();
    memory.push(await memoryAt('after exports and report'));
    const verdict = await runProcess(process.execPath, [VERIFIER, reportFile], {}).exit;
    if (verdict.code !== 0) throw new Error(`the compliance report does not verify: ${verdict.out}`);

    clearInterval(sampler);
    sampler = undefined;
    const end = procStatus(hub.pid);
    const agentPeaks = agents.map((a) => {
      // GNU time writes "%M" as the last line (after "Command exited with non-zero status N" if it did).
      const kb = TIME ? Number(readFileSync(a.outFile, 'utf8').trim().split('\n').pop()) : NaN;
      return {
        name: a.name,
        peakRssMiB: Number.isFinite(kb) ? mib(kb * 1024) : mib(a.polledHwm),
        source: Number.isFinite(kb) ? 'GNU time %M' : 'VmHWM polled every 100 ms',
        polledHwmMiB: mib(a.polledHwm),
      };
    });
    return {
      run: runIndex + 1,
      study: {
        id: study.id,
        status: final.status,
        trainRounds: rounds.filter((r) => r.kind === 'train').length,
        rounds: rounds.length,
        privacy: plan.privacy.mode,
      },
      hub: {
        peakMiB: mib(end.hwm),
        rssAtEndMiB: mib(end.rss),
        maxSampledRssMiB: Math.max(...timeline.map((x) => x[1])),
        memory,
        timeline,
      },
      phasesMs: {
        hub: marks.started,
        enrollment: marks.enrolled - marks.started,
        approvals: marks.approved - marks.enrolled,
        rounds: marks.roundsEnded - marks.approved,
        exports: marks.exported - marks.roundsEnded,
        total: marks.exported,
      },
      agents: agentPeaks,
      downloads,
      verifier: verdict.out.split('\n')[0],
    };
  } catch (err) {
    if (hub) console.error(`hub output:\n${hub.output()}`);
    throw err;
  } finally {
    if (sampler) clearInterval(sampler);
    for (const a of agents) {
      const pid = a.pid ?? (a.timePid ? childOf(a.timePid) : null);
      if (pid && procStatus(pid)) process.kill(pid, 'SIGTERM');
    }
    await Promise.all(agents.map((a) => a.exit.catch(() => undefined)));
    await hub?.stop();
    await db?.drop();
    rmSync(root, { recursive: true, force: true });
  }
}

const machineAtStart = machine();
console.log(
  `hub process memory, heart-disease demo study (${SERVER_DATABASE ? 'PostgreSQL server' : 'embedded database'}): ${RUNS} run(s), load ${machineAtStart.loadAverage.join(' ')}` +
    (HUB_NODE_OPTIONS.length ? `, hub node options ${HUB_NODE_OPTIONS.join(' ')}` : '') +
    (Object.keys(HUB_ENV).length ? `, hub env ${JSON.stringify(HUB_ENV)}` : ''),
);
const runs = [];
for (let i = 0; i < RUNS; i += 1) {
  const r = await oneRun(i);
  runs.push(r);
  const at = (phase) => r.hub.memory.find((m) => m.phase === phase);
  console.log(
    `  run ${i + 1}: hub peak ${r.hub.peakMiB} MiB (idle ${at('idle after start').rssMiB}, end of rounds ` +
      `${at('end of rounds').rssMiB}, after exports ${at('after exports and report').rssMiB} MiB RSS); ` +
      `${(r.phasesMs.total / 1e3).toFixed(1)} s; agents' peaks ${r.agents.map((a) => a.peakRssMiB).join(' / ')} MiB; ` +
      `load ${machine().loadAverage[0]}`,
  );
}

const fmt = (s, digits = 1) => `${s.median.toFixed(digits)} [${s.min.toFixed(digits)}–${s.max.toFixed(digits)}]`;
const phaseNames = [
  'idle after start',
  'after enrollment',
  'after approvals',
  'end of rounds',
  'after exports and report',
];
const memoryStats = Object.fromEntries(
  phaseNames.map((p) => {
    const of = (key) => stats(runs.map((r) => r.hub.memory.find((m) => m.phase === p)[key]));
    return [
      p,
      { rssMiB: of('rssMiB'), hwmMiB: of('hwmMiB'), rssAnonMiB: of('rssAnonMiB'), heapUsedMiB: of('heapUsedMiB') },
    ];
  }),
);
const hubPeak = stats(runs.map((r) => r.hub.peakMiB));
const phases = Object.fromEntries(
  Object.keys(runs[0].phasesMs).map((k) => [k, stats(runs.map((r) => r.phasesMs[k] / 1e3))]),
);
const agentPeak = Object.fromEntries(
  runs[0].agents.map((a, i) => [a.name, stats(runs.map((r) => r.agents[i].peakRssMiB))]),
);
const agentMax = stats(runs.map((r) => Math.max(...r.agents.map((a) => a.peakRssMiB))));

console.log('\nhub process (MiB; median [min–max] over runs)');
printTable(
  [
    ...phaseNames.map((p) => ({
      'at the end of': p,
      RSS: fmt(memoryStats[p].rssMiB),
      'VmHWM so far': fmt(memoryStats[p].hwmMiB),
      'RSS anon': fmt(memoryStats[p].rssAnonMiB),
      'V8 heap used': memoryStats[p].heapUsedMiB.median === null ? '—' : fmt(memoryStats[p].heapUsedMiB),
    })),
    { 'at the end of': 'peak (VmHWM at end)', RSS: '', 'VmHWM so far': fmt(hubPeak) },
  ],
  ['at the end of', 'RSS', 'VmHWM so far', 'RSS anon', 'V8 heap used'],
);
console.log('\nwall time per phase (s)');
printTable(
  Object.entries(phases).map(([k, s]) => ({ phase: k, seconds: fmt(s) })),
  ['phase', 'seconds'],
);
console.log(`\nagent processes, peak RSS (MiB, ${TIME ? 'GNU time %M' : 'VmHWM polled every 100 ms'})`);
printTable(
  [
    ...Object.entries(agentPeak).map(([k, s]) => ({ agent: k, 'peak RSS': fmt(s) })),
    { agent: 'largest of the four', 'peak RSS': fmt(agentMax) },
  ],
  ['agent', 'peak RSS'],
);

const targets = {
  hubPeakUnder350MiB: target(hubPeak.median, TARGET_MIB, {
    atMost: true,
    description:
      `hub process peak (VmHWM) < ${TARGET_MIB} MiB (median of ${RUNS} runs, ` +
      `${VARIANT ? 'a diagnostic configuration, not the figure of record' : 'embedded database'})`,
  }),
};
const report = {
  benchmark: 'hub-process',
  mode: VARIANT ? 'diagnostic' : 'full',
  date: new Date().toISOString(),
  code: codeVersion(),
  machine: machineAtStart,
  loadAverageAtEnd: machine().loadAverage,
  method: {
    runs: RUNS,
    statistic: 'median [min–max] over runs; each run a fresh hub process and data directory',
    hub: `node apps/hub/dist/main.js, ${SERVER_DATABASE ? 'a fresh database on the PostgreSQL server' : 'embedded PGlite database'}, fresh TESSERA_DATA_DIR`,
    hubNodeOptions: HUB_NODE_OPTIONS,
    hubEnv: HUB_ENV,
    agents:
      'four node apps/agent/dist/main.js processes: enroll, run --exit-after-study --poll-wait 5, studies approve',
    plan: "demoPlan(silos, 'dp-sgd', '1') from apps/hub/dist/cli/demo-study.js (the demo's default)",
    data: DATA_DIR,
    after:
      'GET parameters.f32, rounds, model.json, weights.bin, model.onnx, report.pdf, report.json (verified by tessera-verify), privacy',
    memory: `hub: /proc/<pid>/status VmHWM at the end, VmRSS sampled every 100 ms, V8 heap from its /metrics; agents: ${TIME ? 'GNU time %M' : 'VmHWM polled every 100 ms'}`,
  },
  figures: {
    hubPeakMiB: hubPeak,
    hubMemoryByPhase: memoryStats,
    phasesSeconds: phases,
    agentPeakRssMiB: agentPeak,
    largestAgentPeakRssMiB: agentMax,
  },
  runs,
  targets,
  pass: targets.hubPeakUnder350MiB.met !== false,
};
const file = writeReport(VARIANT ? 'hub-process.diagnostic' : 'hub-process', report, args);
console.log(
  `\n${targets.hubPeakUnder350MiB.description}: ${fmt(hubPeak)} MiB — ` +
    `${targets.hubPeakUnder350MiB.met ? 'PASS' : 'MISS'}\nwrote ${file}`,
);
