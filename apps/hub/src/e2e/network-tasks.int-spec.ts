import { join } from 'node:path';
import { encodedFeatureCount, HEART_DISEASE_SCHEMA, mlpNetwork, type StudyPlan } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import type { RoundView } from '../rounds/rounds-query.service';
import type { EnrollmentIssued } from '../silos/silos.service';
import type { StudyPrivacyView } from '../studies/studies.controller';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyView } from '../studies/studies.service';
import { runAgent, startAgentRun } from '../testing/agent-process.test-util';
import {
  heartFile,
  HubApiClient,
  hubEnv,
  processTestBed,
  startHubProcess,
  until,
  type ProcessTestBed,
} from '../testing/hub-process.test-util';
import { createServerDatabase } from '../testing/test-hub.test-util';

/**
 * Declarative networks on real data across processes (issue 17): the UCI heart-disease files as a five-class task
 * (`num` 0–4, softmax) and as a regression of the maximum heart rate (`thalach` from the other columns, DP-SGD),
 * through a hub and three hospital agents over mutual TLS, on both databases. Each silo measures its task's metrics
 * on its held-out split; the hub stores and summarises them.
 */

const HOSPITALS = ['processed.cleveland.data', 'processed.hungarian.data', 'processed.va.data'];

async function runStudy(
  bed: ProcessTestBed,
  databaseUrl: string | undefined,
  plan: (silos: string[]) => StudyPlan,
  /** A broken variant of the plan and the problem the hub must answer it with (400 PLAN_INVALID). */
  refused?: { plan: (valid: StudyPlan) => StudyPlan; problem: string },
) {
  const root = bed.root;
  const hub = (bed.hub = await startHubProcess(
    hubEnv(join(root, 'hub'), {
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
      TESSERA_ADMIN_USERNAME: 'admin',
      TESSERA_ADMIN_PASSWORD: 'e2e admin password',
    }),
  ));
  const api = new HubApiClient(hub.url, 'admin', 'e2e admin password');
  await api.signIn();
  const silos: { id: string; env: Record<string, string> }[] = [];
  for (const [i, file] of HOSPITALS.entries()) {
    const issued = await api.call<EnrollmentIssued>('POST', '/api/silos', {
      name: `Hospital ${i}`,
      contact: 'it@example.org',
    });
    const env = { TESSERA_STATE_DIR: join(root, `silo-${i}`), TESSERA_DATA_FILE: heartFile(file) };
    expect((await runAgent(['enroll', '--bundle', issued.bundleText], env)).code).toBe(0);
    silos.push({ id: issued.silo.id, env });
  }
  const valid = plan(silos.map((s) => s.id));
  if (refused) {
    const answer = await api.call('POST', '/api/studies', { plan: refused.plan(valid) }).catch((e: Error) => e.message);
    expect(answer).toMatch(/^POST \/api\/studies: 400 /);
    expect(answer).toContain(refused.problem);
  }
  const study = await api.call<StudyView>('POST', '/api/studies', { plan: valid });
  await api.call('POST', `/api/studies/${study.id}/submit`);
  for (const s of silos) {
    expect((await runAgent(['studies', 'approve', study.id, '--plan-hash', study.planHash], s.env)).code).toBe(0);
  }
  const runs = silos.map((s) => startAgentRun(study.id, s.env));
  bed.agents.push(...runs.map((r) => r.child));
  await api.call('POST', `/api/studies/${study.id}/start`);
  await until(
    'the study to end',
    async () => ['completed', 'failed'].includes((await api.call<StudyView>('GET', `/api/studies/${study.id}`)).status),
    180_000,
  );
  const final = await api.call<StudyView>('GET', `/api/studies/${study.id}`);
  expect(final.status, runs.map((r) => r.output()).join('\n---\n')).toBe('completed');
  expect(await Promise.all(runs.map((r) => r.exited))).toEqual([0, 0, 0]);
  const rounds = await api.call<RoundView[]>('GET', `/api/studies/${study.id}/rounds`);
  const evaluation = rounds.find((r) => r.kind === 'evaluate' && r.status === 'closed')!;
  return { api, study, rounds, evaluation };
}

