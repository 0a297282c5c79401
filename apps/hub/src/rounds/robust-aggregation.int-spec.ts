import { coordinateMedian } from '@tessera/aggregation';
import {
  SILO_STUDY_API,
  type AuditEventPageView,
  type RoundView,
  type SiloTask,
  type StudyPlan,
  type TasksResponse,
} from '@tessera/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyView } from '../studies/studies.service';
import {
  ADMIN,
  DATABASE_KINDS,
  api,
  signIn,
  startTestHub,
  type DatabaseKind,
  type TestHub,
} from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';
import { float32FromBytes } from './model-math';
import { seededNormal, updateFrame } from './stored-updates.test-util';

/**
 * A real study with the coordinate median and screening that excludes (issue 20): five silos speaking the real
 * protocol with hand-made updates, one of which attacks — scaled ×10 in round 1, sign-flipped in round 2. On both
 * databases, with the updates held in memory (the default budget) and read blockwise over the blob store (a budget
 * of 400 bytes with blocks of 4 coordinates, which 5 updates of the 14-parameter model do not fit in memory).
 */

type Mode = 'in-memory' | 'blockwise';
const MODES: Record<Mode, Record<string, string>> = {
  'in-memory': {},
  blockwise: { TESSERA_AGGREGATION_MEMORY: '400', TESSERA_AGGREGATION_BLOCK_PARAMETERS: '4' },
};
const CASES: [DatabaseKind, Mode][] = DATABASE_KINDS.flatMap((kind) => [
  [kind, 'in-memory'] as [DatabaseKind, Mode],
  [kind, 'blockwise'] as [DatabaseKind, Mode],
]);

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Honest silos' deltas in round `round`: one direction shared by all and kept from round to round (what the data
 * teaches), with 1% noise of each silo's own, new every round.
 */
function honestDeltas(count: number, length: number, round: number): Float32Array[] {
  const direction = seededNormal(1);
  const signal = Float32Array.from({ length }, () => 0.05 * direction());
  const noise = seededNormal(100 + round);
  return Array.from({ length: count }, () => Float32Array.from(signal, (x) => x * (1 + 0.01 * noise())));
}

