/* global performance, process */
// A silo's secure-aggregation computation per round at the heart-disease demo's sizes, in one process, step by step.
//
//   node bench/secagg/participant-cost.bench.mjs [--rounds=20] [--m=14] [--out=FILE]
//        [--secagg=DIR/index.js --parse-every-round]
//
// --secagg measures another build of the library (e.g. an earlier commit's libs/secagg built elsewhere) and
// --parse-every-round parses the identity key and the certificates in every round, as the agent did before it kept
// them (commit ea33bc8): the two together reproduce the figures from before this work.
//
// Imports the BUILT libraries. Four silos with RSA-2048 identity keys and silo certificates issued by @tessera/pki
// (the demo's key type), n = 4, complete graph, t = 3, 32-bit masking, C = 1, distributed DP at the demo's noise
// multiplier for ε = 1 (z = 12.793), the largest scale distributedNoiseMaxScale allows. Each round runs the library
// steps in the order SecAggParticipant runs them (advertise; verify the neighbours and share; quantise, add the noise
// share, mask and encode the frame; answer the unmasking request), parsing the identity key and the certificates once
// per process as the agent does. The hub's steps run between them and are not timed. Every silo's steps are timed
// (wall clock, as the agent's log line counts them, and the process's CPU time, which a loaded machine inflates less;
// the silos take turns, so none waits on another inside a step).
// Round 1 is reported apart: it pays for the first use of every code path (module initialisation, JIT, the exact
// sampler's table). Writes bench/results/secagg-participant.json.
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { createRequire } from 'node:module';

import {
  benchArgs,
  codeVersion,
  machine,
  printTable,
  requireBuilt,
  round3,
  writeReport,
} from '../lib/bench-common.mjs';

const require = createRequire(import.meta.url);
requireBuilt(['libs/secagg/dist/index.js', 'libs/dp/dist/index.js', 'libs/pki/dist/index.js']);
const args = benchArgs();
const secagg = require(args.value('secagg') ?? '@tessera/secagg');
const parseEveryRound = args.has('--parse-every-round');
const dp = require('@tessera/dp');
const pki = require('@tessera/pki');
const protocol = require('@tessera/protocol');

const ROUNDS = Number(args.value('rounds') ?? 20);
const M = Number(args.value('m') ?? 14);
const N = 4;
const THRESHOLD = 3;
const Z = 12.793;

const ca = pki.createCertificateAuthority({ commonName: 'bench CA', validityDays: 1 });
const silos = Array.from({ length: N }, (_, i) => {
  const id = `00000000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`;
  const pair = pki.generateKeyPair();
  const csr = pki.createCsr({ privateKeyPem: pair.privateKeyPem, siloId: id });
  return { id, keyPem: pair.privateKeyPem, certPem: pki.issueSiloCertificate({ ca, csr, siloId: id }).certificatePem };
});
const ids = silos.map((s) => s.id);
const certificates = Object.fromEntries(silos.map((s) => [s.id, s.certPem]));
// Parsed once per process, as the agent's participant does (apps/agent/src/secagg/secagg-participant.ts).
const identityKey = new Map(silos.map((s) => [s.id, createPrivateKey(s.keyPem)]));
const identityKeys = new Map(silos.map((s) => [s.id, new X509Certificate(s.certPem).publicKey]));
const scale = dp.distributedNoiseMaxScale({
  participantCount: N,
  clipNorm: 1,
  modulusBits: 32,
  dimension: M,
  shares: THRESHOLD,
  noiseMultiplier: Z,
});

const STEPS = ['advertise', 'share', 'mask', 'unmask'];
const times = Object.fromEntries(STEPS.map((s) => [s, []])); // wall ms, [round][silo]
const cpuTimes = Object.fromEntries(STEPS.map((s) => [s, []])); // process CPU ms, [round][silo]
const timed = async (step, round, work) => {
  const started = performance.now();
  const cpu = process.cpuUsage();
  const result = await work();
  (times[step][round] ??= []).push(performance.now() - started);
  const used = process.cpuUsage(cpu);
  (cpuTimes[step][round] ??= []).push((used.user + used.system) / 1000);
  return result;
};

