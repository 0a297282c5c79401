import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chargedEpsilon } from '@tessera/dp';
import type { AuditEventPageView, PrivacyPlan, SecureAggregationPlan } from '@tessera/protocol';
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

const SECURE: SecureAggregationPlan = { threshold: 2, modulusBits: 32, clipNorm: 1 };

/**
 * Differential privacy under secure aggregation end to end (issue 16, item 4): a hub and four hospital agents as
 * separate processes over mutual TLS. (1) Silo-level DP with distributed noise: each agent adds its share of the
 * discrete Gaussian before masking; the round's model differs from the noiseless secure run of the same seeded
 * updates by noise of exactly the variance the shares promise (a chi-square check over the model's coordinates), and
 * the hub's ledger charges the accountant's ε. (2) Record-level DP-SGD under secure aggregation runs to completion.
 */
describe('DP under secure aggregation across processes (embedded database)', () => {
  const bed = processTestBed('tessera-ddp-e2e-');

  it('adds the distributed noise the plan accounts for, and runs DP-SGD masked', async () => {
    const root = bed.root;
    const env = hubEnv(join(root, 'hub'), { TESSERA_ADMIN_USERNAME: 'admin', TESSERA_ADMIN_PASSWORD: 'e2e admin pw!' });
    const hub = (bed.hub = await startHubProcess(env));
    const api = new HubApiClient(hub.url, 'admin', 'e2e admin pw!');
    await api.signIn();
    const call = <T>(method: string, path: string, json?: unknown): Promise<T> => api.call<T>(method, path, json);

    const silos: { key: string; id: string; env: Record<string, string> }[] = [];
    for (const key of ['cleveland', 'hungarian', 'switzerland', 'va']) {
      const issued = await call<EnrollmentIssued>('POST', '/api/silos', { name: `DDP ${key}`, contact: 'it@x.org' });
      const agentEnv = { TESSERA_STATE_DIR: join(root, key), TESSERA_DATA_FILE: heartFile(`processed.${key}.data`) };
      expect((await runAgent(['enroll', '--bundle', issued.bundleText], agentEnv)).code).toBe(0);
      silos.push({ key, id: issued.silo.id, env: agentEnv });
    }

    /** Runs a one-round secure study with this privacy plan to completion; returns its round, model and agent logs. */
    async function runStudy(
      privacy: PrivacyPlan,
    ): Promise<{ study: StudyView; round: RoundView; model: Float32Array; log: string }> {
      const plan = heartDiseasePlan(
        silos.map((s) => s.id),
        {
          privacy,
          participation: {
            minSilosPerRound: silos.length,
            roundDeadlineSeconds: 90,
            maxRoundRetries: 0,
            onSiloFailure: 'continue',
          },
          release: { evaluation: { mode: 'none' }, trainingExamples: 'none' },
          secureAggregation: SECURE,
        },
      );
      plan.training.rounds = 1;
      plan.training.serverOptimizer = { kind: 'fedavg', learningRate: 1 };
      const study = await call<StudyView>('POST', '/api/studies', { plan });
      await call('POST', `/api/studies/${study.id}/submit`);
      for (const s of silos) expect((await runAgent(['studies', 'approve', study.id], s.env)).code).toBe(0);
      const runs = silos.map((s) => startAgentRun(study.id, s.env));
      bed.agents.push(...runs.map((r) => r.child));
      await call('POST', `/api/studies/${study.id}/start`);
      try {
        await until(
          'the study to complete',
          async () => (await call<StudyView>('GET', `/api/studies/${study.id}`)).status === 'completed',
          300_000,
        );
      } catch (err) {
        for (const r of runs) console.log(r.output().split('\n').slice(-15).join('\n'));
        throw err;
      }
      for (const r of runs) expect(await r.exited).toBe(0);
      const rounds = await call<RoundView[]>('GET', `/api/studies/${study.id}/rounds`);
      const round = rounds.find((r) => r.number === 1 && r.kind === 'train' && r.status === 'closed')!;
      const hash = round.resultModelHash!;
      const bytes = readFileSync(join(root, 'hub', 'blobs', hash.slice(0, 2), hash));
      const model = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
      return { study, round, model, log: runs.map((r) => r.output()).join('\n') };
    }

    const noiseless = await runStudy({ mode: 'none' });
    const distributed: PrivacyPlan = {
      mode: 'dp-fedavg',
      unit: 'silo',
      targetEpsilon: 2,
      delta: 1e-5,
      clipNorm: SECURE.clipNorm,
      noiseMultiplier: 'derive',
      noise: 'distributed',
    };
    const noisy = await runStudy(distributed);
    expect(noisy.log).toContain('with its share of the noise (discrete Gaussian σ =');
    expect(noisy.round.participants.map((p) => p.status)).toEqual(['uploaded', 'uploaded', 'uploaded', 'uploaded']);
    expect(noisy.round.participants.every((p) => p.updateSha256 === null)).toBe(true);

    // What each silo added, as the hub audited it when it opened the session.
    const opened = await call<AuditEventPageView>('GET', `/api/audit/events?action=secagg.session.opened&order=asc`);
    const event = opened.events.find((e) => e.subject?.studyId === noisy.study.id);
    const noise = event?.details.distributedNoise as { siloSigma: number; scale: number; shares: number } | undefined;
    expect(noise?.shares).toBe(SECURE.threshold);
    // The model moved from the noiseless one by (Σ of 4 shares)/s/4 per coordinate (fedavg, learning rate 1), plus a
    // quantisation error below 1/s: a chi-square test of the differences against that variance, over every weight.
    const sd = (Math.sqrt(silos.length) * noise!.siloSigma) / noise!.scale / silos.length;
    const d = noisy.model.length;
    let sumSq = 0;
    noisy.model.forEach((v, i) => (sumSq += ((v - noiseless.model[i]!) / sd) ** 2));
    // χ²_d / d for d = 14 lies in [0.1, 4] except with probability below 1e-5.
    expect(sumSq / d).toBeGreaterThan(0.1);
    expect(sumSq / d).toBeLessThan(4);
    console.log(
      `distributed DP: σ per silo ${noise!.siloSigma} steps of 1/${noise!.scale}; χ²/d = ${(sumSq / d).toFixed(3)}`,
    );

    // The ledger: every silo charged the accountant's ε for the round, for the Gaussian of multiplier z that t shares
    // dominate.
    const ledger = await call<StudyPrivacyView>('GET', `/api/studies/${noisy.study.id}/privacy`);
    expect(ledger.mode).toBe('dp-fedavg');
    expect(ledger.entries).toHaveLength(silos.length);
    for (const e of ledger.entries) {
      expect(e.unit).toBe('silo');
      expect(e.epsilonCumulative).toBeCloseTo(chargedEpsilon(ledger.mechanism!, 1, 0), 12);
    }

    // Record-level DP-SGD under secure aggregation: private before it is masked; runs and is charged.
    const dpsgd = await runStudy({
      mode: 'dp-sgd',
      unit: 'record',
      targetEpsilon: 3,
      delta: 1e-5,
      clipNorm: 1,
      noiseMultiplier: 'derive',
      samplingRate: 0.1,
    });
    expect(dpsgd.log).toContain('masked input uploaded (the hub sees only the sum)');
    expect(dpsgd.round.participants.map((p) => p.status)).toEqual(['uploaded', 'uploaded', 'uploaded', 'uploaded']);
    const sgdLedger = await call<StudyPrivacyView>('GET', `/api/studies/${dpsgd.study.id}/privacy`);
    expect(sgdLedger.mode).toBe('dp-sgd');
    expect(sgdLedger.entries).toHaveLength(silos.length);
    let moved = 0;
    dpsgd.model.forEach((v, i) => (moved = Math.max(moved, Math.abs(v - noiseless.model[i]!))));
    expect(moved).toBeGreaterThan(0);

    const verified = await call<{ ok: boolean }>('GET', '/api/audit/verify');
    expect(verified.ok).toBe(true);
  }, 900_000);
});
