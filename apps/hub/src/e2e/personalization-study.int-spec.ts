import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chargedEpsilon } from '@tessera/dp';
import { evaluate, parseModelSpec, prepareTabularData } from '@tessera/ml';
import { modelSpecOf, tabularSchemaOf, type StudyPlan } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import type { StudyReportSummary } from '../reports/study-report';
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

interface Silo {
  key: string;
  id: string;
  file: string;
  env: Record<string, string>;
}

/** A hub process on a fresh server database, an admin signed in, and the given hospitals enrolled by their agents. */
async function hubWithSilos(bed: ProcessTestBed, tag: string, hospitals: { key: string; file: string }[]) {
  // The bed kills only its latest hub: stop the previous test's before starting another.
  const previous = bed.hub?.child;
  if (previous && previous.exitCode === null) {
    const exited = new Promise((done) => previous.once('exit', done));
    previous.kill('SIGTERM');
    await exited;
  }
  const db = await createServerDatabase();
  bed.cleanups.push(db.drop);
  const hub = (bed.hub = await startHubProcess(
    hubEnv(join(bed.root, tag, 'hub'), {
      DATABASE_URL: db.url,
      TESSERA_ADMIN_USERNAME: 'admin',
      TESSERA_ADMIN_PASSWORD: 'e2e admin password',
    }),
  ));
  const api = new HubApiClient(hub.url, 'admin', 'e2e admin password');
  await api.signIn();
  const silos: Silo[] = [];
  for (const h of hospitals) {
    const issued = await api.call<EnrollmentIssued>('POST', '/api/silos', {
      name: `Personal ${h.key}`,
      contact: 'it@example.org',
    });
    const file = heartFile(h.file);
    const env = { TESSERA_STATE_DIR: join(bed.root, tag, h.key), TESSERA_DATA_FILE: file };
    expect((await runAgent(['enroll', '--bundle', issued.bundleText], env)).code).toBe(0);
    silos.push({ key: h.key, id: issued.silo.id, file, env });
  }
  return { api, silos };
}

/** Creates, approves (at every agent), runs and completes the study; every agent exits 0 by itself. */
async function runToCompletion(bed: ProcessTestBed, api: HubApiClient, silos: Silo[], plan: StudyPlan) {
  const study = await api.call<StudyView>('POST', '/api/studies', { plan });
  await api.call('POST', `/api/studies/${study.id}/submit`);
  for (const s of silos) {
    const shown = await runAgent(['studies', 'show', study.id], s.env);
    // The steward reads the personalization in the plan before approving its hash.
    expect(shown.stdout).toContain('personalize:');
    const approved = await runAgent(['studies', 'approve', study.id, '--plan-hash', study.planHash], s.env);
    expect(approved.code).toBe(0);
  }
  const runs = silos.map((s) => startAgentRun(study.id, s.env));
  bed.agents.push(...runs.map((r) => r.child));
  await api.call('POST', `/api/studies/${study.id}/start`);
  await until(
    'the study to complete',
    async () => (await api.call<StudyView>('GET', `/api/studies/${study.id}`)).status === 'completed',
    150_000,
  );
  const codes = await Promise.all(runs.map((r) => r.exited));
  expect(codes, runs.map((r) => r.output()).join('\n---\n')).toEqual(silos.map(() => 0));
  const rounds = await api.call<RoundView[]>('GET', `/api/studies/${study.id}/rounds`);
  const final = rounds.find((r) => r.kind === 'evaluate' && r.status === 'closed')!;
  expect(final).toBeDefined();
  const report = await api.call<{ study: StudyReportSummary }>('GET', `/api/studies/${study.id}/report.json`);
  return { study, final, report: report.study };
}

/** The personal model a silo kept in its state directory for the study's final model. */
function keptModel(silo: Silo, studyId: string, kind: 'personalized' | 'local-baseline', modelHash: string): string {
  return join(silo.env.TESSERA_STATE_DIR!, 'personalized', studyId, `${kind}-${modelHash}.f32`);
}

/**
 * Personalization at the final evaluation across processes (a hub and hospital agents over mutual TLS, server
 * PostgreSQL): each agent fine-tunes the final model on its own training split, keeps it, and reports its figures
 * beside the global model's; the hub stores them, the rounds view and the compliance report show them; under DP-SGD
 * the fine-tuning is charged to both ledgers, which agree.
 */
