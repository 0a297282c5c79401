import { HUB_API, SILO_STUDY_API, type SiloPrivacyView, type StudyPlan } from '@tessera/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyPrivacyView } from '../studies/studies.controller';
import type { StudyView } from '../studies/studies.service';
import { ADMIN, api, DATABASE_KINDS, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';

const AUDITOR = { username: 'auditor-priya', password: 'a long auditor passphrase', role: 'auditor' } as const;

function dpPlan(silos: string[], targetEpsilon: number, delta: number): StudyPlan {
  const plan = heartDiseasePlan(silos, {
    privacy: {
      mode: 'dp-sgd',
      unit: 'record',
      targetEpsilon,
      delta,
      clipNorm: 1,
      noiseMultiplier: 'derive',
      samplingRate: 0.1,
    },
    participation: { minSilosPerRound: 2, roundDeadlineSeconds: 30, maxRoundRetries: 1, onSiloFailure: 'continue' },
  });
  plan.training.rounds = 3;
  return plan;
}

describe.each(DATABASE_KINDS)('GET /api/silos/:id/privacy: one silo across studies (%s database)', (kind) => {
  let hub: TestHub;
  let admin: Record<string, string>;
  let auditor: Record<string, string>;
  let a: TestSilo;
  let b: TestSilo;
  let c: TestSilo;
  const started: StudyView[] = [];
  let noDp: StudyView;
  let draft: StudyView;

  async function create(plan: StudyPlan): Promise<StudyView> {
    const res = await api(hub, 'POST', HUB_API.studies, { headers: admin, json: { plan } });
    expect(res.status).toBe(201);
    return res.body as StudyView;
  }

  async function start(plan: StudyPlan): Promise<StudyView> {
    const study = await create(plan);
    await api(hub, 'POST', HUB_API.studySubmit(study.id), { headers: admin });
    for (const s of [a, b])
      await s.call('POST', SILO_STUDY_API.decision(study.id), { planHash: study.planHash, decision: 'approve' });
    expect((await api(hub, 'POST', HUB_API.studyStart(study.id), { headers: admin })).status).toBe(200);
    return study;
  }

  const pageOf = async (silo: TestSilo, headers = admin) => {
    const res = await api(hub, 'GET', HUB_API.siloPrivacy(silo.id), { headers });
    expect(res.status).toBe(200);
    return res.body as SiloPrivacyView;
  };

  beforeAll(async () => {
    hub = await startTestHub(kind);
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    expect((await api(hub, 'POST', HUB_API.users, { headers: admin, json: AUDITOR })).status).toBe(201);
    auditor = await signIn(hub, AUDITOR.username, AUDITOR.password);
    a = await TestSilo.enroll(hub, admin, 'Spend A');
    b = await TestSilo.enroll(hub, admin, 'Spend B');
    c = await TestSilo.enroll(hub, admin, 'Spend C');
    // Starting a study opens its first round, which charges every participant when the task is issued.
    started.push(await start(dpPlan([a.id, b.id], 1, 1e-5)));
    started.push(await start(dpPlan([a.id, b.id], 2, 1e-6)));
    noDp = await start(heartDiseasePlan([a.id, b.id]));
    draft = await create(dpPlan([a.id, c.id], 4, 1e-5));
  });
  afterAll(async () => {
    await hub?.dispose();
  });

  it("lists each study with the ledger's figure for the silo, its target, δ and unit", async () => {
    const page = await pageOf(a);
    expect(page.siloName).toBe('Spend A');
    expect(page.studies.map((s) => s.studyId)).toEqual([...started.map((s) => s.id), noDp.id]);
    for (const study of started) {
      const ledger = (await api(hub, 'GET', `/api/studies/${study.id}/privacy`, { headers: admin }))
        .body as StudyPrivacyView;
      const budget = ledger.budgets.find((x) => x.siloId === a.id)!;
      const line = page.studies.find((s) => s.studyId === study.id)!;
      expect(budget.trainingRounds).toBe(1);
      expect(line).toMatchObject({
        studyName: study.name,
        mode: 'dp-sgd',
        unit: 'record',
        participant: true,
        epsilon: budget.epsilon,
        targetEpsilon: study.plan.privacy.mode === 'dp-sgd' ? study.plan.privacy.targetEpsilon : null,
        delta: budget.delta,
        trainingRounds: 1,
        disagreements: 0,
      });
      expect(line.epsilon).toBeGreaterThan(0);
      expect(line.plannedEpsilon).toBeGreaterThan(line.epsilon!);
      expect(line.plannedEpsilon).toBeLessThanOrEqual(line.targetEpsilon!);
    }
    const plain = page.studies.find((s) => s.studyId === noDp.id)!;
    expect(plain).toMatchObject({ mode: 'none', unit: null, epsilon: null, targetEpsilon: null, participant: true });
  });

  it('totals the DP studies by basic composition (Σε at Σδ) and counts the studies without DP apart', async () => {
    const page = await pageOf(a);
    const dp = page.studies.filter((s) => s.mode !== 'none');
    expect(page.total.composition).toBe('basic');
    expect(page.total.studies).toBe(2);
    expect(page.total.withoutPrivacy).toBe(1);
    expect(page.total.epsilon).toBeCloseTo(dp[0]!.epsilon! + dp[1]!.epsilon!, 12);
    expect(page.total.delta).toBeCloseTo(1e-5 + 1e-6, 18);
    // The hub is not told the agent's own cap.
    expect(page.cap).toBeNull();
  });

  it('leaves out drafts and studies the silo is not in', async () => {
    const page = await pageOf(c);
    expect(page.studies.map((s) => s.studyId)).not.toContain(draft.id);
    expect(page.studies).toEqual([]);
    expect(page.total).toMatchObject({ epsilon: 0, delta: 0, studies: 0, withoutPrivacy: 0 });
  });

  it('is readable by auditors, answers 404 for an unknown silo and 400 for a malformed id', async () => {
    expect((await pageOf(a, auditor)).total).toEqual((await pageOf(a)).total);
    const unknown = await api(hub, 'GET', HUB_API.siloPrivacy('00000000-0000-4000-8000-000000000000'), {
      headers: admin,
    });
    expect(unknown.status).toBe(404);
    expect((await api(hub, 'GET', HUB_API.siloPrivacy('not-a-uuid'), { headers: admin })).status).toBe(400);
    expect((await api(hub, 'GET', HUB_API.siloPrivacy(a.id))).status).toBe(401);
  });

  it('is not served to silos on their listener', async () => {
    const res = await a.call('GET', HUB_API.siloPrivacy(a.id));
    expect(res.status).not.toBe(200);
  });
});
