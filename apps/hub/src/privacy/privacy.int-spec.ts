import {
  encodeUpdateFrame,
  float32Bytes,
  sha256Hex,
  SILO_STUDY_API,
  type EvaluationPayload,
  type PrivacySpend,
  type RoundView,
  type StudyPlan,
  type TasksResponse,
  type UpdateHeader,
} from '@tessera/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_RDP_ORDERS_DESCRIPTION,
  chargedEpsilon,
  privacyMechanismOf,
  privacySpendOf,
  type PrivacyMechanism,
} from '@tessera/dp';
import { BlobStore } from '../blobs/blob-store';
import type { StudyReportSummary } from '../reports/study-report';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyPrivacyView } from '../studies/studies.controller';
import type { StudyView } from '../studies/studies.service';
import { ADMIN, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';

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
  overrides: Partial<UpdateHeader> = {},
): Buffer {
  const delta = new Float32Array(14).fill(0.01);
  return encodeUpdateFrame(
    {
      studyId: study.id,
      round,
      attempt,
      planHash: study.planHash,
      baseModelHash: modelHash,
      numExamples: null,
      length: 14,
      payloadSha256: sha256Hex(float32Bytes(delta)),
      l2Norm: Math.sqrt(14 * 0.01 * 0.01),
      evaluation: null,
      privacy,
      ...overrides,
    },
    delta,
  );
}

