/* global Buffer, console, performance, process */
// Secure aggregation (@tessera/secagg) against plain aggregation of the same float32 updates, in the same run.
//
//   npm run bench:secagg [-- --smoke] [-- --n=4,16,64] [-- --m=1M,10M] [-- --dropout=0,0.3] [-- --runs=3]
//                        [-- --warmups=1] [-- --out=FILE]
//
// Imports the BUILT libraries (libs/secagg/dist, libs/aggregation/dist). Writes bench/results/secagg.json (smoke:
// secagg.smoke.json). Defaults: n ∈ {4, 16}, m = 1M, dropouts 0% and 30%, 1 warm-up + 3 runs; --n=4,16,64 and
// --m=1M,10M give the full grid (n = 64 or m = 10M take minutes).
//
// Method, per (n, m, dropout) and run: every silo runs the real participant steps (advertiseKeys, shareKeys,
// quantise + maskInput, revealShares) and the hub the real hub steps (collectAdvertisements, checkShareMessage,
// routeShares, checkMaskedInput + MaskedSumAccumulator.add for each input as it is produced, planUnmasking,
// checkUnmaskingResponse, unmaskSum, dequantiseSum). The dropped silos (⌊dropout·n⌉) leave after sharing — the
// costliest case for the hub, which must rebuild their mask keys and remove every pairwise mask their partners added.
// Baseline: the hub's plain FedAvg path (FedAvgAggregator with updatesPrevalidated, equal weights) over the same
// float32 updates of the same survivors. Updates are regenerated from a seed when needed (never timed), so memory
// stays O(m) whatever n. Identity keys are Ed25519 (signing and verifying cost microseconds either way; the PKI's
// RSA keys change nothing measurable). Complete graph (k = n − 1), t = ⌊k/2⌋ + 1, k = 32 bits, C = 1, the largest
// scale that cannot wrap. Bytes: JSON payloads as produced plus the bit-packed vector, per silo, against 4m bytes of
// a float32 upload (transport framing not counted on either side).
import { generateKeyPairSync, createPublicKey, randomBytes } from 'node:crypto';
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
requireBuilt(['libs/secagg/dist/index.js', 'libs/aggregation/dist/index.js']);
const secagg = require('@tessera/secagg');
const { FedAvgAggregator } = require('@tessera/aggregation');

const args = benchArgs();
const { smoke } = args;
const parseList = (value, fallback) =>
  value === undefined ? fallback : value.split(',').map((x) => Number(x.replace(/M$/i, 'e6').replace(/k$/i, 'e3')));
const counts = smoke ? [4, 6] : parseList(args.value('n'), [4, 16]);
const sizes = smoke ? [2_000] : parseList(args.value('m'), [1e6]);
const dropouts = smoke ? [0, 0.3] : parseList(args.value('dropout'), [0, 0.3]);
const warmups = smoke ? 0 : Number(args.value('warmups') ?? 1);
const runs = smoke ? 1 : Number(args.value('runs') ?? 3);
const MODULUS_BITS = 32;
const CLIP = 1;

/** A reproducible float32 update of L2 norm ≈ 0.87 (below the clip), from a 32-bit LCG. */
function makeUpdate(m, seed) {
  let s = (seed * 2654435761) >>> 0;
  const a = 1.5 / Math.sqrt(m);
  const u = new Float32Array(m);
  for (let i = 0; i < m; i += 1) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    u[i] = (s / 4294967296 - 0.5) * 2 * a;
  }
  return u;
}

const jsonBytes = (value) => Buffer.byteLength(JSON.stringify(value));
const median = (xs) => stats(xs).median;
// Wall-clock ms, and CPU ms of this process (process.cpuUsage, user + system): on a shared machine the CPU time is
// the steadier of the two, as it does not count the time the process waited for a core.
const cpuNow = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
const time = (fn) => {
  const c0 = cpuNow();
  const t0 = performance.now();
  const value = fn();
  return [value, performance.now() - t0, cpuNow() - c0];
};
const timeAsync = async (fn) => {
  const c0 = cpuNow();
  const t0 = performance.now();
  const value = await fn();
  return [value, performance.now() - t0, cpuNow() - c0];
};

