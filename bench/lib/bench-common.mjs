/* global process, console */
// Shared helpers of the benchmarks: the machine description, order statistics, the table and the JSON report.
// Every benchmark reports RATIOS against a baseline measured in the same run (absolute times on a shared 2-core VM
// are noisy), median of several runs after a warm-up, with min and max.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** Parsed common flags: --smoke (tiny sizes, for CI), --out=FILE (default bench/results/<name>[.smoke].json). */
export function benchArgs(argv = process.argv.slice(2)) {
  const smoke = argv.includes('--smoke');
  const out = argv.find((a) => a.startsWith('--out='))?.slice('--out='.length);
  return {
    smoke,
    out,
    has: (flag) => argv.includes(flag),
    value: (name) => argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1],
  };
}

/** Fails early with the command to run when the built workspace is missing (benchmarks import dist, not src). */
export function requireBuilt(relativePaths) {
  const missing = relativePaths.filter((p) => !existsSync(resolve(repoRoot, p)));
  if (missing.length > 0) {
    console.error(
      `Build first (npx tsc -b tsconfig.build.json, or run through npm run bench:*): missing ${missing.join(', ')}`,
    );
    process.exit(2);
  }
}

/** Cores, CPU model, memory, Node version, platform and load average: every report carries it. */
export function machine(extra = {}) {
  const cpus = os.cpus();
  return {
    cores: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryBytes: os.totalmem(),
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    loadAverage: os.loadavg().map((l) => +l.toFixed(2)),
    ...extra,
  };
}

/** Median (upper median for an even count), min, max and the number of values. */
export function stats(values) {
  const s = [...values].sort((a, b) => a - b);
  return { median: s[s.length >> 1], min: s[0], max: s[s.length - 1], runs: s.length };
}

export const round3 = (x) => (x === null || x === undefined ? x : Math.round(x * 1000) / 1000);

/** `value` against a target: { target, value, met }; `atMost` for targets that are upper bounds. */
export function target(value, bound, { atMost = false, description } = {}) {
  const met = value === null || value === undefined ? null : atMost ? value <= bound : value >= bound;
  return { description, target: bound, comparison: atMost ? '<=' : '>=', value: round3(value), met };
}

/** Prints rows (objects) as an aligned text table with the given columns. */
export function printTable(rows, columns) {
  const cells = rows.map((r) => columns.map((c) => String(r[c] ?? '')));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i].length)));
  const line = (xs) => xs.map((x, i) => x.padStart(widths[i])).join('  ');
  console.log(line(columns));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of cells) console.log(line(row));
}

/** Writes the report to --out or bench/results/<name>.json (<name>.smoke.json in smoke mode, so CI never overwrites real figures). */
export function writeReport(name, report, { smoke, out }) {
  const file = out ? resolve(out) : resolve(repoRoot, 'bench/results', smoke ? `${name}.smoke.json` : `${name}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  return file;
}

/** `git rev-parse --short HEAD` and whether the tree has local changes, so a report names the code it measured. */
export function codeVersion() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: repoRoot, encoding: 'utf8' }).trim();
    return { commit };
  } catch {
    return { commit: 'unknown' };
  }
}

/** Peak resident set (VmHWM) and current RSS of a process, in bytes, from /proc (Linux). */
export function procMemory(pid) {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { peakRssBytes: kb('VmHWM'), rssBytes: kb('VmRSS') };
}
