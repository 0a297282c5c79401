import type { SecureAggregationPlan } from '@tessera/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import { ADMIN, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';

const SECAGG: SecureAggregationPlan = { threshold: 3, modulusBits: 32, clipNorm: 1 };
const NO_RELEASE = { evaluation: { mode: 'none' }, trainingExamples: 'none' } as const;

/**
 * The plan's secureAggregation block at study creation (issue 16): problems with the rest of the plan are refused
 * with 400 PLAN_INVALID naming each field; a plan the protocol can run is created.
 */
describe('study creation with secureAggregation (embedded database)', () => {
  let hub: TestHub;
  let admin: Record<string, string>;
  let siloIds: string[];

  beforeAll(async () => {
    hub = await startTestHub('embedded');
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    siloIds = [];
    for (const name of ['North', 'South', 'East', 'West']) {
      siloIds.push((await TestSilo.enroll(hub, admin, `${name} secagg plan`)).id);
    }
  });
  afterAll(() => hub?.dispose());

  it('refuses with 400 a plan that screens and weights by record counts, naming both fields', async () => {
    const plan = heartDiseasePlan(siloIds, {
      participation: { minSilosPerRound: 4, roundDeadlineSeconds: 60, maxRoundRetries: 1, onSiloFailure: 'continue' },
      release: { evaluation: { mode: 'none' }, trainingExamples: 'exact' },
      screening: { threshold: 3.5, exclude: false },
      secureAggregation: SECAGG,
    });
    const res = await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({
      error: 'PLAN_INVALID',
      details: [
        expect.stringMatching(/^screening: screening reads every individual update/),
        expect.stringMatching(/^release\.trainingExamples: a secure sum is unweighted/),
      ],
    });
  });

  it('refuses with 400 distributed noise without secure aggregation and with another clip norm; stores no study', async () => {
    const before = (await api(hub, 'GET', '/api/studies', { headers: admin })).body as unknown[];
    const privacy = {
      mode: 'dp-fedavg',
      unit: 'silo',
      targetEpsilon: 4,
      delta: 1e-5,
      clipNorm: 1,
      noiseMultiplier: 'derive',
      noise: 'distributed',
    } as const;
    const participation = {
      minSilosPerRound: 4,
      roundDeadlineSeconds: 60,
      maxRoundRetries: 1,
      onSiloFailure: 'continue',
    } as const;
    const alone = heartDiseasePlan(siloIds, { privacy, participation, release: NO_RELEASE });
    const refused = await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan: alone } });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({
      error: 'PLAN_INVALID',
      details: [expect.stringMatching(/^privacy\.noise: distributed noise needs secureAggregation/)],
    });
    const otherClip = heartDiseasePlan(siloIds, {
      privacy,
      participation,
      release: NO_RELEASE,
      secureAggregation: { ...SECAGG, clipNorm: 2 },
    });
    const refusedClip = await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan: otherClip } });
    expect(refusedClip.status).toBe(400);
    expect(refusedClip.body).toMatchObject({
      details: [expect.stringMatching(/^privacy\.clipNorm: with distributed noise each silo clips its update once/)],
    });
    const accepted = heartDiseasePlan(siloIds, {
      privacy,
      participation,
      release: NO_RELEASE,
      secureAggregation: SECAGG,
    });
    const created = await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan: accepted } });
    expect(created.status).toBe(201);
    expect((created.body as { plan: { privacy: unknown } }).plan.privacy).toEqual(privacy);
    // The two refusals stored nothing: the accepted plan is the only study added.
    expect((await api(hub, 'GET', '/api/studies', { headers: admin })).body).toHaveLength(before.length + 1);
  });

  it('creates a valid secure-aggregation plan, with the block in the plan its stewards approve', async () => {
    const plan = heartDiseasePlan(siloIds, {
      participation: { minSilosPerRound: 4, roundDeadlineSeconds: 60, maxRoundRetries: 1, onSiloFailure: 'continue' },
      release: NO_RELEASE,
      secureAggregation: SECAGG,
    });
    const res = await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } });
    expect(res.status).toBe(201);
    expect((res.body as { plan: { secureAggregation: unknown } }).plan.secureAggregation).toEqual(SECAGG);
  });
});