/** One round of secure aggregation and the plain baseline; times in ms. */
async function oneRound(n, m, dropout, identity) {
  const ids = identity.ids;
  const k = n - 1;
  const config = secagg.createSecAggConfig({
    roundId: `bench-${n}-${m}-${dropout}`,
    participants: ids,
    neighbourCount: k,
    threshold: Math.floor(k / 2) + 1,
    modulusBits: MODULUS_BITS,
    clipNorm: CLIP,
    scale: secagg.maxSafeScale({ participantCount: n, clipNorm: CLIP, modulusBits: MODULUS_BITS }),
    vectorLength: m,
    roundSeed: randomBytes(32).toString('hex'),
  });
  const dropped = new Set(ids.slice(0, Math.round(dropout * n)));
  const client = new Map(ids.map((id) => [id, { share: 0, quantise: 0, mask: 0, reveal: 0, cpu: 0, up: 0, down: 0 }]));
  const hub = { collect: 0, sum: 0, unmask: 0, cpu: 0 };

  // Round 0: advertise.
  const states = new Map();
  const advertisements = [];
  for (const id of ids) {
    const [out, ms, cpu] = time(() =>
      secagg.advertiseKeys({ config, participantId: id, identityKey: identity.keys.get(id) }),
    );
    states.set(id, out.state);
    advertisements.push(out.advertisement);
    client.get(id).share += ms;
    client.get(id).cpu += cpu;
    client.get(id).up += jsonBytes(out.advertisement);
  }
  const [collected, collectMs, collectCpu] = time(() =>
    secagg.collectAdvertisements(config, advertisements, identity.directory),
  );
  hub.collect += collectMs;
  hub.cpu += collectCpu;

  // Round 1: share keys.
  const messages = [];
  for (const id of ids) {
    client.get(id).down += jsonBytes(collected.advertised);
    const [out, ms, cpu] = await timeAsync(() =>
      secagg.shareKeys(states.get(id), { advertisements: collected.advertised, identityKeys: identity.directory }),
    );
    states.set(id, out.state);
    client.get(id).share += ms;
    client.get(id).cpu += cpu;
    client.get(id).up += jsonBytes(out.message);
    const [checked, checkMs, checkCpu] = time(() =>
      secagg.checkShareMessage(config, collected.advertised, out.message),
    );
    hub.collect += checkMs;
    hub.cpu += checkCpu;
    if (!checked.ok) throw new Error(checked.exclusion.detail);
    messages.push(checked.value);
  }
  const [routing, routeMs, routeCpu] = time(() => secagg.routeShares(config, messages));
  hub.collect += routeMs;
  hub.cpu += routeCpu;

  // Round 2: quantise, mask, upload; the hub adds each input as it arrives.
  const accumulator = new secagg.MaskedSumAccumulator(config);
  const uploads = [];
  for (const { recipient, shares } of routing.deliveries) {
    if (dropped.has(recipient)) continue;
    const c = client.get(recipient);
    c.down += jsonBytes(shares);
    const update = makeUpdate(m, ids.indexOf(recipient) + 1);
    const [q, qMs, qCpu] = time(() => secagg.quantise(update, config, secagg.cryptoRandom).vector);
    const [out, maskMs, maskCpu] = time(() => secagg.maskInput(states.get(recipient), { shares, input: q }));
    states.set(recipient, out.state);
    c.quantise += qMs;
    c.mask += maskMs;
    c.cpu += qCpu + maskCpu;
    c.up += jsonBytes(out.header) + secagg.maskedVectorBytes(m, MODULUS_BITS);
    const [, sumMs, sumCpu] = time(() => {
      const checked = secagg.checkMaskedInput(config, routing, out.header, out.vector);
      if (!checked.ok) throw new Error(checked.exclusion.detail);
      accumulator.add(recipient, out.vector);
      uploads.push(checked.value);
    });
    hub.sum += sumMs;
    hub.cpu += sumCpu;
  }

  // Round 3: unmask.
  const [plan, planMs, planCpu] = time(() => secagg.planUnmasking(config, routing, uploads));
  hub.unmask += planMs;
  hub.cpu += planCpu;
  const responses = [];
  for (const id of plan.request.survivors) {
    const c = client.get(id);
    c.down += jsonBytes(plan.request);
    const [out, ms, cpu] = time(() => secagg.revealShares(states.get(id), plan.request));
    c.reveal += ms;
    c.cpu += cpu;
    c.up += jsonBytes(out.response);
    const [checked, checkMs, checkCpu] = time(() => secagg.checkUnmaskingResponse(plan, out.response));
    hub.unmask += checkMs;
    hub.cpu += checkCpu;
    if (!checked.ok) throw new Error(checked.exclusion.detail);
    responses.push(checked.value);
  }
  const [sumFloat, unmaskMs, unmaskCpu] = await timeAsync(async () => {
    const sum = await secagg.unmaskSum(
      config,
      { routing, advertised: collected.advertised, plan },
      responses,
      accumulator.sum,
    );
    return secagg.dequantiseSum(sum, config);
  });
  hub.unmask += unmaskMs;
  hub.cpu += unmaskCpu;

  // Baseline: the hub's plain FedAvg of the same float32 updates of the same survivors (generation not timed).
  const plain = new FedAvgAggregator(m, { updatesPrevalidated: true });
  let plainMs = 0;
  let plainCpu = 0;
  const plainSum = new Float64Array(m);
  for (const id of plan.request.survivors) {
    const update = makeUpdate(m, ids.indexOf(id) + 1);
    const [, addMs, addCpu] = time(() => plain.add(update, 1));
    plainMs += addMs;
    plainCpu += addCpu;
    for (let i = 0; i < m; i += 1) plainSum[i] += update[i];
  }
  const [, finishMs, finishCpu] = time(() => plain.finish());
  plainMs += finishMs;
  plainCpu += finishCpu;

  // Correctness: the dequantised sum is within n/s of the float sum in every coordinate.
  const bound = secagg.sumQuantisationErrorBound(plan.request.survivors.length, config.scale);
  let worst = 0;
  for (let i = 0; i < m; i += 1) worst = Math.max(worst, Math.abs(sumFloat[i] - plainSum[i]));
  if (!(worst < bound)) throw new Error(`unmasked sum off by ${worst} (bound ${bound})`);

  const survivors = plan.request.survivors.map((id) => client.get(id));
  // Mask expansions (m words of AES-CTR keystream each): one per survivor's self-mask and one per pairwise mask
  // between a dropped participant and a surviving partner at the hub; 1 + partners per silo.
  const hubExpansions = plan.reconstructions.reduce(
    (sum, r) =>
      sum +
      (r.kind === 'selfMaskSeed'
        ? 1
        : routing.sharers.filter(
            (s) => plan.request.survivors.includes(s.participantId) && s.maskPartners.includes(r.owner),
          ).length),
    0,
  );
  return {
    hubExpansions,
    siloExpansions: 1 + median(uploads.map((u) => u.maskPartners.length)),
    survivors: survivors.length,
    dropped: dropped.size,
    client: {
      shareMs: median(survivors.map((c) => c.share)),
      quantiseMs: median(survivors.map((c) => c.quantise)),
      maskMs: median(survivors.map((c) => c.mask)),
      revealMs: median(survivors.map((c) => c.reveal)),
      totalMs: median(survivors.map((c) => c.share + c.quantise + c.mask + c.reveal)),
      cpuMs: median(survivors.map((c) => c.cpu)),
    },
    hub: {
      collectMs: hub.collect,
      sumMs: hub.sum,
      unmaskMs: hub.unmask,
      totalMs: hub.collect + hub.sum + hub.unmask,
      cpuMs: hub.cpu,
    },
    plainMs,
    plainCpuMs: plainCpu,
    bytes: {
      uploadPerSilo: median(survivors.map((c) => c.up)),
      downloadPerSilo: median(survivors.map((c) => c.down)),
      float32Upload: 4 * m,
    },
    worstError: worst,
    errorBound: bound,
  };
}

