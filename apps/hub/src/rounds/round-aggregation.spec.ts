import {
  AggregationErrorCode,
  coordinateMedian,
  FedAvgAggregator,
  scaleUpdate,
  ThreadedBlockSum,
  type AggregationException,
} from '@tessera/aggregation';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex, type StudyPlan } from '@tessera/protocol';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FilesystemBlobStore } from '../blobs/filesystem-blob-store';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { AggregationBudget } from './plan-aggregation.util';
import {
  aggregateRoundUpdates,
  verifiesWhileReading,
  type RoundAggregationOutcome,
  type StoredUpdate,
} from './round-aggregation';
import { honestUpdates, l2, storeUpdates, updateFrame } from './stored-updates.test-util';

const M = 2000;
const ROOMY: AggregationBudget = { budgetBytes: 512 * 2 ** 20, blockParameters: 65_536 };
/** Too small to hold 5 updates of 2000 parameters, large enough for blocks of 256 (docs/aggregation.md formulas). */
const TIGHT: AggregationBudget = { budgetBytes: 30_000, blockParameters: 256 };

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function plan(
  overrides: Pick<Partial<StudyPlan>, 'aggregation' | 'screening'>,
  silos = 5,
  minSilosPerRound = 3,
): StudyPlan {
  const p = heartDiseasePlan(
    Array.from({ length: silos }, (_, k) => `silo-${k}`),
    { release: { evaluation: { mode: 'none' }, trainingExamples: 'none' }, ...overrides },
  );
  p.participation.minSilosPerRound = minSilosPerRound;
  return p;
}

/** Four honest updates and a fifth scaled ×10 (the issue's scaling attack). */
function roundWithScaledAttacker(seed = 7): Float32Array[] {
  const updates = honestUpdates(5, M, seed);
  updates[4] = scaleUpdate(updates[4]!, 10);
  return updates;
}

async function run(
  updates: Float32Array[],
  studyPlan: StudyPlan,
  budget = ROOMY,
  previousGlobal: Float32Array | null = null,
): Promise<RoundAggregationOutcome> {
  const s = await storeUpdates(updates);
  cleanups.push(s.dispose);
  return aggregateRoundUpdates(s.blobs, {
    plan: studyPlan,
    global: new Float32Array(M),
    previousGlobal,
    updates: s.stored,
    participants: updates.length,
    mechanism: null,
    budget,
  });
}

function aggregated(outcome: RoundAggregationOutcome) {
  if (outcome.outcome !== 'aggregated') throw new Error(`expected an aggregate, got ${outcome.outcome}`);
  return outcome;
}

const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));

