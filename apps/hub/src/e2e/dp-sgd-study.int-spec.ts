import { join } from 'node:path';
import { chargedEpsilon } from '@tessera/dp';
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
} from '../testing/hub-process.test-util';
import { createServerDatabase } from '../testing/test-hub.test-util';

/**
 * Example-level DP-SGD across processes: a hub and three hospital agents over mutual TLS, an MLP large enough
 * (20,097 parameters) that every agent draws its noise on its noise thread. The study completes, every agent exits by
 * itself when it ends, and the hub's ledger, recomputed by the hub, agrees with each silo's own ledger.
 */
describe('a DP-SGD study across processes (server database)', () => {
  const bed = processTestBed('tessera-e2e-dp-');

  it('trains with noise from the agents, keeps both ledgers in agreement, and lets the agents exit', async () => {
    const db = await createServerDatabase();
    bed.cleanups.push(db.drop);
    const root = bed.root;
    const hub = (bed.hub = await startHubProcess(
      hubEnv(join(root, 'hub'), {
        DATABASE_URL: db.url,
        TESSERA_ADMIN_USERNAME: 'admin',
        TESSERA_ADMIN_PASSWORD: 'e2e admin password',
      }),
    ));
    const api = new HubApiClient(hub.url, 'admin', 'e2e admin password');
    await api.signIn();

    const hospitals = [
      { key: 'cleveland', file: heartFile('processed.cleveland.data') },
      { key: 'hungarian', file: heartFile('processed.hungarian.data') },
      { key: 'va', file: heartFile('processed.va.data') },
    ];
    const silos: { key: string; id: string; env: Record<string, string> }[] = [];
    for (const h of hospitals) {
      const issued = await api.call<EnrollmentIssued>('POST', '/api/silos', {
        name: `DP ${h.key}`,
        contact: 'it@example.org',
      });
      const env = { TESSERA_STATE_DIR: join(root, h.key), TESSERA_DATA_FILE: h.file };
      expect((await runAgent(['enroll', '--bundle', issued.bundleText], env)).code).toBe(0);
      silos.push({ key: h.key, id: issued.silo.id, env });
    }

    const targetEpsilon = 2;
    const plan = heartDiseasePlan(
      silos.map((s) => s.id),
      {
        model: { kind: 'mlp', hiddenLayers: [256, 64], activation: 'relu' },
        privacy: {
          mode: 'dp-sgd',
          unit: 'record',
          targetEpsilon,
          delta: 1e-5,
          clipNorm: 1,
          noiseMultiplier: 'derive',
          samplingRate: 0.1,
        },
      },
    );
    plan.training = { ...plan.training, rounds: 3, localEpochs: 2 };
    const study = await api.call<StudyView>('POST', '/api/studies', { plan });
    await api.call('POST', `/api/studies/${study.id}/submit`);
    for (const s of silos) {
      const approved = await runAgent(['studies', 'approve', study.id, '--plan-hash', study.planHash], s.env);
      expect(approved.code).toBe(0);
    }

    const runs = silos.map((s) => startAgentRun(study.id, s.env));
    bed.agents.push(...runs.map((r) => r.child));
    await api.call('POST', `/api/studies/${study.id}/start`);
    await until(
      'the study to complete',
      async () => (await api.call<StudyView>('GET', `/api/studies/${study.id}`)).status === 'completed',
      120_000,
    );

    // Every agent leaves by itself once its study has ended (an idle noise thread must not hold it).
    const codes = await Promise.race([
      Promise.all(runs.map((r) => r.exited)),
      new Promise<string>((r) => setTimeout(() => r('agents still running 30 s after the study ended'), 30_000)),
    ]);
    expect(codes, runs.map((r) => r.output()).join('\n---\n')).toEqual([0, 0, 0]);

    const rounds = await api.call<RoundView[]>('GET', `/api/studies/${study.id}/rounds`);
    expect(rounds.filter((r) => r.kind === 'train' && r.status === 'closed')).toHaveLength(3);
    for (const r of rounds.filter((x) => x.kind === 'train')) {
      expect(r.participants.map((p) => p.status)).toEqual(['uploaded', 'uploaded', 'uploaded']);
    }

    // The hub's ledger: 3 training rounds and the noisy final evaluation × 3 silos, charged when the hub issued each
    // task, each agreeing with what the silo reported.
    const privacy = await api.call<StudyPrivacyView>('GET', `/api/studies/${study.id}/privacy`);
    expect(privacy.mode).toBe('dp-sgd');
    expect(privacy.entries).toHaveLength(12);
    for (const e of privacy.entries) {
      expect(e.agrees).toBe(true);
      expect(e.unit).toBe('record');
      expect(e.noiseMultiplier).toBe(privacy.mechanism!.noiseMultiplier);
    }
    for (const s of silos) {
      const own = privacy.entries.filter((e) => e.siloId === s.id).sort((a, b) => a.round - b.round);
      expect(own.map((e) => [e.round, e.kind])).toEqual([
        [1, 'train'],
        [2, 'train'],
        [3, 'train'],
        [4, 'evaluate'],
      ]);
      const hubEpsilon = own[3]!.epsilonCumulative;
      expect(hubEpsilon).toBeCloseTo(chargedEpsilon(privacy.mechanism!, 3, 1), 12);
      expect(hubEpsilon).toBeGreaterThan(0);
      expect(hubEpsilon).toBeLessThanOrEqual(targetEpsilon);
      expect(privacy.budgets.find((b) => b.siloId === s.id)).toMatchObject({
        trainingRounds: 3,
        evaluationReleases: 1,
        reportedTrainingRounds: 3,
        disagreements: 0,
      });

      // The silo's own ledger, read with its own CLI, holds the same spend.
      const budget = await runAgent(['budget', '--json'], s.env);
      expect(budget.code).toBe(0);
      const report = JSON.parse(budget.stdout) as { studies: { studyId: string; epsilon: number; rounds: number }[] };
      const line = report.studies.find((x) => x.studyId === study.id)!;
      expect(line.rounds).toBe(3);
      expect(line.epsilon).toBeCloseTo(hubEpsilon, 9);
    }

    const verify = await api.call<{ ok: boolean }>('GET', '/api/audit/verify');
    expect(verify.ok).toBe(true);
  });
});