/** Time of one mask expansion of m words (keystream and modular add), for reading the figures as counts × cost. */
function timeOneExpansion(m) {
  const target = new Uint32Array(m);
  const key = randomBytes(32);
  const t0 = performance.now();
  secagg.applyMasks(target, [{ key, sign: 1 }], MODULUS_BITS);
  return performance.now() - t0;
}

function identityFor(n) {
  const ids = Array.from({ length: n }, (_, i) => `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`);
  const keys = new Map(ids.map((id) => [id, generateKeyPairSync('ed25519').privateKey]));
  const directory = new Map([...keys].map(([id, key]) => [id, createPublicKey(key)]));
  return { ids, keys, directory };
}

const machineAtStart = machine();
const figures = [];
for (const m of sizes) {
  for (const n of counts) {
    const identity = identityFor(n);
    for (const dropout of dropouts) {
      const results = [];
      for (let r = 0; r < warmups + runs; r += 1) {
        const result = await oneRound(n, m, dropout, identity);
        if (r >= warmups) results.push(result);
      }
      const pick = (f) => stats(results.map(f));
      const last = results[results.length - 1];
      const expansionMs = stats(Array.from({ length: 5 }, () => timeOneExpansion(m)));
      const hubTotal = pick((x) => x.hub.totalMs);
      const plain = pick((x) => x.plainMs);
      const hubCpu = pick((x) => x.hub.cpuMs);
      const plainCpu = pick((x) => x.plainCpuMs);
      figures.push({
        parameters: m,
        silos: n,
        dropout,
        dropped: last.dropped,
        survivors: last.survivors,
        client: {
          totalMs: pick((x) => x.client.totalMs),
          shareMs: pick((x) => x.client.shareMs),
          quantiseMs: pick((x) => x.client.quantiseMs),
          maskMs: pick((x) => x.client.maskMs),
          revealMs: pick((x) => x.client.revealMs),
          cpuMs: pick((x) => x.client.cpuMs),
        },
        hub: {
          totalMs: hubTotal,
          collectMs: pick((x) => x.hub.collectMs),
          sumMs: pick((x) => x.hub.sumMs),
          unmaskMs: pick((x) => x.hub.unmaskMs),
          cpuMs: hubCpu,
        },
        plainAggregationMs: plain,
        plainAggregationCpuMs: plainCpu,
        hubOverPlain: round3(hubTotal.median / plain.median),
        hubOverPlainCpu: round3(hubCpu.median / Math.max(plainCpu.median, 0.001)),
        bytes: {
          ...last.bytes,
          uploadOverFloat32: round3(last.bytes.uploadPerSilo / last.bytes.float32Upload),
          uploadAndDownloadOverFloat32: round3(
            (last.bytes.uploadPerSilo + last.bytes.downloadPerSilo) / last.bytes.float32Upload,
          ),
        },
        worstError: last.worstError,
        errorBound: last.errorBound,
        maskExpansions: { hub: last.hubExpansions, perSilo: last.siloExpansions, oneExpansionMs: expansionMs },
      });
    }
  }
}