for (let round = 0; round < ROUNDS; round++) {
  const config = secagg.createSecAggConfig({
    roundId: `round-${round + 1}`,
    participants: ids,
    neighbourCount: N - 1,
    threshold: THRESHOLD,
    modulusBits: 32,
    clipNorm: 1,
    scale,
    vectorLength: M,
    roundSeed: randomBytes(32).toString('hex'),
  });
  const advertised = [];
  for (const id of ids) {
    advertised.push(
      await timed('advertise', round, () =>
        secagg.advertiseKeys({
          config: { ...config },
          participantId: id,
          identityKey: parseEveryRound ? createPrivateKey(silos[ids.indexOf(id)].keyPem) : identityKey.get(id),
        }),
      ),
    );
  }
  const collected = secagg.collectAdvertisements(
    config,
    advertised.map((a) => a.advertisement),
    new Map(Object.entries(certificates)),
  ).advertised;
  const shared = [];
  for (const [i, a] of advertised.entries()) {
    shared.push(
      await timed('share', round, () =>
        secagg.shareKeys(a.state, {
          advertisements: collected.map((x) => ({ ...x })),
          identityKeys: parseEveryRound ? new Map(Object.entries(certificates)) : identityKeys,
        }),
      ),
    );
    if (shared[i].exclusions.length) throw new Error('unexpected exclusion');
  }
  const routing = secagg.routeShares(
    config,
    shared.map((s) => secagg.checkShareMessage(config, collected, s.message).value),
  );
  const masked = [];
  for (const [i, id] of ids.entries()) {
    const update = Float32Array.from({ length: M }, () => (Math.random() - 0.5) * 0.3);
    const shares = routing.deliveries.find((d) => d.recipient === id).shares.map((s) => ({ ...s }));
    masked.push(
      await timed('mask', round, () => {
        const noise = dp.distributedNoisePlan({
          clipNorm: 1,
          scale: config.scale,
          dimension: M,
          shares: THRESHOLD,
          noiseMultiplier: Z,
        });
        const { vector } = secagg.quantise(update, config, secagg.cryptoRandom);
        secagg.addNoiseShare(vector, dp.latticeIntegers(M, noise.siloSigma, dp.defaultRandomSource()), 32);
        const out = secagg.maskInput(shared[i].state, { shares, input: vector });
        protocol.encodeMaskedInputFrame({ ...out.header }, secagg.encodeMaskedVector(out.vector, 32));
        return out;
      }),
    );
  }
  const plan = secagg.planUnmasking(
    config,
    routing,
    masked.map((m) => m.header),
  );
  for (const m of masked) await timed('unmask', round, () => secagg.revealShares(m.state, { ...plan.request }));
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const row = (step, of) => ({
  step,
  // The first silo's first round: a fresh process, as every agent is in its first round.
  'round 1 wall ms': round3(of(times, 0)[0]),
  'round 1 CPU ms': round3(of(cpuTimes, 0)[0]),
  'later rounds wall ms': round3(median(Array.from({ length: ROUNDS - 1 }, (_, r) => of(times, r + 1)).flat())),
  'later rounds CPU ms': round3(median(Array.from({ length: ROUNDS - 1 }, (_, r) => of(cpuTimes, r + 1)).flat())),
});
// Medians over the silos (and the later rounds); the total sums each silo's steps of a round before the median.
const rows = STEPS.map((step) => row(step, (table, r) => table[step][r]));
rows.push(row('total per round', (table, r) => ids.map((_, i) => STEPS.reduce((sum, s) => sum + table[s][r][i], 0))));
printTable(rows, Object.keys(rows[0]));
writeReport(
  'secagg-participant',
  {
    machine: machine(),
    code: codeVersion(),
    library: args.value('secagg') ?? '@tessera/secagg',
    parseEveryRound,
    parameters: { n: N, t: THRESHOLD, m: M, z: Z, scale, rounds: ROUNDS },
    rows,
  },
  { smoke: false, out: args.value('out') },
);
