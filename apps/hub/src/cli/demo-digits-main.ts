import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  enrollDigitSilos,
  formatDigitsSummary,
  runDigitsStudy,
  splitOf,
  digitsPlan,
  startPooledDigitsBaseline,
  type DigitsOptions,
  type DigitsRun,
  type PooledDigitsRun,
} from './demo-digits';
import { DemoAdmin, startDemoHub } from './demo-hub';
import { prepareDataDir } from './demo-study';

export interface DigitsDemoOptions {
  dataDir: string;
  /** none, dp-sgd, or both (two studies on the same silos, one after the other). */
  privacy: string;
  epsilon: number;
  /** Training rounds of every study; absent: each preset's own (DIGITS_PRESET_ROUNDS). */
  rounds?: number;
  json?: string;
  log: (line: string) => void;
}

/** The digits demo from an empty directory to the final table (steps in demo-digits.ts). */
export async function runDigitsDemo(o: DigitsDemoOptions): Promise<void> {
  if (!['none', 'dp-sgd', 'both'].includes(o.privacy)) throw new Error(`--privacy must be none, dp-sgd or both`);
  if (o.rounds !== undefined && !(Number.isInteger(o.rounds) && o.rounds >= 1))
    throw new Error('--rounds must be a positive integer');
  if (!(o.epsilon > 0)) throw new Error('--epsilon must be a positive number');
  const started = Date.now();
  const root = prepareDataDir(o.dataDir);
  const password = randomBytes(12).toString('base64url');
  const hub = await startDemoHub(root, password);
  const agents: ChildProcess[] = [];
  let pooled: PooledDigitsRun | null = null;
  try {
    o.log(`hub: ${hub.url} (embedded PostgreSQL in ${relative(process.cwd(), join(root, 'hub'))})`);
    const admin = await DemoAdmin.signIn(hub, password);
    const silos = await enrollDigitSilos(admin, root);
    const splits = new Map(await Promise.all(silos.map(async (s) => [s.key, await splitOf(s)] as const)));
    o.log(
      `silos: ${silos.length} imaging sites enrolled over mutual TLS; digits per site ${silos.map((s) => s.images.length).join(', ')} (label skew)`,
    );
    // The pooled baseline needs only the splits: it trains on its own thread while the studies run (it used to follow
    // them, ~60 s on one core while the demo's thread, which mostly waits on rounds, sat idle).
    pooled = startPooledDigitsBaseline(
      digitsPlan(
        silos.map((s) => s.id),
        { privacy: 'none', epsilon: o.epsilon, ...(o.rounds === undefined ? {} : { rounds: o.rounds }) },
      ),
      splits,
    );
    const modes: DigitsOptions['privacy'][] =
      o.privacy === 'both' ? ['none', 'dp-sgd'] : [o.privacy as 'none' | 'dp-sgd'];
    const runs: DigitsRun[] = [];
    for (const privacy of modes) {
      runs.push(
        await runDigitsStudy(
          admin,
          silos,
          splits,
          { privacy, epsilon: o.epsilon, ...(o.rounds === undefined ? {} : { rounds: o.rounds }) },
          agents,
          o.log,
        ),
      );
      agents.length = 0;
    }
    o.log('pooled baseline: the same network trained on every training split together (started with the studies)…');
    const baseline = await pooled.result();
    const wallMs = Date.now() - started;
    process.stdout.write(formatDigitsSummary(silos, splits, runs, baseline, wallMs));
    if (o.json) {
      writeFileSync(
        o.json,
        JSON.stringify(
          {
            silos: silos.map((s) => ({
              key: s.key,
              name: s.name,
              train: splits.get(s.key)!.train.length,
              test: splits.get(s.key)!.test.length,
            })),
            runs,
            baseline,
            wallTimeMs: wallMs,
          },
          null,
          2,
        ) + '\n',
      );
    }
  } finally {
    for (const a of agents) if (a.exitCode === null) a.kill('SIGTERM');
    // A study that failed leaves the baseline's thread running: end it, or it would keep the process alive.
    try {
      await pooled?.stop();
    } finally {
      await hub.close();
    }
  }
}
