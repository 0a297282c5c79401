/* global console, process */
// `npm run bench`: the benchmarks below in turn, each writing bench/results/<name>.json, then a one-line pass/miss
// summary per target. Extra arguments (e.g. --smoke) are passed to every benchmark; with --smoke, the ones without a
// smoke mode are skipped. Expects the workspace built (the npm script builds it first).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { repoRoot } from './lib/bench-common.mjs';

/** Each benchmark: its report's name, its script (default bench/<name>/<name>.bench.mjs), whether it has --smoke. */
const benchmarks = [
  { name: 'aggregation' },
  { name: 'ingest' },
  { name: 'dp-sgd' },
  { name: 'accountant' },
  { name: 'e2e' },
  { name: 'hub-process', script: 'bench/e2e/hub-process.bench.mjs', smoke: false },
  { name: 'privacy-audit' },
  { name: 'console-load' },
  { name: 'robustness' },
  { name: 'round-latency' },
  { name: 'personalization' },
];
const extra = process.argv.slice(2);
const smoke = extra.includes('--smoke');
const names = benchmarks.filter((b) => !smoke || b.smoke !== false).map((b) => b.name);
for (const b of benchmarks) if (!names.includes(b.name)) console.log(`${b.name}: skipped (it has no --smoke mode)`);
let failed = false;
for (const name of names) {
  console.log(`\n=== ${name} ===`);
  const script = benchmarks.find((b) => b.name === name).script ?? `bench/${name}/${name}.bench.mjs`;
  const run = spawnSync(process.execPath, [resolve(repoRoot, script), ...extra], {
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
