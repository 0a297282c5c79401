import { join } from 'node:path';
import type { StudyPlan } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import {
  compiledExecArgv,
  digitsPlan,
  pooledDigitsBaseline,
  pooledWorkerScript,
  startPooledDigitsBaseline,
} from './demo-digits';
import { loadMnistDigits, type DigitImage } from './demo-digits-data';

// The compiled thread script (vitest's global setup builds the hub; the sources have no .js beside them).
const BUILT_SCRIPT = join(__dirname, '..', '..', 'dist', 'cli', 'demo-pooled-worker.js');

/** Two silos of 48 training and 16 test digits each, every class present, taken from the demo's MNIST package. */
function tinySplits(): Map<string, { train: DigitImage[]; test: DigitImage[] }> {
  const all = loadMnistDigits();
  const byClass = Array.from({ length: 10 }, (_, label) => all.filter((d) => d.label === label));
  const pick = (offset: number, n: number) => Array.from({ length: n }, (_, i) => byClass[i % 10]![offset + i]!);
  return new Map([
    ['site-1', { train: pick(0, 48), test: pick(100, 16) }],
    ['site-2', { train: pick(200, 48), test: pick(300, 16) }],
  ]);
}

const plan = digitsPlan(['site-1', 'site-2'], { privacy: 'none', epsilon: 3, rounds: 1 });

describe('the pooled digits baseline on a worker thread', () => {
  it('gives the same accuracies as on the calling thread (same code, plan, splits and seeds)', async () => {
    const splits = tinySplits();
    const threaded = startPooledDigitsBaseline(plan, splits, BUILT_SCRIPT);
    const inProcess = await pooledDigitsBaseline(plan, splits);
    const fromThread = await threaded.result();
    expect(fromThread).toEqual(inProcess);
    expect(fromThread.epochs).toBe(1);
    expect(Object.keys(fromThread.perSilo)).toEqual(['site-1', 'site-2']);
    await threaded.stop();
  });

  it('runs on the calling thread when the demo runs from its sources, with the same result', async () => {
    expect(pooledWorkerScript()).toBeNull();
    const splits = tinySplits();
    const fallback = startPooledDigitsBaseline(plan, splits);
    expect(await fallback.result()).toEqual(await pooledDigitsBaseline(plan, splits));
  });

  it("rejects with the thread's own error message", async () => {
    const notANetwork = { ...plan, model: { kind: 'logistic' } } as unknown as StudyPlan;
    const run = startPooledDigitsBaseline(notANetwork, tinySplits(), BUILT_SCRIPT);
    await expect(run.result()).rejects.toThrow('the pooled baseline failed: the digits plan has a network model');
  });

  it('ends the thread on stop(): the result rejects instead of the thread running on', async () => {
    const run = startPooledDigitsBaseline(plan, tinySplits(), BUILT_SCRIPT);
    await run.stop();
    await expect(run.result()).rejects.toThrow(/the pooled baseline thread exited \(code \d+\) without a result/);
  });

  it("gives the thread its parent's Node flags less the sources condition, in each spelling", () => {
    expect(
      compiledExecArgv([
        '--conditions',
        '@tessera/source',
        '--conditions',
        'node',
        '-C',
        '@tessera/source',
        '--conditions=@tessera/source',
        '--max-old-space-size=512',
      ]),
    ).toEqual(['--conditions', 'node', '--max-old-space-size=512']);
  });
});