describe('a five-class heart-disease network across processes (server database)', () => {
  const bed = processTestBed('tessera-e2e-multiclass-');

  it('trains a softmax MLP on num 0–4 and reports each silo’s multiclass metrics and confusion matrix', async () => {
    const db = await createServerDatabase();
    bed.cleanups.push(db.drop);
    const { rounds, evaluation } = await runStudy(
      bed,
      db.url,
      (silos) => {
        const plan = heartDiseasePlan(silos, {
          model: {
            kind: 'network',
            network: mlpNetwork({
              features: encodedFeatureCount(HEART_DISEASE_SCHEMA),
              hiddenLayers: [16],
              activation: 'relu',
              task: { kind: 'multiclass', classes: 5 },
            }),
          },
          release: { evaluation: { mode: 'exact', rounds: 'every' }, trainingExamples: 'exact' },
        });
        plan.schema.label = { column: 'num', operator: 'class', classes: ['0', '1', '2', '3', '4'] };
        plan.training = { ...plan.training, rounds: 3, localEpochs: 3 };
        return plan;
      },
      {
        // The hub infers the shapes when the plan is created and names the layer and field of an impossible graph.
        plan: (valid) => {
          if (valid.model.kind !== 'network') throw new Error('the five-class plan has a network model');
          const network = structuredClone(valid.model.network);
          network.layers[1] = { id: 'dense_2', kind: 'dense', units: 4 };
          return { ...valid, model: { kind: 'network', network } };
        },
        problem:
          'model.network: layer \\"dense_2\\", units: the multiclass task needs an output of shape [5], this layer gives [4]',
      },
    );
    expect(rounds.filter((r) => r.kind === 'train' && r.status === 'closed')).toHaveLength(3);
    for (const p of evaluation.participants) {
      const e = p.evaluation!;
      expect(e.task).toBe('multiclass');
      expect(e.loss).toBeGreaterThan(0);
      // The confusion matrix counts every test record once: 5 × 5, rows summing to n.
      expect(e.confusionMatrix).toHaveLength(5);
      expect(e.confusionMatrix!.flat().reduce((a, b) => a + b, 0)).toBe(e.n);
      const correct = e.confusionMatrix!.reduce((sum, row, k) => sum + row[k]!, 0);
      expect(e.accuracy).toBeCloseTo(correct / e.n, 12);
      expect(e.f1).toBeGreaterThanOrEqual(0);
    }
    // Better than chance over five classes at every hospital (the majority class alone gives about 0.45–0.55).
    const summary = evaluation.summary!.evaluation;
    expect(summary.accuracy.unweighted).toBeGreaterThan(0.35);
    expect(summary.balancedAccuracy?.unweighted).toBeGreaterThan(0.2);
    expect(summary.f1?.unweighted).toBeGreaterThan(0);
  });
});

describe('a DP-SGD regression of thalach across processes (embedded database)', () => {
  const bed = processTestBed('tessera-e2e-regression-');

  it('trains a Huber-loss MLP with DP-SGD and reports MAE, RMSE and R² in beats per minute; ledgers agree', async () => {
    const schema = structuredClone(HEART_DISEASE_SCHEMA);
    schema.features = schema.features.filter((f) => f.name !== 'thalach');
    const { api, study, evaluation } = await runStudy(bed, undefined, (silos) => {
      const plan = heartDiseasePlan(silos, {
        model: {
          kind: 'network',
          network: mlpNetwork({
            features: encodedFeatureCount(schema),
            hiddenLayers: [16],
            activation: 'relu',
            task: { kind: 'regression', loss: 'huber' },
          }),
        },
        privacy: {
          mode: 'dp-sgd',
          unit: 'record',
          targetEpsilon: 3,
          delta: 1e-5,
          clipNorm: 1,
          noiseMultiplier: 'derive',
          samplingRate: 0.1,
        },
        release: { evaluation: { mode: 'exact', rounds: 'final' }, trainingExamples: 'none' },
      });
      plan.schema = { ...schema, label: { column: 'thalach', operator: 'value', scaling: { center: 140, scale: 25 } } };
      plan.training = { ...plan.training, rounds: 3, localEpochs: 2, learningRate: 0.1 };
      return plan;
    });
    for (const p of evaluation.participants) {
      const e = p.evaluation!;
      expect(e.task).toBe('regression');
      expect(e.accuracy).toBeNull();
      // In the label's own units (beats per minute): a model no better than a constant is off by about 20.
      expect(e.mae).toBeGreaterThan(0);
      expect(e.mae).toBeLessThan(40);
      expect(e.rmse).toBeGreaterThanOrEqual(e.mae!);
      expect(Number.isFinite(e.r2)).toBe(true);
    }
    expect(evaluation.summary!.evaluation.mae?.unweighted).toBeGreaterThan(0);
    const privacy = await api.call<StudyPrivacyView>('GET', `/api/studies/${study.id}/privacy`);
    expect(privacy.mode).toBe('dp-sgd');
    expect(privacy.entries.length).toBeGreaterThan(0);
    for (const e of privacy.entries) expect(e.agrees).toBe(true);
  });
});
