/* global console, process */
// `npm run bench`: every benchmark in turn (aggregation, ingest, dp-sgd, accountant, e2e), each writing bench/results/<name>.json,
// then a one-line pass/miss summary per target. Extra arguments (e.g. --smoke) are passed to every benchmark.
// Expects the workspace built (the npm script builds it first).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { repoRoot } from './lib/bench-common.mjs';

const names = [
  'aggregation',
  'ingest',
  'dp-sgd',
  'accountant',
  'e2e',
  'privacy-audit',
  'console-load',
  'robustness',
  'round-latency',
  'personalization',
];
const extra = process.argv.slice(2);
const smoke = extra.includes('--smoke');
let failed = false;
for (const name of names) {
  console.log(`\n=== ${name} ===`);
  const run = spawnSync(process.execPath, [resolve(repoRoot, `bench/${name}/${name}.bench.mjs`), ...extra], {
    cwd: repoRoot,
    stdio: 'inherit',
  });
  if (run.status !== 0) {
    console.error(`${name}: exited with ${run.status}`);
    failed = true;
  }
}
console.log('\n=== summary ===');
for (const name of names) {
  try {
    const report = JSON.parse(
      readFileSync(resolve(repoRoot, 'bench/results', `${name}${smoke ? '.smoke' : ''}.json`), 'utf8'),
    );
    for (const [t, v] of Object.entries(report.targets)) {
      const verdict = v.met === null ? 'n/a' : v.met ? 'PASS' : 'MISS';
      console.log(
        `${name.padEnd(12)} ${t.padEnd(34)} ${String(v.value).padStart(8)} (target ${v.comparison ?? ''} ${v.target}) ${verdict}`,
      );
    }
  } catch (error) {
    console.log(`${name.padEnd(12)} no report (${error.message})`);
  }
}
process.exit(failed ? 1 : 0);