const f1 = (x) => x.toFixed(1);
printTable(
  figures.map((f) => ({
    m: f.parameters,
    n: f.silos,
    dropped: f.dropped,
    'silo ms': f1(f.client.totalMs.median),
    'share ms': f1(f.client.shareMs.median),
    'quantise ms': f1(f.client.quantiseMs.median),
    'mask ms': f1(f.client.maskMs.median),
    'hub ms': f1(f.hub.totalMs.median),
    'sum ms': f1(f.hub.sumMs.median),
    'unmask ms': f1(f.hub.unmaskMs.median),
    'plain ms': f1(f.plainAggregationMs.median),
    'hub/plain': f.hubOverPlain,
    'cpu hub/plain': f.hubOverPlainCpu,
    'hub exp.': f.maskExpansions.hub,
    'ms/exp.': f1(f.maskExpansions.oneExpansionMs.median),
    'up/f32': f.bytes.uploadOverFloat32,
    '(up+down)/f32': f.bytes.uploadAndDownloadOverFloat32,
  })),
  [
    'm',
    'n',
    'dropped',
    'silo ms',
    'share ms',
    'quantise ms',
    'mask ms',
    'hub ms',
    'sum ms',
    'unmask ms',
    'plain ms',
    'hub/plain',
    'cpu hub/plain',
    'hub exp.',
    'ms/exp.',
    'up/f32',
    '(up+down)/f32',
  ],
);

const hubCase = figures.find((f) => f.silos === 16 && f.parameters === 1e6 && f.dropout === 0.3);
const targets = {
  bytesPerSiloAt32Bits: target(Math.max(...figures.map((f) => f.bytes.uploadOverFloat32)), 1.1, {
    atMost: true,
    description: 'worst upload bytes per silo / float32 upload, k = 32',
  }),
  hubAtMostTwicePlain: hubCase
    ? target(hubCase.hubOverPlain, 2, {
        atMost: true,
        description: 'hub secure-aggregation compute / plain FedAvg of the same updates, n = 16, m = 1M, 30% dropouts',
      })
    : { description: 'n = 16, m = 1M, 30% dropouts not in this run', target: 2, value: null, met: null },
};
const report = {
  benchmark: 'secagg',
  mode: smoke ? 'smoke' : 'full',
  date: new Date().toISOString(),
  code: codeVersion(),
  machine: machineAtStart,
  loadAverageAtEnd: machine().loadAverage,
  method: {
    warmups,
    runs,
    statistic:
      'median (min, max) over runs; client figures are the median over surviving silos within a run; *Ms wall ' +
      'clock, *CpuMs/cpuMs CPU time of the process (user + system)',
    graph: 'complete (k = n − 1), t = ⌊k/2⌋ + 1',
    modulusBits: MODULUS_BITS,
    dropouts: 'silos leave after sharing (their mask keys are rebuilt)',
    baseline: 'FedAvgAggregator({ updatesPrevalidated: true }) over the same float32 updates of the same survivors',
  },
  figures,
  targets,
  pass: Object.values(targets).every((t) => t.met !== false),
};
const file = writeReport('secagg', report, args);
console.log(`\nWrote ${file}`);
for (const [name, t] of Object.entries(targets)) {
  console.log(
    `${name}: ${t.value} (target ${t.comparison ?? ''} ${t.target}) ${t.met === null ? 'n/a' : t.met ? 'PASS' : 'MISS'}`,
  );
}
