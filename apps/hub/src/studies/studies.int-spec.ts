import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  encodeUpdateFrame,
  float32Bytes,
  planHash,
  sha256Hex,
  SILO_STUDY_API,
  type SiloStudy,
  type TasksResponse,
  type UpdateHeader,
  type UpdateReceipt,
} from '@tessera/protocol';
import { verifyReceipt } from '@tessera/audit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RoundView } from '../rounds/rounds-query.service';
import { ADMIN, DATABASE_KINDS, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';
import { heartDiseasePlan } from './heart-disease-plan';
import type { StudyView } from './studies.service';

// The demo plan without DP releases exact metrics every round and the record counts (listed as released without DP).
const EVAL = { kind: 'exact', loss: 0.6, accuracy: 0.7, auc: 0.75, n: 20, positives: 9 } as const;

function l2(v: Float32Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

function frame(
  header: Partial<UpdateHeader> & Pick<UpdateHeader, 'studyId' | 'round' | 'planHash' | 'baseModelHash'>,
  delta: Float32Array,
): Buffer {
  return encodeUpdateFrame(
    {
      attempt: 1,
      numExamples: 100,
      length: delta.length,
      payloadSha256: sha256Hex(float32Bytes(delta)),
      l2Norm: l2(delta),
      evaluation: EVAL,
      privacy: null,
      ...header,
    },
    delta,
  );
}

function countBlobs(dataDir: string): number {
  const root = join(dataDir, 'blobs');
  return (
    readdirSync(root)
      .filter((d) => d !== 'tmp')
      .reduce((n, d) => n + readdirSync(join(root, d)).length, 0) + readdirSync(join(root, 'tmp')).length
  );
}

describe.each(DATABASE_KINDS)('studies and rounds on the %s database', (kind) => {
  let hub: TestHub;
  let admin: Record<string, string>;
  let silos: TestSilo[];

  beforeAll(async () => {
    hub = await startTestHub(kind);
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    silos = [];
    for (const name of ['North', 'South', 'East']) silos.push(await TestSilo.enroll(hub, admin, `${name} ${kind}`));
  });
  afterAll(async () => {
    await hub?.dispose();
  });

  it('reports every problem of an invalid plan at once, storing nothing', async () => {
    const plan = heartDiseasePlan(silos.map((s) => s.id));
    const bad = {
      ...plan,
      name: 'x',
      training: { ...plan.training, rounds: 0, learningRate: -1 },
      participation: { ...plan.participation, minSilosPerRound: 9 },
      silos: [...plan.silos, '00000000-0000-4000-8000-000000000000'],
    };
    const res = await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan: bad } });
    expect(res.status).toBe(400);
    const details = (res.body as { details: string[] }).details;
    expect(details.some((d) => d.startsWith('name'))).toBe(true);
    expect(details.some((d) => d.startsWith('training.rounds'))).toBe(true);
    expect(details.some((d) => d.startsWith('training.learningRate'))).toBe(true);
    const unknownSilo = await api(hub, 'POST', '/api/studies', {
      headers: admin,
      json: { plan: { ...plan, silos: [...plan.silos, '00000000-0000-4000-8000-000000000000'] } },
    });
    expect(unknownSilo.status).toBe(400);
    expect(JSON.stringify(unknownSilo.body)).toContain('no silo with id 00000000-0000-4000-8000-000000000000');
    const list = await api(hub, 'GET', '/api/studies', { headers: admin });
    expect(list.body).toEqual([]);
  });

  it('runs a study: consent to the exact plan, durable rounds, every refused upload, FedAdam, final evaluation', async () => {
    const plan = heartDiseasePlan(
      silos.map((s) => s.id),
      {
        participation: { minSilosPerRound: 2, roundDeadlineSeconds: 30, maxRoundRetries: 0, onSiloFailure: 'continue' },
      },
    );
    plan.training.rounds = 2;
    const created = await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } });
    expect(created.status).toBe(201);
    const study = created.body as StudyView;
    expect(study).toMatchObject({ status: 'draft', planVersion: 1, planHash: planHash(study.id, 1, plan) });

    // Drafts are invisible to silos; submitted studies show the exact plan.
    expect((await silos[0]!.call('GET', SILO_STUDY_API.studies)).body).toEqual([]);
    expect((await api(hub, 'POST', `/api/studies/${study.id}/submit`, { headers: admin })).status).toBe(200);
    const seen = (await silos[0]!.call('GET', SILO_STUDY_API.studies)).body as SiloStudy[];
    expect(seen).toHaveLength(1);
    expect(planHash(study.id, seen[0]!.planVersion, seen[0]!.plan)).toBe(seen[0]!.planHash);

    // Silo 0 approves version 1; then the plan changes: that approval no longer counts.
    const v1 = seen[0]!.planHash;
    expect(
      (await silos[0]!.call('POST', SILO_STUDY_API.decision(study.id), { planHash: v1, decision: 'approve' })).status,
    ).toBe(200);
    const changed = { ...plan, purpose: plan.purpose + ' Version two.' };
    const v2view = (await api(hub, 'PUT', `/api/studies/${study.id}/plan`, { headers: admin, json: { plan: changed } }))
      .body as StudyView;
    expect(v2view.planVersion).toBe(2);
    expect(v2view.decisions.every((d) => d.decision === null)).toBe(true);
    const stale = await silos[0]!.call('POST', SILO_STUDY_API.decision(study.id), {
      planHash: v1,
      decision: 'approve',
    });
    expect(stale).toMatchObject({ status: 409, body: { error: 'STALE_PLAN' } });
    const startTooEarly = await api(hub, 'POST', `/api/studies/${study.id}/start`, { headers: admin });
    expect(startTooEarly.status).toBe(409);
    expect(JSON.stringify(startTooEarly.body)).toContain('Only 0 of 3 invited silos approved');
    for (const s of silos) {
      const r = await s.call('POST', SILO_STUDY_API.decision(study.id), {
        planHash: v2view.planHash,
        decision: 'approve',
      });
      expect(r.status).toBe(200);
    }
    const started = await api(hub, 'POST', `/api/studies/${study.id}/start`, { headers: admin });
    expect(started).toMatchObject({ status: 200, body: { status: 'running' } });

    // Round 1: every silo gets a task, and the published model.
    const tasks = (await silos[0]!.call('GET', `${SILO_STUDY_API.tasks}?wait=5`)).body as TasksResponse;
    expect(tasks.tasks).toHaveLength(1);
    const task = tasks.tasks[0]!;
    expect(task).toMatchObject({ studyId: study.id, round: 1, attempt: 1, kind: 'train', planHash: v2view.planHash });
    const model = await silos[0]!.binary('GET', SILO_STUDY_API.blob(task.modelHash));
    expect(model.status).toBe(200);
    expect(sha256Hex(model.bytes)).toBe(task.modelHash);
    const length = model.bytes.length / 4;
    expect(length).toBe(14); // 13 features + bias

    const base = { studyId: study.id, round: 1, planHash: task.planHash, baseModelHash: task.modelHash };
    const delta = new Float32Array(length).map((_, i) => (i % 3) * 0.01 - 0.01);
    const blobsBefore = countBlobs(hub.dataDir);
    const refusals: [string, Buffer | Uint8Array, number, string, string?][] = [
      ['garbage', Buffer.from('not a frame at all'), 400, 'UPDATE_MALFORMED'],
      ['wrong round in header', frame({ ...base, round: 2 }, delta), 409, 'WRONG_ROUND'],
      ['wrong model version', frame({ ...base, baseModelHash: 'ab'.repeat(32) }, delta), 409, 'WRONG_MODEL'],
      ['stale plan', frame({ ...base, planHash: v1 }, delta), 409, 'STALE_PLAN'],
      ['wrong length', frame(base, new Float32Array(length + 1)), 400, 'UPDATE_MALFORMED'],
      [
        'not finite',
        frame(
          base,
          Float32Array.from(delta, (v, i) => (i === 3 ? Number.NaN : v)),
        ),
        400,
        'UPDATE_MALFORMED',
      ],
      ['declared norm wrong', frame({ ...base, l2Norm: 123 }, delta), 400, 'UPDATE_MALFORMED'],
      ['payload hash wrong', frame({ ...base, payloadSha256: 'cd'.repeat(32) }, delta), 400, 'UPDATE_MALFORMED'],
      ['truncated', frame(base, delta).subarray(0, 100), 400, 'UPDATE_MALFORMED'],
      ['json instead of binary', Buffer.from(JSON.stringify([...delta])), 400, 'UPDATE_MALFORMED', 'application/json'],
      [
        'record count missing (plan releases it)',
        frame({ ...base, numExamples: null }, delta),
        400,
        'UPDATE_MALFORMED',
      ],
      ['record count 2^31', frame({ ...base, numExamples: 2 ** 31 }, delta), 400, 'UPDATE_MALFORMED'],
      ['record count 2^31 − 1', frame({ ...base, numExamples: 2 ** 31 - 1 }, delta), 400, 'UPDATE_MALFORMED'],
      [
        'noisy evaluation under an exact plan',
        frame(
          { ...base, evaluation: { kind: 'noisy-histogram', noiseStddev: 1, negatives: [1, 2], positives: [3, 4] } },
          delta,
        ),
        400,
        'UPDATE_MALFORMED',
      ],
      [
        'privacy report without DP',
        frame(
          {
            ...base,
            privacy: {
              mechanism: 'dp-sgd',
              unit: 'record',
              noiseMultiplier: 1,
              clipNorm: 1,
              samplingRate: 0.1,
              steps: 10,
              delta: 1e-5,
              trainingRounds: 1,
              evaluationReleases: 0,
              epsilonRound: 1,
              epsilonCumulative: 1,
              accountant: 'rdp-sampled-gaussian',
            },
          },
          delta,
        ),
        400,
        'UPDATE_MALFORMED',
      ],
    ];
    for (const [what, body, status, error, type] of refusals) {
      const res = await silos[0]!.binary('POST', SILO_STUDY_API.update(study.id, 1), body, type);
      expect({ what, status: res.status, error: (silos[0]!.json(res.bytes) as { error: string }).error }).toEqual({
        what,
        status,
        error,
      });
      // A refused field is named in the answer.
      if (what.startsWith('record count')) expect(res.bytes.toString('utf8'), what).toContain('numExamples');
    }
    const wrongUrl = await silos[0]!.binary(
      'POST',
      SILO_STUDY_API.update(study.id, 2),
      frame({ ...base, round: 2 }, delta),
    );
    expect(wrongUrl.status).toBe(409);
    expect(countBlobs(hub.dataDir)).toBe(blobsBefore); // nothing stored by any refusal
    let rounds = (await api(hub, 'GET', `/api/studies/${study.id}/rounds`, { headers: admin })).body as RoundView[];
    expect(rounds[0]!.participants.every((p) => p.status === 'waiting')).toBe(true);

    // Accepted, then idempotent; a different second upload is refused.
    const good = frame(base, delta);
    const first = await silos[0]!.binary('POST', SILO_STUDY_API.update(study.id, 1), good);
    expect(first.status).toBe(200);
    const again = await silos[0]!.binary('POST', SILO_STUDY_API.update(study.id, 1), good);
    expect(again.status).toBe(200);
    expect(silos[0]!.json(again.bytes)).toEqual(silos[0]!.json(first.bytes));
    // The receipt is signed by the hub's audit key over exactly what was accepted.
    const receipt = silos[0]!.json(first.bytes) as UpdateReceipt;
    const { publicKeyPem } = (await api(hub, 'GET', '/api/audit/public-key', { headers: admin })).body as {
      publicKeyPem: string;
    };
    expect(verifyReceipt(receipt.signature, publicKeyPem)).toMatchObject({ ok: true });
    const { signature: _s, ...payload } = receipt;
    expect((receipt.signature as { payload: unknown }).payload).toEqual(payload);
    const other = await silos[0]!.binary(
      'POST',
      SILO_STUDY_API.update(study.id, 1),
      frame(
        base,
        delta.map((v) => v * 2),
      ),
    );
    expect(other.status).toBe(409);
    expect((silos[0]!.json(other.bytes) as { error: string }).error).toBe('DUPLICATE_UPDATE');

    // The others report; the round closes at once (all reported) and round 2 opens on the new model.
    for (const s of silos.slice(1)) {
      expect((await s.binary('POST', SILO_STUDY_API.update(study.id, 1), frame(base, delta))).status).toBe(200);
    }
    const round2 = await waitFor(async () => {
      const t = ((await silos[1]!.call('GET', `${SILO_STUDY_API.tasks}?wait=2`)).body as TasksResponse).tasks;
      return t.find((x) => x.round === 2);
    });
    expect(round2.modelHash).not.toBe(task.modelHash);
    // After the close, a re-send of the accepted update gets its receipt again; any other update is refused.
    const resent = await silos[2]!.binary('POST', SILO_STUDY_API.update(study.id, 1), frame(base, delta));
    expect(resent.status).toBe(200);
    const late = await silos[2]!.binary(
      'POST',
      SILO_STUDY_API.update(study.id, 1),
      frame({ ...base, numExamples: 99 }, delta),
    );
    expect(late.status).toBe(409);
    expect((silos[2]!.json(late.bytes) as { error: string }).error).toBe('DUPLICATE_UPDATE');

    // The new global model is the FedAdam step from the mean delta (all silos sent the same delta).
    const next = await silos[0]!.binary('GET', SILO_STUDY_API.blob(round2.modelHash));
    const before = new Float32Array(new Uint8Array(model.bytes).buffer);
    const after = new Float32Array(new Uint8Array(next.bytes).buffer);
    // Reddi et al. Algorithm 2, first step: m = 0.1Δ, v = 0.99τ² + 0.01Δ², x += η m / (√v + τ).
    for (let i = 0; i < length; i++) {
      const d = delta[i]!;
      const m = 0.1 * d;
      const v = 0.99 * 1e-6 + 0.01 * d * d;
      expect(after[i]!).toBeCloseTo(before[i]! + (0.1 * m) / (Math.sqrt(v) + 1e-3), 5);
    }

    // Round 2, then the final evaluation round, then completion.
    const base2 = { studyId: study.id, round: 2, planHash: task.planHash, baseModelHash: round2.modelHash };
    for (const s of silos)
      expect((await s.binary('POST', SILO_STUDY_API.update(study.id, 2), frame(base2, delta))).status).toBe(200);
    const evalTask = await waitFor(async () => {
      const t = ((await silos[0]!.call('GET', `${SILO_STUDY_API.tasks}?wait=2`)).body as TasksResponse).tasks;
      return t.find((x) => x.kind === 'evaluate');
    });
    expect(evalTask.round).toBe(3);
    for (const s of silos) {
      const r = await s.call('POST', SILO_STUDY_API.evaluation(study.id, 3), {
        round: 3,
        attempt: 1,
        planHash: task.planHash,
        modelHash: evalTask.modelHash,
        evaluation: EVAL,
        privacy: null,
      });
      expect(r.status).toBe(200);
    }
    const done = await waitFor(async () => {
      const s = (await api(hub, 'GET', `/api/studies/${study.id}`, { headers: admin })).body as StudyView;
      return s.status === 'completed' ? s : undefined;
    });
    expect(done.currentModelHash).toBe(evalTask.modelHash);
    rounds = (await api(hub, 'GET', `/api/studies/${study.id}/rounds`, { headers: admin })).body as RoundView[];
    expect(rounds.map((r) => [r.number, r.kind, r.status])).toEqual([
      [1, 'train', 'closed'],
      [2, 'train', 'closed'],
      [3, 'evaluate', 'closed'],
    ]);
    expect(rounds[2]!.summary?.evaluation.accuracy.unweighted).toBeCloseTo(0.7, 10);
    // Record counts are released by this plan (release.trainingExamples 'exact'): the summary adds them up.
    expect(rounds.map((r) => r.summary?.totalExamples)).toEqual([300, 300, null]);
    expect(rounds[0]!.participants.map((p) => p.evaluation)).toEqual([
      { loss: 0.6, accuracy: 0.7, auc: 0.75, n: 20, positives: 9 },
      { loss: 0.6, accuracy: 0.7, auc: 0.75, n: 20, positives: 9 },
      { loss: 0.6, accuracy: 0.7, auc: 0.75, n: 20, positives: 9 },
    ]);
    const stopDone = await api(hub, 'POST', `/api/studies/${study.id}/stop`, {
      headers: admin,
      json: { reason: 'too late now' },
    });
    expect(stopDone.status).toBe(409);
  });
});

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 200));
  }
}