/** A noisy evaluation release as an agent would send it under the plan (4 bins, the plan's noise). */
function noisyEvaluation(m: PrivacyMechanism, noiseStddev = m.evaluation!.noiseStddev): EvaluationPayload {
  return { kind: 'noisy-histogram', noiseStddev, negatives: [6, 3, 1, -1], positives: [0, 2, 4, 7] };
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

  async function startedStudy(plan: StudyPlan): Promise<StudyView> {
    const study = (await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } })).body as StudyView;
    await api(hub, 'POST', `/api/studies/${study.id}/submit`, { headers: admin });
    for (const s of [a, b])
      await s.call('POST', SILO_STUDY_API.decision(study.id), { planHash: study.planHash, decision: 'approve' });
    expect((await api(hub, 'POST', `/api/studies/${study.id}/start`, { headers: admin })).status).toBe(200);
    return study;
  }

  const ledgerOf = async (study: StudyView) =>
    (await api(hub, 'GET', `/api/studies/${study.id}/privacy`, { headers: admin })).body as StudyPrivacyView;
  const roundsOf = async (study: StudyView) =>
    (await api(hub, 'GET', `/api/studies/${study.id}/rounds`, { headers: admin })).body as RoundView[];

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

  it('refuses what the plan does not release, or less noise than it approved, storing nothing', async () => {
    const plan = dpPlan([a.id, b.id]);
    const study = await startedStudy(plan);
    const m = privacyMechanismOf(plan)!;
    const task = ((await a.call('GET', `${SILO_STUDY_API.tasks}?wait=5`)).body as TasksResponse).tasks[0]!;
    const honest = privacySpendOf(m, 1, 0);
    const blobs = hub.app.get(BlobStore);
    const cases: [string, Buffer, RegExp][] = [
      ['no privacy report', frameFor(study, 1, 1, task.modelHash, null), /must report its privacy spend/],
      [
        'a smaller noise multiplier',
        frameFor(study, 1, 1, task.modelHash, { ...honest, noiseMultiplier: m.noiseMultiplier * 0.9 }),
        /privacy\.noiseMultiplier: .* is below the plan's/,
      ],
      [
        'a larger clipping norm',
        frameFor(study, 1, 1, task.modelHash, { ...honest, clipNorm: 2 }),
        /privacy\.clipNorm: 2 is above the plan's 1/,
      ],
      [
        'another sampling rate',
        frameFor(study, 1, 1, task.modelHash, { ...honest, samplingRate: 0.2 }),
        /privacy\.samplingRate/,
      ],
      ['other steps', frameFor(study, 1, 1, task.modelHash, { ...honest, steps: 10 }), /privacy\.steps/],
      [
        "a record count the plan does not release ('none')",
        frameFor(study, 1, 1, task.modelHash, honest, { numExamples: 100 }),
        /numExamples: this plan does not release the training-record count/,
      ],
      [
        'a record count beyond MAX_NUM_EXAMPLES',
        frameFor(study, 1, 1, task.modelHash, honest, { numExamples: 2 ** 31 }),
        /numExamples/,
      ],
      [
        'a per-round evaluation the plan releases only for the final model',
        frameFor(study, 1, 1, task.modelHash, honest, { evaluation: noisyEvaluation(m) }),
        /evaluation: this plan releases no evaluation with the updates/,
      ],
    ];
    for (const [what, frame, reason] of cases) {
      const res = await a.binary('POST', SILO_STUDY_API.update(study.id, 1), frame);
      expect(res.status, what).toBe(400);
      expect(JSON.stringify(a.json(res.bytes)), what).toMatch(reason);
      expect(await blobs.has(sha256Hex(frame)), `${what}: no blob`).toBe(false);
    }
    const [round1] = await roundsOf(study);
    expect(round1!.participants.map((p) => p.status)).toEqual(['waiting', 'waiting']);
    const ledger = await ledgerOf(study);
    expect(ledger.entries.every((e) => e.reported === null && e.agrees === null)).toBe(true);
    const refused = (
      (await api(hub, 'GET', `/api/audit/events?studyId=${study.id}&action=round.update.refused`, { headers: admin }))
        .body as { events: { details: { reason: string } }[] }
    ).events;
    expect(refused).toHaveLength(cases.length);
    expect(refused.some((e) => /noiseMultiplier/.test(e.details.reason))).toBe(true);
    await api(hub, 'POST', `/api/studies/${study.id}/stop`, { headers: admin, json: { reason: 'refusals only' } });
  });

  it('charges on issue, counts silent silos and retrained rounds, and opens no round past the plan', async () => {
    const plan = dpPlan([a.id, b.id]);
    const study = await startedStudy(plan);
    const m = privacyMechanismOf(plan)!;
    expect(m.evaluation).not.toBeNull(); // the demo plan releases a noisy evaluation of the final model

    // Round 1 was issued: both silos are charged one training round before any upload.
    const issued = await ledgerOf(study);
    expect(issued.entries.map((e) => [e.siloId === a.id ? 'A' : 'B', e.round, e.kind, e.agrees]).sort()).toEqual([
      ['A', 1, 'train', null],
      ['B', 1, 'train', null],
    ]);
    expect(issued.budgets.map((x) => x.trainingRounds)).toEqual([1, 1]);
    expect(issued.budgets[0]!.epsilon).toBeCloseTo(privacySpendOf(m, 1, 0).epsilonCumulative, 12);

    // Attempt 1: only A reports; B stays silent, so the round misses its minimum and is retried.
    const task = ((await a.call('GET', `${SILO_STUDY_API.tasks}?wait=5`)).body as TasksResponse).tasks[0]!;
    const frameA = frameFor(study, 1, 1, task.modelHash, privacySpendOf(m, 1, 0));
    expect((await a.binary('POST', SILO_STUDY_API.update(study.id, 1), frameA)).status).toBe(200);
    const retry = await waitFor(async () => {
      const t = ((await a.call('GET', `${SILO_STUDY_API.tasks}?wait=2`)).body as TasksResponse).tasks;
      return t.find((x) => x.attempt === 2);
    });
    // The retry charged nobody again; B, whose update never arrived, still counts its round.
    const afterRetry = await ledgerOf(study);
    expect(afterRetry.entries).toHaveLength(2);
    expect(afterRetry.budgets.find((x) => x.siloId === b.id)).toMatchObject({
      trainingRounds: 1,
      reportedTrainingRounds: null,
    });

    // Attempt 2: A re-sends its attempt-1 release (same bytes, no new spend); B retrained and says it spent twice.
    expect((await a.binary('POST', SILO_STUDY_API.update(study.id, 1), frameA)).status).toBe(200);
    const bFrame = frameFor(study, 1, 2, retry.modelHash, privacySpendOf(m, 2, 0));
    expect((await b.binary('POST', SILO_STUDY_API.update(study.id, 1), bFrame)).status).toBe(200);

    // B's figure is now 2 of the plan's 2 rounds: round 2 never trains; the study evaluates and completes.
    const evaluation = await waitFor(async () => {
      const t = ((await a.call('GET', `${SILO_STUDY_API.tasks}?wait=2`)).body as TasksResponse).tasks;
      return t.find((x) => x.kind === 'evaluate');
    });
    expect(evaluation.round).toBe(2);
    // A training release for round 2 (an agent re-sending one it made) is refused for good: round 2 only evaluates.
    const late = await a.binary(
      'POST',
      SILO_STUDY_API.update(study.id, 2),
      frameFor(study, 2, 1, evaluation.modelHash, privacySpendOf(m, 2, 0)),
    );
    expect([late.status, (JSON.parse(late.bytes.toString('utf8')) as { error: string }).error]).toEqual([
      409,
      'ROUND_CLOSED',
    ]);
    const report = (privacy: PrivacySpend | null, payload: EvaluationPayload | null) => ({
      round: 2,
      attempt: evaluation.attempt,
      planHash: study.planHash,
      modelHash: evaluation.modelHash,
      evaluation: payload,
      privacy,
    });
    const evalSpendA = privacySpendOf(m, 1, 1, { trainingRounds: 0, evaluationReleases: 1 });
    const exact = { kind: 'exact', loss: 0.5, accuracy: 0.8, auc: 0.9, n: 30, positives: 12 } as const;
    for (const [what, body, reason] of [
      ['exact metrics under a noisy plan', report(evalSpendA, exact), /exact metrics are refused/],
      ['no evaluation', report(evalSpendA, null), /evaluation: this plan releases the evaluation/],
      ['less noise', report(evalSpendA, noisyEvaluation(m, m.evaluation!.noiseStddev / 2)), /noiseStddev/],
      [
        'the wrong number of bins',
        report(evalSpendA, {
          kind: 'noisy-histogram',
          noiseStddev: m.evaluation!.noiseStddev,
          negatives: [1, 2],
          positives: [3, 4],
        }),
        /scoreBins is 4/,
      ],
      ['no privacy report', report(null, noisyEvaluation(m)), /must report its privacy spend/],
    ] as const) {
      const res = await a.call('POST', SILO_STUDY_API.evaluation(study.id, 2), body);
      expect(res.status, what).toBe(400);
      expect(JSON.stringify(res.body), what).toMatch(reason);
    }
    expect(
      (await a.call('POST', SILO_STUDY_API.evaluation(study.id, 2), report(evalSpendA, noisyEvaluation(m)))).status,
    ).toBe(200);
    const evalSpendB = privacySpendOf(m, 2, 1, { trainingRounds: 0, evaluationReleases: 1 });
    expect(
      (await b.call('POST', SILO_STUDY_API.evaluation(study.id, 2), report(evalSpendB, noisyEvaluation(m)))).status,
    ).toBe(200);
    const done = await waitFor(async () => {
      const s = (await api(hub, 'GET', `/api/studies/${study.id}`, { headers: admin })).body as StudyView;
      return s.status === 'completed' ? s : undefined;
    });
    expect(done.endReason).toMatch(/privacy budget reached: training round 2 would break the approved plan for 1 silo/);

    // The hub shows what it derives from the noisy release, marked noisy, without a loss.
    const final = (await roundsOf(study)).find((r) => r.kind === 'evaluate')!;
    expect(final.participants[0]!.evaluation).toMatchObject({ noisy: true, loss: null, n: 23, positives: 13 });

    const privacy = await ledgerOf(study);
    const rows = privacy.entries.map((e) => [e.siloId === a.id ? 'A' : 'B', e.round, e.kind, e.agrees]);
    expect(rows.sort()).toEqual([
      ['A', 1, 'train', true],
      ['A', 2, 'evaluate', true],
      ['B', 1, 'train', false], // B reported 2 rounds where the hub had charged 1
      ['B', 2, 'evaluate', true], // charged from B's own figure of 2 rounds
    ]);
    const budgetB = privacy.budgets.find((x) => x.siloId === b.id)!;
    expect(budgetB).toMatchObject({
      trainingRounds: 2,
      chargedTrainingRounds: 1,
      reportedTrainingRounds: 2,
      evaluationReleases: 1,
      disagreements: 1,
    });
    expect(budgetB.epsilon).toBeCloseTo(chargedEpsilon(m, 2, 1), 12);
    expect(budgetB.epsilon).toBeLessThanOrEqual(1);

    const list = (
      (await api(hub, 'GET', `/api/audit/events?studyId=${study.id}&action=privacy.`, { headers: admin })).body as {
        events: { action: string; subject?: { siloId?: string } }[];
      }
    ).events;
    expect(list.filter((e) => e.action === 'privacy.disagreement').map((e) => e.subject?.siloId)).toEqual([b.id]);
    expect(list.filter((e) => e.action === 'privacy.charged')).toHaveLength(4);
    expect(list.some((e) => e.action === 'privacy.budget.reached')).toBe(true);

    // The compliance report puts the hub's own ε beside each silo's, and lists what left without DP: nothing.
    const bundle = (await api(hub, 'GET', `/api/studies/${study.id}/report.json`, { headers: admin })).body as {
      study: StudyReportSummary;
    };
    const summary = bundle.study;
    expect(summary.releases.statement).toBe('Released without differential privacy: nothing');
    if (summary.privacy.mode === 'none') throw new Error('a DP study reported without DP');
    expect(summary.privacy.accounting).toMatchObject({
      orders: DEFAULT_RDP_ORDERS_DESCRIPTION,
      stepsPerRound: 50,
      plannedSteps: 100,
      evaluation: { noiseStddev: m.evaluation!.noiseStddev, releases: 1 },
    });
    const lineB = summary.privacy.perSilo.find((p) => p.siloId === b.id)!;
    expect(lineB).toMatchObject({ trainingRounds: 2, steps: 100, evaluationReleases: 1, disagreements: 1 });
    expect(lineB.hubEpsilon).toBeCloseTo(chargedEpsilon(m, 2, 1), 12);
    expect(lineB.reportedEpsilon).toBeCloseTo(evalSpendB.epsilonCumulative, 12);
  });
});
