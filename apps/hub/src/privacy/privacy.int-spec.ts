import {
  encodeUpdateFrame,
  float32Bytes,
  privacyMechanismOf,
  privacySpendOf,
  sha256Hex,
  SILO_STUDY_API,
  type PrivacySpend,
  type StudyPlan,
  type TasksResponse,
} from '@tessera/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyPrivacyView } from '../studies/studies.controller';
import type { StudyView } from '../studies/studies.service';
import { ADMIN, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';

const EVAL = { loss: 0.6, accuracy: 0.7, auc: 0.75, n: 20, positives: 9 };

function dpPlan(
  silos: string[],
  privacy: Partial<Extract<StudyPlan['privacy'], { mode: 'dp-sgd' }>> = {},
  rounds = 2,
): StudyPlan {
  const plan = heartDiseasePlan(silos, {
    privacy: {
      mode: 'dp-sgd',
      unit: 'record',
      targetEpsilon: 1,
      delta: 1e-5,
      clipNorm: 1,
      noiseMultiplier: 'derive',
      samplingRate: 0.1,
      ...privacy,
    },
    participation: { minSilosPerRound: 2, roundDeadlineSeconds: 6, maxRoundRetries: 2, onSiloFailure: 'continue' },
  });
  plan.training.rounds = rounds;
  return plan;
}

function frameFor(
  study: StudyView,
  round: number,
  attempt: number,
  modelHash: string,
  privacy: PrivacySpend | null,
): Buffer {
  const delta = new Float32Array(14).fill(0.01);
  return encodeUpdateFrame(
    {
      studyId: study.id,
      round,
      attempt,
      planHash: study.planHash,
      baseModelHash: modelHash,
      numExamples: 100,
      length: 14,
      payloadSha256: sha256Hex(float32Bytes(delta)),
      l2Norm: Math.sqrt(14 * 0.01 * 0.01),
      trainLoss: 0.5,
      evaluation: EVAL,
      privacy,
    },
    delta,
  );
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('privacy plans, the ledger and enforced budgets (server database)', () => {
  let hub: TestHub;
  let admin: Record<string, string>;
  let a: TestSilo;
  let b: TestSilo;

  beforeAll(async () => {
    hub = await startTestHub('server');
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    a = await TestSilo.enroll(hub, admin, 'Private A');
    b = await TestSilo.enroll(hub, admin, 'Private B');
  });
  afterAll(async () => {
    await hub?.dispose();
  });

  it('refuses bad privacy parameters with 400 and the reason, storing nothing', async () => {
    const silos = [a.id, b.id];
    const cases: [Partial<Extract<StudyPlan['privacy'], { mode: 'dp-sgd' }>>, RegExp][] = [
      [{ targetEpsilon: 0 }, /privacy.targetEpsilon/],
      [{ targetEpsilon: -1 }, /privacy.targetEpsilon/],
      [{ delta: 0 }, /privacy.delta/],
      [{ delta: 1 }, /privacy.delta/],
      [{ clipNorm: 0 }, /privacy.clipNorm/],
      [{ targetEpsilon: 1e-7 }, /no noise multiplier meets target ε = 1e-7/],
      [{ noiseMultiplier: 0.3 }, /cost ε = .* above the target ε = 1/],
    ];
    for (const [privacy, reason] of cases) {
      const res = await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan: dpPlan(silos, privacy) } });
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).toMatch(reason);
    }
    expect((await api(hub, 'GET', '/api/studies', { headers: admin })).body).toEqual([]);
  });

  it('prices the whole study before approval, with the σ the agents will compute themselves', async () => {
    const plan = dpPlan([a.id, b.id]);
    const created = (await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } })).body as StudyView;
    const m = privacyMechanismOf(plan)!;
    expect(created.privacyCost).toMatchObject({
      mechanism: 'dp-sgd',
      unit: 'record',
      noiseMultiplier: m.noiseMultiplier,
      samplingRate: 0.1,
      stepsPerRound: 50, // 5 local epochs × round(1/0.1)
      delta: 1e-5,
      accountant: 'rdp-sampled-gaussian',
    });
    expect(created.privacyCost!.epsilon).toBeLessThanOrEqual(1);
    expect(created.privacyCost!.epsilon).toBeGreaterThan(0.99); // the smallest σ meeting the target
    await api(hub, 'POST', `/api/studies/${created.id}/stop`, {
      headers: admin,
      json: { reason: 'pricing test only' },
    });
  });

  it('records every spend, flags a forged report, and does not open a round that would pass the target', async () => {
    const plan = dpPlan([a.id, b.id]);
    const study = (await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } })).body as StudyView;
    await api(hub, 'POST', `/api/studies/${study.id}/submit`, { headers: admin });
    for (const s of [a, b])
      await s.call('POST', SILO_STUDY_API.decision(study.id), { planHash: study.planHash, decision: 'approve' });
    expect((await api(hub, 'POST', `/api/studies/${study.id}/start`, { headers: admin })).status).toBe(200);
    const m = privacyMechanismOf(plan)!;
    const task = ((await a.call('GET', `${SILO_STUDY_API.tasks}?wait=5`)).body as TasksResponse).tasks[0]!;

    // A DP update must carry its spend.
    const bare = await a.binary(
      'POST',
      SILO_STUDY_API.update(study.id, 1),
      frameFor(study, 1, 1, task.modelHash, null),
    );
    expect(bare.status).toBe(400);
    expect(JSON.stringify(a.json(bare.bytes))).toContain('must report its privacy spend');

    // Attempt 1: only A reports (honestly); B stays silent, so the round misses its minimum and is retried.
    expect(
      (
        await a.binary(
          'POST',
          SILO_STUDY_API.update(study.id, 1),
          frameFor(study, 1, 1, task.modelHash, privacySpendOf(m, 1)),
        )
      ).status,
    ).toBe(200);
    const retry = await waitFor(async () => {
      const t = ((await a.call('GET', `${SILO_STUDY_API.tasks}?wait=2`)).body as TasksResponse).tasks;
      return t.find((x) => x.attempt === 2);
    });
    // Attempt 2: A spends its second round; B forges a smaller spend than it really has.
    expect(
      (
        await a.binary(
          'POST',
          SILO_STUDY_API.update(study.id, 1),
          frameFor(study, 1, 2, retry.modelHash, privacySpendOf(m, 2)),
        )
      ).status,
    ).toBe(200);
    const forged = { ...privacySpendOf(m, 1), epsilonCumulative: 0.01 };
    expect(
      (await b.binary('POST', SILO_STUDY_API.update(study.id, 1), frameFor(study, 1, 2, retry.modelHash, forged)))
        .status,
    ).toBe(200);

    // A has now spent 2 rounds: a third would pass ε = 1, so round 2 never trains; the study evaluates and completes.
    const evaluation = await waitFor(async () => {
      const t = ((await a.call('GET', `${SILO_STUDY_API.tasks}?wait=2`)).body as TasksResponse).tasks;
      return t.find((x) => x.kind === 'evaluate');
    });
    expect(evaluation.round).toBe(2);
    for (const s of [a, b]) {
      await s.call('POST', SILO_STUDY_API.evaluation(study.id, 2), {
        round: 2,
        attempt: 1,
        planHash: study.planHash,
        modelHash: evaluation.modelHash,
        evaluation: EVAL,
      });
    }
    const done = await waitFor(async () => {
      const s = (await api(hub, 'GET', `/api/studies/${study.id}`, { headers: admin })).body as StudyView;
      return s.status === 'completed' ? s : undefined;
    });
    expect(done.endReason).toMatch(/privacy budget reached: another round would take 1 silo\(s\) to ε = .* > target 1/);

    const privacy = (await api(hub, 'GET', `/api/studies/${study.id}/privacy`, { headers: admin }))
      .body as StudyPrivacyView;
    expect(privacy.entries.map((e) => [e.siloId === a.id ? 'A' : 'B', e.round, e.attempt, e.agrees])).toEqual([
      ['A', 1, 1, true],
      ['A', 1, 2, true],
      ['B', 1, 2, false],
    ]);
    const budgetA = privacy.budgets.find((x) => x.siloId === a.id)!;
    expect(budgetA.roundsSpent).toBe(2);
    expect(budgetA.epsilon).toBeCloseTo(privacySpendOf(m, 2).epsilonCumulative, 12);
    expect(budgetA.epsilon).toBeLessThanOrEqual(1);
    expect(budgetA.nextRoundEpsilon).toBeGreaterThan(1);

    const list = (
      (await api(hub, 'GET', `/api/audit/events?studyId=${study.id}&action=privacy.`, { headers: admin })).body as {
        events: { action: string; subject?: { siloId?: string } }[];
      }
    ).events;
    expect(list.filter((e) => e.action === 'privacy.disagreement').map((e) => e.subject?.siloId)).toEqual([b.id]);
    expect(list.some((e) => e.action === 'privacy.budget.reached')).toBe(true);
  });
});