describe.each(CASES)('robust aggregation and screening in a study on the %s database, %s', (kind, mode) => {
  let hub: TestHub;
  let admin: Record<string, string>;
  let silos: TestSilo[];
  let attacker: TestSilo;
  let study: StudyView;
  const rounds: RoundView[] = [];
  const models: Float32Array[] = [];
  const honest: Float32Array[][] = [];

  const plan = (): StudyPlan => {
    const p = heartDiseasePlan(
      silos.map((s) => s.id),
      {
        release: { evaluation: { mode: 'none' }, trainingExamples: 'none' },
        aggregation: { aggregator: { kind: 'coordinate-median' } },
        screening: { threshold: 3.5, exclude: true },
      },
    );
    p.training.rounds = 2;
    // Plain FedAvg steps: the next model is the global model plus the aggregate, checkable by hand.
    p.training.serverOptimizer = { kind: 'fedavg', learningRate: 1 };
    p.participation = { minSilosPerRound: 4, roundDeadlineSeconds: 120, maxRoundRetries: 0, onSiloFailure: 'continue' };
    return p;
  };

  async function taskOf(silo: TestSilo, round: number): Promise<SiloTask> {
    return waitFor(async () => {
      const res = await silo.call('GET', `${SILO_STUDY_API.tasks}?wait=2`);
      return (res.body as TasksResponse).tasks.find((t) => t.studyId === study.id && t.round === round);
    });
  }

  async function model(silo: TestSilo, hash: string): Promise<Float32Array> {
    const res = await silo.binary('GET', SILO_STUDY_API.blob(hash));
    expect(res.status).toBe(200);
    return float32FromBytes(res.bytes);
  }

  /** Every silo uploads its delta for `round`; the attacker's is `attack` of an honest one. Waits for the close. */
  async function playRound(round: number, attack: (delta: Float32Array) => Float32Array): Promise<void> {
    const tasks: SiloTask[] = [];
    for (const silo of silos) tasks.push(await taskOf(silo, round));
    models.push(await model(silos[0]!, tasks[0]!.modelHash));
    const deltas = honestDeltas(silos.length, models[0]!.length, round);
    honest.push(deltas.slice(0, -1));
    for (const [k, silo] of silos.entries()) {
      const task = tasks[k]!;
      const delta = silo === attacker ? attack(deltas[k]!) : deltas[k]!;
      // The frame's header names this study, round and model (the receiver checks them).
      const frame = updateFrame(delta, null, {
        studyId: study.id,
        round,
        attempt: task.attempt,
        planHash: task.planHash,
        baseModelHash: task.modelHash,
      });
      const res = await silo.binary('POST', SILO_STUDY_API.update(study.id, round), frame);
      expect([silo.name, res.status]).toEqual([silo.name, 200]);
    }
    rounds.splice(
      0,
      rounds.length,
      ...(await waitFor(async () => {
        const all = (await api(hub, 'GET', `/api/studies/${study.id}/rounds`, { headers: admin })).body as RoundView[];
        return all.some((r) => r.number === round + 1) ? all : undefined;
      })),
    );
  }

  beforeAll(async () => {
    hub = await startTestHub(kind, { env: MODES[mode] });
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    silos = [];
    for (const name of ['North', 'South', 'East', 'West', 'Rogue']) {
      silos.push(await TestSilo.enroll(hub, admin, `${name} ${kind} ${mode}`));
    }
    attacker = silos[4]!;
    const created = await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan: plan() } });
    expect(created.status).toBe(201);
    study = created.body as StudyView;
    await api(hub, 'POST', `/api/studies/${study.id}/submit`, { headers: admin });
    for (const s of silos) {
      const r = await s.call('POST', SILO_STUDY_API.decision(study.id), {
        planHash: study.planHash,
        decision: 'approve',
      });
      expect(r.status).toBe(200);
    }
    expect((await api(hub, 'POST', `/api/studies/${study.id}/start`, { headers: admin })).status).toBe(200);
    await playRound(1, (d) => d.map((x) => 10 * x));
    await playRound(2, (d) => d.map((x) => -x));
  }, 120_000);
  afterAll(async () => {
    await hub?.dispose();
  });

  it(`aggregates ${mode}, as the memory record of the trace says`, async () => {
    const { DataSource } = await import('typeorm');
    const db = hub.app.get(DataSource);
    const [row] = await db.query<{ record: { step: string; mode: string } }[]>(
      `SELECT summary->'aggregationTrace'->0->'record' AS record FROM rounds WHERE study_id = $1 AND number = 1`,
      [study.id],
    );
    expect(row!.record).toMatchObject({ step: 'memory', mode });
  });

  it('flags the ×10 update of round 1 on its norm, leaves it out, and takes the median of the honest four', () => {
    const round1 = rounds.find((r) => r.number === 1)!;
    expect(round1.status).toBe('closed');
    const screening = round1.summary!.screening!;
    const flagged = screening.updates.filter((u) => u.flags.length > 0);
    expect(flagged.map((u) => [u.siloId, u.excluded, u.flags.map((f) => f.statistic)])).toEqual([
      [attacker.id, true, ['norm']],
    ]);
    expect(screening.updates.find((u) => u.siloId === attacker.id)!.cosineToPrevious).toBeNull();
    // The next model is the first plus the coordinate median of the honest updates alone (server step η = 1).
    const median = coordinateMedian(honest[0]!);
    const expected = models[0]!.map((x, i) => x + median[i]!);
    models[1]!.forEach((x, i) => expect(x).toBeCloseTo(expected[i]!, 6));
    const withAttacker = coordinateMedian([
      ...honest[0]!,
      honestDeltas(5, models[0]!.length, 1)[4]!.map((x) => 10 * x),
    ]);
    expect(withAttacker.some((x, i) => Math.abs(x - median[i]!) > 1e-6)).toBe(true);
  });

  it('flags the sign-flipped update of round 2 on its cosines to the aggregate and to the previous global update', () => {
    const round2 = rounds.find((r) => r.number === 2)!;
    expect(round2.status).toBe('closed');
    const mine = round2.summary!.screening!.updates.find((u) => u.siloId === attacker.id)!;
    expect(mine.excluded).toBe(true);
    expect(mine.cosineToPrevious).toBeLessThan(-0.9);
    expect(mine.flags.map((f) => f.statistic).sort()).toEqual(['cosine-to-aggregate', 'cosine-to-previous']);
    expect(round2.summary!.screening!.updates.filter((u) => u.flags.length > 0)).toHaveLength(1);
  });

  it('records each flag in the audit trail with its reason, in the round close, and verifies the chain', async () => {
    const page = (
      await api(hub, 'GET', `/api/audit/events?action=round.update.flagged&studyId=${study.id}&order=asc`, {
        headers: admin,
      })
    ).body as AuditEventPageView;
    expect(page.events.map((e) => [e.subject.siloId, e.details.round, e.details.excluded])).toEqual([
      [attacker.id, 1, true],
      [attacker.id, 2, true],
    ]);
    expect(page.events[0]!.details.reason).toMatch(
      /^L2 norm [\d.]+ is [\d.]+ robust deviations above the round's median .*; left out of the round's aggregate/,
    );
    const closed = (
      await api(hub, 'GET', `/api/audit/events?action=round.closed&studyId=${study.id}&order=asc`, { headers: admin })
    ).body as AuditEventPageView;
    expect(closed.events.map((e) => e.details.excluded)).toEqual([[attacker.id], [attacker.id]]);
    // The flag and the close are one transaction: the flag's record comes just before the close's.
    expect(closed.events[0]!.seq).toBeGreaterThan(page.events[0]!.seq);
    const verified = (await api(hub, 'GET', '/api/audit/verify', { headers: admin })).body as { ok: boolean };
    expect(verified.ok).toBe(true);
  });

  it('refuses at creation a Krum plan whose rounds may close with n ≤ 2f + 2, naming the field', async () => {
    const krum = { ...plan(), aggregation: { aggregator: { kind: 'krum', byzantine: 1 } } };
    const res = await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan: krum } });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      error: 'PLAN_INVALID',
      details: [
        expect.stringMatching(/^aggregation\.aggregator\.byzantine: Krum tolerating f = 1 .* needs n > 2f \+ 2 = 4/),
      ],
    });
  });

  it.runIf(mode === 'blockwise')(
    'refuses at creation a plan whose aggregation would not fit the configured memory even blockwise',
    async () => {
      const big = { ...plan(), model: { kind: 'mlp', hiddenLayers: [64], activation: 'relu' } };
      const res = await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan: big } });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({
        error: 'PLAN_INVALID',
        details: [
          expect.stringMatching(
            /^aggregation: coordinate-wise median of 5 updates × [\d,]+ parameters needs .* blockwise .*; the configured aggregation memory is 400 B\. .*\(TESSERA_AGGREGATION_MEMORY on this hub\)$/,
          ),
          expect.stringMatching(/^screening: screening 5 updates × [\d,]+ parameters needs /),
        ],
      });
    },
  );
});