describe('a study with personalization across processes (server database)', () => {
  const bed = processTestBed('tessera-e2e-personal-');

  it('without DP: the exact figures the hub receives are those of the models kept at each silo', async () => {
    const { api, silos } = await hubWithSilos(bed, 'exact', [
      { key: 'hungarian', file: 'processed.hungarian.data' },
      { key: 'switzerland', file: 'processed.switzerland.data' },
    ]);
    const plan = heartDiseasePlan(
      silos.map((s) => s.id),
      {
        release: { evaluation: { mode: 'exact', rounds: 'final' }, trainingExamples: 'exact' },
        personalization: { method: 'fine-tune', epochs: 3, learningRate: 0.1, localBaseline: true },
      },
    );
    plan.training = { ...plan.training, rounds: 2, localEpochs: 2 };
    const { study, final, report } = await runToCompletion(bed, api, silos, plan);

    const spec = parseModelSpec(modelSpecOf(plan));
    for (const s of silos) {
      const p = final.participants.find((x) => x.siloId === s.id)!;
      expect(p.personalization?.personalized).toBeDefined();
      expect(p.personalization?.localBaseline).toBeDefined();
      // Recompute each figure from the model file the silo kept (never uploaded) on the silo's own test split.
      const test = prepareTabularData(readFileSync(s.file, 'utf8'), tabularSchemaOf(plan)).test;
      for (const kind of ['personalized', 'local-baseline'] as const) {
        const file = keptModel(s, study.id, kind, final.modelHash);
        expect(statSync(file).size).toBe(spec.inputDim * 4 + 4);
        const parameters = new Float32Array(new Uint8Array(readFileSync(file)).buffer);
        const own = await evaluate(spec, parameters, test.x, test.y);
        const reported = kind === 'personalized' ? p.personalization!.personalized : p.personalization!.localBaseline!;
        expect(reported.accuracy).toBeCloseTo(own.accuracy, 12);
        expect(reported.n).toBe(test.n);
      }
      // The personalized model is not the global one.
      expect(p.personalization!.personalized.loss).not.toBe(p.evaluation!.loss);
    }

    const fairness = report.finalEvaluation!.fairness;
    expect(fairness.metric).toBe('accuracy');
    const accuracies = final.participants.map((p) => p.evaluation!.accuracy!);
    expect(fairness.worst!.value).toBe(Math.min(...accuracies));
    expect(fairness.best!.value).toBe(Math.max(...accuracies));
    for (const row of fairness.silos) {
      const p = final.participants.find((x) => x.siloId === row.siloId)!;
      expect(row.personalized).toBe(p.personalization!.personalized.accuracy);
      expect(row.localBaseline).toBe(p.personalization!.localBaseline!.accuracy);
      expect(row.personalizationGain).toBeCloseTo(row.personalized! - row.global!, 12);
    }
    expect(report.releases.releasedWithoutDp.join('; ')).toContain('personalized (fine-tuned) model');
  });

  it('under DP-SGD: the fine-tuning and the three noisy releases are charged to both ledgers, which agree', async () => {
    const { api, silos } = await hubWithSilos(bed, 'dp', [
      { key: 'cleveland', file: 'processed.cleveland.data' },
      { key: 'hungarian', file: 'processed.hungarian.data' },
      { key: 'va', file: 'processed.va.data' },
    ]);
    const targetEpsilon = 3;
    const plan = heartDiseasePlan(
      silos.map((s) => s.id),
      {
        privacy: {
          mode: 'dp-sgd',
          unit: 'record',
          targetEpsilon,
          delta: 1e-5,
          clipNorm: 1,
          noiseMultiplier: 'derive',
          samplingRate: 0.2,
        },
        personalization: { method: 'fine-tune', epochs: 2, localBaseline: true },
      },
    );
    plan.training = { ...plan.training, rounds: 2, localEpochs: 1 };
    const { study, final, report } = await runToCompletion(bed, api, silos, plan);

    for (const p of final.participants) {
      expect(p.personalization?.personalized.noisy).toBe(true);
      expect(p.personalization?.localBaseline?.noisy).toBe(true);
    }
    expect(report.finalEvaluation!.fairness.noisy).toBe(true);
    expect(report.finalEvaluation!.fairness.summary.personalized).not.toBeNull();

    const privacy = await api.call<StudyPrivacyView>('GET', `/api/studies/${study.id}/privacy`);
    const m = privacy.mechanism!;
    // 2 epochs of fine-tuning + the local baseline's 2 rounds × 1 local epoch, each round(1/q) = 5 steps.
    expect(m.personalizationSteps).toBe(20);
    expect(m.plannedEpsilon).toBeLessThanOrEqual(targetEpsilon);
    for (const s of silos) {
      const own = privacy.entries.filter((e) => e.siloId === s.id).sort((a, b) => a.round - b.round);
      expect(own.map((e) => e.kind)).toEqual(['train', 'train', 'evaluate']);
      const evaluation = own[2]!;
      expect(evaluation.added).toEqual({ trainingRounds: 0, evaluationReleases: 3, personalizations: 1 });
      expect(evaluation.agrees).toBe(true);
      expect(evaluation.epsilonCumulative).toBeCloseTo(chargedEpsilon(m, 2, 3, 1), 12);
      // The personalization's steps count: the same counts without them cost less on the training side.
      expect(chargedEpsilon(m, 2, 0, 1)).toBeGreaterThan(chargedEpsilon(m, 2, 0, 0));
      expect(privacy.budgets.find((b) => b.siloId === s.id)).toMatchObject({
        trainingRounds: 2,
        evaluationReleases: 3,
        personalizations: 1,
        disagreements: 0,
      });

      // The silo's own ledger, read with its own CLI, holds the same spend.
      const budget = await runAgent(['budget', '--json'], s.env);
      expect(budget.code).toBe(0);
      const line = (JSON.parse(budget.stdout) as { studies: { studyId: string; epsilon: number }[] }).studies.find(
        (x) => x.studyId === study.id,
      )!;
      expect(line.epsilon).toBeCloseTo(evaluation.epsilonCumulative, 9);
      expect(existsSync(keptModel(s, study.id, 'personalized', final.modelHash))).toBe(true);
    }
  });
});