describe('a round aggregated by the plan', () => {
  it('is FedAvg, streamed as before, when the plan names no aggregation', async () => {
    const updates = roundWithScaledAttacker();
    const result = aggregated(await run(updates, plan({})));
    const expected = new FedAvgAggregator(M, { weighting: 'unweighted' });
    for (const u of updates) expected.add(u, 1);
    expect(same(result.delta, expected.finish().delta)).toBe(true);
    expect(result.screening).toBeNull();
    expect(result.aggregated).toEqual(['silo-0', 'silo-1', 'silo-2', 'silo-3', 'silo-4']);
    expect(result.trace.some((t) => (t.record as { step?: string }).step === 'memory')).toBe(false);
  });

  it('takes the coordinate median, which the ×10 update cannot drag', async () => {
    const updates = roundWithScaledAttacker();
    const result = aggregated(await run(updates, plan({ aggregation: { aggregator: { kind: 'coordinate-median' } } })));
    expect(same(result.delta, coordinateMedian(updates))).toBe(true);
    const memory = result.trace[0]!;
    expect(memory).toEqual({ record: memory.record });
    expect(memory.record).toMatchObject({
      step: 'memory',
      mode: 'in-memory',
      budgetBytes: ROOMY.budgetBytes,
      updates: 5,
    });
    expect(Object.keys(memory.record).sort()).toEqual(['budgetBytes', 'bytes', 'mode', 'step', 'updates']);
    expect(memory.record).toHaveProperty('bytes', expect.any(Number));
    expect(result.trace.at(-1)).toEqual({
      siloIds: ['silo-0', 'silo-1', 'silo-2', 'silo-3', 'silo-4'],
      record: { step: 'coordinate-median', count: 5 },
    });
  });

  it('screens: flags the ×10 update on its norm, leaves it out, and takes the median of the rest', async () => {
    const updates = roundWithScaledAttacker();
    const studyPlan = plan({
      aggregation: { aggregator: { kind: 'coordinate-median' } },
      screening: { threshold: 3.5, exclude: true },
    });
    const result = aggregated(await run(updates, studyPlan));
    expect(result.excluded).toEqual(['silo-4']);
    expect(result.aggregated).toEqual(['silo-0', 'silo-1', 'silo-2', 'silo-3']);
    expect(same(result.delta, coordinateMedian(updates.slice(0, 4)))).toBe(true);
    const flagged = result.screening!.updates.filter((u) => u.flags.length > 0);
    expect(flagged.map((u) => [u.siloId, u.excluded, u.flags.map((f) => f.statistic)])).toEqual([
      ['silo-4', true, ['norm']],
    ]);
    expect(flagged[0]!.flags[0]!.reason).toMatch(
      /^L2 norm [\d.]+ is [\d.]+ robust deviations above the round's median/,
    );
    expect(flagged[0]!.norm).toBeCloseTo(l2(updates[4]!), 3);
    expect(result.screening!.rule).toMatchObject({ threshold: 3.5, exclude: true, applied: true });
  });

  it('flags without excluding when the plan says so: the aggregate keeps every update', async () => {
    const updates = roundWithScaledAttacker();
    const studyPlan = plan({
      aggregation: { aggregator: { kind: 'coordinate-median' } },
      screening: { threshold: 3.5, exclude: false },
    });
    const result = aggregated(await run(updates, studyPlan));
    expect(result.excluded).toEqual([]);
    expect(same(result.delta, coordinateMedian(updates))).toBe(true);
    expect(result.screening!.updates[4]!.flags).toHaveLength(1);
    expect(result.screening!.updates[4]!.excluded).toBe(false);
  });

  it('runs blockwise over the blob store when the updates do not fit the budget, with the same result', async () => {
    const updates = roundWithScaledAttacker();
    const previousGlobal = Float32Array.from(honestUpdates(1, M, 99)[0]!, (x) => -0.01 * x);
    const studyPlan = plan({
      aggregation: { aggregator: { kind: 'coordinate-median' } },
      screening: { threshold: 3.5, exclude: true },
    });
    const roomy = aggregated(await run(updates, studyPlan, ROOMY, previousGlobal));
    const tight = aggregated(await run(updates, studyPlan, TIGHT, previousGlobal));
    expect(tight.trace[0]!.record).toMatchObject({ step: 'memory', mode: 'blockwise' });
    expect((tight.trace[0]!.record as { bytes: number }).bytes).toBeLessThanOrEqual(TIGHT.budgetBytes);
    expect(same(tight.delta, roomy.delta)).toBe(true);
    expect(tight.excluded).toEqual(roomy.excluded);
    tight.screening!.updates.forEach((u, k) => {
      const r = roomy.screening!.updates[k]!;
      expect(u.norm).toBeCloseTo(r.norm, 6);
      expect(u.cosineToPrevious).toBeCloseTo(r.cosineToPrevious!, 9);
      expect(u.flags.map((f) => f.statistic)).toEqual(r.flags.map((f) => f.statistic));
    });
  });

  it('refuses a round whose updates fit the budget neither in memory nor blockwise, with the plan check message', async () => {
    const studyPlan = plan({ aggregation: { aggregator: { kind: 'coordinate-median' } } });
    const error = await run(roundWithScaledAttacker(), studyPlan, { budgetBytes: 1000, blockParameters: 256 }).catch(
      (e: unknown) => e,
    );
    expect((error as AggregationException).code).toBe(AggregationErrorCode.MemoryBudgetExceeded);
    expect((error as Error).message).toMatch(/coordinate-wise median of 5 updates × 2,000 parameters needs/);
  });

  it('compares with the previous global update: a sign-flipped update is flagged on its cosines', async () => {
    const updates = honestUpdates(5, M, 11);
    updates[1] = scaleUpdate(updates[1]!, -1);
    // Last round's change pointed where the honest silos point now.
    const previousGlobal = Float32Array.from(coordinateMedian(updates), (x) => -0.1 * x);
    const studyPlan = plan({
      aggregation: { aggregator: { kind: 'coordinate-median' } },
      screening: { threshold: 3.5, exclude: false },
    });
    const result = aggregated(await run(updates, studyPlan, ROOMY, previousGlobal));
    const flipped = result.screening!.updates[1]!;
    expect(flipped.cosineToPrevious).toBeLessThan(-0.5);
    expect(flipped.flags.map((f) => f.statistic).sort()).toEqual(['cosine-to-aggregate', 'cosine-to-previous']);
    expect(result.screening!.updates.filter((u) => u.flags.length > 0).map((u) => u.siloId)).toEqual(['silo-1']);
  });

  it('does not aggregate when exclusion would leave fewer updates than the plan needs', async () => {
    const studyPlan = plan(
      { aggregation: { aggregator: { kind: 'coordinate-median' } }, screening: { threshold: 3.5, exclude: true } },
      5,
      5,
    );
    const result = await run(roundWithScaledAttacker(), studyPlan);
    expect(result.outcome).toBe('too-few-after-exclusion');
    if (result.outcome !== 'too-few-after-exclusion') return;
    expect(result.excluded).toEqual(['silo-4']);
    expect(result.screening.notAggregated).toBe(
      'screening left out 1 of 5 updates; the 4 left are fewer than participation.minSilosPerRound = 5, so the ' +
        'round was not aggregated',
    );
  });

  it('bounds every update to a fixed norm before FedAvg, and traces the clip', async () => {
    const updates = roundWithScaledAttacker();
    const bound = 1.2 * Math.max(...updates.slice(0, 4).map(l2));
    const studyPlan = plan({
      aggregation: { aggregator: { kind: 'fedavg' }, normBound: { mode: 'fixed', maxNorm: bound } },
    });
    const result = aggregated(await run(updates, studyPlan));
    const expected = new FedAvgAggregator(M, { weighting: 'unweighted' });
    updates.forEach((u, k) => expected.add(k === 4 ? scaleUpdate(u, bound / l2(u)) : u, 1));
    const want = expected.finish().delta;
    result.delta.forEach((x, i) => expect(x).toBeCloseTo(want[i]!, 5));
    expect(result.trace[0]!.record).toMatchObject({ step: 'norm-bound', mode: 'fixed', bound, clipped: 1 });
    const clips = result.trace.filter((t) => (t.record as { step?: string }).step === 'clip');
    expect(clips.map((t) => t.siloId)).toEqual(['silo-0', 'silo-1', 'silo-2', 'silo-3', 'silo-4']);
  });
});

describe('the fused sum on worker threads (issue 21) against the one-by-one path', () => {
  const N = 13;
  // Not a multiple of 8 nor of a block: tails in every piece of the kernel's work.
  const LENGTH = 30_011;
  // Between the norms of the honest updates (≈ √(1.25·LENGTH) ≈ 194) and of those scaled ×1.3 (≈ 252).
  const S = 220;

  /** The round's updates stored as the receiver stores them, each with its record count. */
  async function storeCounted(updates: readonly Float32Array[]) {
    const s = await storeUpdates([]);
    cleanups.push(s.dispose);
    const stored: StoredUpdate[] = [];
    for (const [k, u] of updates.entries()) {
      const hash = await s.blobs.put(updateFrame(u, 20 + 3 * k));
      stored.push({ siloId: `silo-${k}`, hash, l2Norm: l2(u), numExamples: 20 + 3 * k });
    }
    return { blobs: s.blobs, stored };
  }

  function countedPlan(extra: Parameters<typeof heartDiseasePlan>[1]): StudyPlan {
    const p = heartDiseasePlan(
      Array.from({ length: N }, (_, k) => `silo-${k}`),
      { release: { evaluation: { mode: 'none' }, trainingExamples: 'exact' }, ...extra },
    );
    p.participation.minSilosPerRound = 3;
    return p;
  }

  const cases: { name: string; plan: () => StudyPlan; budget?: AggregationBudget; dp?: boolean }[] = [
    { name: 'FedAvg weighted by record counts', plan: () => countedPlan({}) },
    {
      name: 'FedAvg, uniform weights, norms bounded (some updates scaled)',
      plan: () => ({
        ...plan({ aggregation: { aggregator: { kind: 'fedavg' }, normBound: { mode: 'fixed', maxNorm: S } } }, N),
      }),
    },
    {
      name: 'FedAvg with blockwise screening (a tight budget)',
      plan: () => plan({ screening: { exclude: false } } as Pick<Partial<StudyPlan>, 'screening'>, N),
      budget: { budgetBytes: 800_000, blockParameters: 4096 },
    },
    {
      name: 'DP-FedAvg (clipping of the updates above S; noise multiplier 0, so both paths are deterministic)',
      plan: () =>
        countedPlan({
          privacy: {
            mode: 'dp-fedavg',
            unit: 'silo',
            targetEpsilon: 4,
            delta: 1e-5,
            clipNorm: S,
            noiseMultiplier: 'derive',
          },
        }),
      dp: true,
    },
  ];

  it.each(cases)('$name: the same bits and trace on 0, 1 and 2 threads', async (c) => {
    const updates = honestUpdates(N, LENGTH, 21).map((u, k) => (k % 4 === 0 ? scaleUpdate(u, 1.3) : u));
    const { blobs, stored } = await storeCounted(updates);
    const studyPlan = c.plan();
    const budget = c.budget ?? ROOMY;
    const input = (sumThreads: AggregationBudget['sumThreads']) => ({
      plan: studyPlan,
      global: new Float32Array(LENGTH),
      previousGlobal: null,
      updates: stored,
      participants: N + 2,
      mechanism: c.dp ? { clipNorm: S, noiseMultiplier: 0 } : null,
      budget: { ...budget, sumThreads },
    });
    const reference = aggregated(await aggregateRoundUpdates(blobs, input('one-by-one')));
    const memory = reference.trace.find((t) => (t.record as { step?: string }).step === 'memory');
    if (c.budget) expect(memory?.record).toMatchObject({ mode: 'blockwise' });
    const create = vi.spyOn(ThreadedBlockSum, 'create');
    try {
      for (const threads of [0, 1, 2]) {
        const fused = aggregated(await aggregateRoundUpdates(blobs, input(threads)));
        expect(same(fused.delta, reference.delta), `${threads} threads`).toBe(true);
        expect(fused.trace).toEqual(reference.trace);
        expect(fused.aggregated).toEqual(reference.aggregated);
      }
      // The fused path ran (once per aggregation), asked for the configured threads.
      expect(create.mock.calls.map(([, options]) => options)).toEqual([{ threads: 0 }, { threads: 1 }, { threads: 2 }]);
    } finally {
      create.mockRestore();
    }
    if (c.dp) {
      const clips = reference.trace.filter((t) => (t.record as { step?: string }).step === 'clip');
      expect(clips.some((t) => (t.record as { factor: number }).factor < 1)).toBe(true);
      expect(clips.some((t) => (t.record as { factor: number }).factor === 1)).toBe(true);
    }
  });
});

describe('the updates checked against their names while the fused sum reads them (ADR 0021)', () => {
  const N = 11;
  // Two blocks of the fused sum (262,144), the second short: a block that does not divide the update.
  const LENGTH = 300_007;
  const S = 560;

  /** The round's updates in a filesystem store of our own (to change a stored file), with record counts. */
  async function storeRound(updates: readonly Float32Array[]) {
    const root = mkdtempSync(join(tmpdir(), 'tessera-verify-'));
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const blobs = new FilesystemBlobStore(root);
    const stored: StoredUpdate[] = [];
    for (const [k, u] of updates.entries()) {
      const hash = await blobs.put(updateFrame(u, 20 + 3 * k));
      stored.push({ siloId: `silo-${k}`, hash, l2Norm: l2(u), numExamples: 20 + 3 * k });
    }
    return { blobs, stored, fileOf: (hash: string) => join(root, hash.slice(0, 2), hash) };
  }

  function countedPlan(extra: Parameters<typeof heartDiseasePlan>[1] = {}): StudyPlan {
    const p = heartDiseasePlan(
      Array.from({ length: N }, (_, k) => `silo-${k}`),
      { release: { evaluation: { mode: 'none' }, trainingExamples: 'exact' }, ...extra },
    );
    p.participation.minSilosPerRound = 3;
    return p;
  }

  const dp = {
    privacy: {
      mode: 'dp-fedavg',
      unit: 'silo',
      targetEpsilon: 4,
      delta: 1e-5,
      clipNorm: S,
      noiseMultiplier: 'derive',
    },
  } as const;
  const plans: { name: string; plan: () => StudyPlan; dp?: boolean }[] = [
    { name: 'FedAvg weighted by record counts', plan: () => countedPlan() },
    {
      name: 'FedAvg, norms bounded (some updates scaled)',
      plan: () =>
        countedPlan({ aggregation: { aggregator: { kind: 'fedavg' }, normBound: { mode: 'fixed', maxNorm: S } } }),
    },
    { name: 'DP-FedAvg (some updates clipped)', plan: () => countedPlan(dp), dp: true },
  ];

  function roundUpdates(): Float32Array[] {
    // Norms ≈ √(1.25·LENGTH) ≈ 612 and ×0.8 ≈ 490, either side of S.
    return honestUpdates(N, LENGTH, 33).map((u, k) => (k % 3 === 0 ? scaleUpdate(u, 0.8) : u));
  }

  function input(
    studyPlan: StudyPlan,
    stored: readonly StoredUpdate[],
    sumThreads: AggregationBudget['sumThreads'],
    verifyWhileReading: boolean,
    isDp = false,
  ) {
    return {
      plan: studyPlan,
      global: new Float32Array(LENGTH),
      previousGlobal: null,
      updates: stored,
      participants: N + 1,
      mechanism: isDp ? { clipNorm: S, noiseMultiplier: 0 } : null,
      budget: { ...ROOMY, sumThreads },
      verifyWhileReading,
    };
  }

  it.each(plans)('$name: the same bits and trace as the verified path, on 0, 1 and 2 threads', async (c) => {
    const { blobs, stored } = await storeRound(roundUpdates());
    const studyPlan = c.plan();
    expect(verifiesWhileReading(studyPlan, ROOMY, LENGTH, N)).toBe(true);
    const reference = aggregated(
      await aggregateRoundUpdates(blobs, input(studyPlan, stored, 'one-by-one', false, c.dp)),
    );
    for (const threads of [0, 1, 2]) {
      const verified = aggregated(await aggregateRoundUpdates(blobs, input(studyPlan, stored, threads, false, c.dp)));
      const checked = aggregated(await aggregateRoundUpdates(blobs, input(studyPlan, stored, threads, true, c.dp)));
      expect(same(checked.delta, reference.delta), `${threads} threads`).toBe(true);
      expect(same(checked.delta, verified.delta), `${threads} threads`).toBe(true);
      expect(checked.trace).toEqual(reference.trace);
      expect(checked.aggregated).toEqual(reference.aggregated);
    }
    const clips = reference.trace.filter((t) => (t.record as { step?: string }).step === 'clip');
    if (c.name !== plans[0]!.name) expect(clips.some((t) => (t.record as { factor: number }).factor < 1)).toBe(true);
  });

  it.each(plans)('$name: names the updates whose stored bytes changed, and aggregates nothing', async (c) => {
    const updates = roundUpdates();
    const { blobs, stored, fileOf } = await storeRound(updates);
    // One bit of the last value of silo-4's payload (block 2, the short one), one of silo-9's header (its record count).
    const payload = readFileSync(fileOf(stored[4]!.hash));
    payload[payload.length - 1]! ^= 0x40;
    writeFileSync(fileOf(stored[4]!.hash), payload);
    const header = readFileSync(fileOf(stored[9]!.hash));
    const at = header.indexOf('"numExamples":47');
    expect(at).toBeGreaterThan(0);
    header[at + '"numExamples":4'.length] = '8'.charCodeAt(0);
    writeFileSync(fileOf(stored[9]!.hash), header);
    for (const threads of [0, 2]) {
      const outcome = await aggregateRoundUpdates(blobs, input(c.plan(), stored, threads, true, c.dp));
      // DP-FedAvg reads the updates above S first for their exact norms (silo-4's norm ≈ 612 > S) and stops at a
      // changed one before summing; the closer sets it aside and aggregates again, which then finds silo-9.
      const changed = [
        { siloId: 'silo-4', hash: stored[4]!.hash, actualHash: sha256Hex(payload) },
        { siloId: 'silo-9', hash: stored[9]!.hash, actualHash: sha256Hex(header) },
      ];
      expect(outcome).toEqual({ outcome: 'corrupted', changed: c.dp ? changed.slice(0, 1) : changed });
      if (c.dp) {
        const again = await aggregateRoundUpdates(
          blobs,
          input(
            c.plan(),
            stored.filter((_, k) => k !== 4),
            threads,
            true,
            true,
          ),
        );
        expect(again).toEqual({ outcome: 'corrupted', changed: changed.slice(1) });
      }
    }
  });

  it('is for FedAvg and DP-FedAvg on the fused sum only: other rounds verify first', async () => {
    const base = countedPlan();
    expect(verifiesWhileReading(base, { ...ROOMY, sumThreads: 'one-by-one' }, LENGTH, N)).toBe(false);
    const others: StudyPlan[] = [
      countedPlan({ aggregation: { aggregator: { kind: 'coordinate-median' } } }),
      countedPlan({ screening: { threshold: 3.5, exclude: false } }),
      countedPlan({ ...dp, aggregation: { aggregator: { kind: 'fedavg' }, normBound: { mode: 'fixed', maxNorm: S } } }),
    ];
    for (const p of others) expect(verifiesWhileReading(p, ROOMY, LENGTH, N)).toBe(false);
    // Asked anyway, such a round refuses rather than read bytes nobody checked.
    const { blobs, stored } = await storeRound(roundUpdates().slice(0, 4));
    await expect(aggregateRoundUpdates(blobs, input(others[0]!, stored, 2, true))).rejects.toThrow(
      /cannot verify its updates while it reads them/,
    );
  });
});
