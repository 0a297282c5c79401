import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEventPageView, SecureAggregationPlan } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import type { StudyReportSummary } from '../reports/study-report';
import type { RoundView } from '../rounds/rounds-query.service';
import type { EnrollmentIssued } from '../silos/silos.service';
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

const SECURE: SecureAggregationPlan = { threshold: 2, modulusBits: 32, clipNorm: 100 };

/**
 * Secure aggregation end to end (issue 16, item 5): a hub and four hospital agents as separate processes over mutual
 * TLS on the embedded database run the same one-round study twice, once with updates in the clear and once under
 * secure aggregation. Training is seeded, so each silo's update is the same in both runs; the round's model under
 * secure aggregation must equal the plain FedAvg model (equal weights) within the quantisation bound, and the hub
 * must never have stored an individual update.
 */
describe('a study under secure aggregation across processes (embedded database)', () => {
  const bed = processTestBed('tessera-secagg-e2e-');

  it('aggregates to the plain run within the quantisation bound, storing no individual update', async () => {
    const root = bed.root;
    const env = hubEnv(join(root, 'hub'), {
      TESSERA_ADMIN_USERNAME: 'admin',
      TESSERA_ADMIN_PASSWORD: 'e2e admin password',
    });
    const hub = (bed.hub = await startHubProcess(env));
    const api = new HubApiClient(hub.url, 'admin', 'e2e admin password');
    await api.signIn();
    const call = <T>(method: string, path: string, json?: unknown): Promise<T> => api.call<T>(method, path, json);

    const silos: { key: string; id: string; env: Record<string, string> }[] = [];
    for (const key of ['cleveland', 'hungarian', 'switzerland', 'va']) {
      const issued = await call<EnrollmentIssued>('POST', '/api/silos', { name: `SecAgg ${key}`, contact: 'it@x.org' });
      const agentEnv = { TESSERA_STATE_DIR: join(root, key), TESSERA_DATA_FILE: heartFile(`processed.${key}.data`) };
      expect((await runAgent(['enroll', '--bundle', issued.bundleText], agentEnv)).code).toBe(0);
      silos.push({ key, id: issued.silo.id, env: agentEnv });
    }

    /**
     * Runs a one-round study of `members` to completion and returns its round 1 and the model it produced;
     * `dropAfterSharing` is killed once it has sent its shares.
     */
    async function runStudy(
      secure: boolean,
      members = silos,
      options: { minSilos?: number; deadlineSeconds?: number; dropAfterSharing?: string } = {},
    ): Promise<{ round: RoundView; model: Float32Array; study: StudyView }> {
      const plan = heartDiseasePlan(
        members.map((s) => s.id),
        {
          participation: {
            minSilosPerRound: options.minSilos ?? members.length,
            roundDeadlineSeconds: options.deadlineSeconds ?? 90,
            maxRoundRetries: 0,
            onSiloFailure: 'continue',
          },
          release: { evaluation: { mode: 'none' }, trainingExamples: 'none' },
          ...(secure ? { secureAggregation: SECURE } : {}),
        },
      );
      plan.training.rounds = 1;
      plan.training.serverOptimizer = { kind: 'fedavg', learningRate: 1 };
      const study = await call<StudyView>('POST', '/api/studies', { plan });
      await call('POST', `/api/studies/${study.id}/submit`);
      for (const s of members) expect((await runAgent(['studies', 'approve', study.id], s.env)).code).toBe(0);
      // The dropping silo kills itself (SIGKILL) at its test-only fault point, once the hub has taken its shares and
      // before it masks anything: killing it from here when its log says so raced its upload on a fast machine.
      const runs = members.map((s) =>
        startAgentRun(
          study.id,
          s.key === options.dropAfterSharing ? { ...s.env, TESSERA_AGENT_FAULT_POINT: 'secagg-shared' } : s.env,
        ),
      );
      bed.agents.push(...runs.map((r) => r.child));
      await call('POST', `/api/studies/${study.id}/start`);
      const dropping = members.findIndex((s) => s.key === options.dropAfterSharing);
      if (dropping >= 0) {
        const victim = runs[dropping]!;
        await victim.exited;
        expect(victim.child.signalCode).toBe('SIGKILL');
        expect(victim.output()).toContain('TESSERA_AGENT_FAULT_POINT: killing the agent at secagg-shared');
        runs.splice(dropping, 1);
      }
      try {
        await until(
          `the ${secure ? 'secure' : 'plain'} study to complete`,
          async () => (await call<StudyView>('GET', `/api/studies/${study.id}`)).status === 'completed',
          300_000,
        );
      } catch (err) {
        const seen = await call<RoundView[]>('GET', `/api/studies/${study.id}/rounds`);
        console.log(
          JSON.stringify(
            seen.map((r) => [r.number, r.kind, r.status, r.closeReason, r.participants.map((p) => p.status)]),
          ),
        );
        for (const r of runs) console.log(r.output().split('\n').slice(-15).join('\n'));
        throw err;
      }
      for (const r of runs) expect(await r.exited).toBe(0);
      if (secure) {
        const log = runs.map((r) => r.output()).join('\n');
        expect(log).toContain('masked input uploaded (the hub sees only the sum)');
      }
      const rounds = await call<RoundView[]>('GET', `/api/studies/${study.id}/rounds`);
      const round = rounds.find((r) => r.number === 1 && r.kind === 'train' && r.status === 'closed')!;
      const hash = round.resultModelHash!;
      const bytes = readFileSync(join(root, 'hub', 'blobs', hash.slice(0, 2), hash));
      return { round, model: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), study };
    }

    const plain = await runStudy(false);
    const secure = await runStudy(true);

    // Four survivors, scale s = ⌊(2^31 − 1)/4⌋ / C: the mean is off by at most (4/s)/4 per coordinate.
    const scale = Math.floor((2 ** 31 - 1) / 4) / SECURE.clipNorm;
    const bound = 1 / scale;
    let worst = 0;
    secure.model.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - plain.model[i]!))));
    expect(secure.model.length).toBe(plain.model.length);
    expect(worst).toBeLessThanOrEqual(bound + 1e-6);
    // Not trivially so: the round moved the model by far more than that.
    const input = readFileSync(join(root, 'hub', 'blobs', plain.round.modelHash.slice(0, 2), plain.round.modelHash));
    const before = new Float32Array(input.buffer, input.byteOffset, input.byteLength / 4);
    let moved = 0;
    plain.model.forEach((v, i) => (moved = Math.max(moved, Math.abs(v - before[i]!))));
    expect(moved).toBeGreaterThan(1000 * (bound + 1e-6));
    console.log(
      `secure vs plain: largest difference ${worst.toExponential(2)}, bound ${bound.toExponential(2)}; largest move ${moved.toExponential(2)}`,
    );
    expect(secure.round.participants.map((p) => p.status)).toEqual(['uploaded', 'uploaded', 'uploaded', 'uploaded']);
    // No update blob for any silo: the hub never received one.
    expect(secure.round.participants.every((p) => p.updateSha256 === null)).toBe(true);
    expect(plain.round.participants.every((p) => p.updateSha256 !== null)).toBe(true);

    const closes = await call<AuditEventPageView>('GET', `/api/audit/events?action=secagg.stage.closed&order=asc`);
    expect(closes.events.map((e) => e.details.next)).toEqual(['share', 'upload', 'unmask', 'complete']);

    /** The compliance report's secure-aggregation block and, per training round, the masked inputs summed. */
    const reported = async (studyId: string) => {
      const bundle = await call<{ study: StudyReportSummary }>('GET', `/api/studies/${studyId}/report.json`);
      const trained = bundle.study.rounds.filter((r) => r.kind === 'train');
      return { block: bundle.study.secureAggregation, perRound: trained.map((r) => r.secureAggregation) };
    };
    const report = await reported(secure.study.id);
    expect(report.block).toMatchObject({ threshold: 2, neighbourCount: null, modulusBits: 32, clipNorm: 100 });
    expect(report.perRound).toMatchObject([{ protocol: 'SecAgg+', summed: 4, individualUpdatesStored: false }]);
    expect((await reported(plain.study.id)).block).toBeNull();

    // A silo killed after sending its shares: the round waits for the upload stage's deadline, rebuilds its mask key
    // from the survivors' shares, and the model is the plain run of the three survivors within the bound.
    const survivors = silos.filter((s) => s.key !== 'va');
    const plainThree = await runStudy(false, survivors);
    const dropped = await runStudy(true, silos, { minSilos: 3, deadlineSeconds: 60, dropAfterSharing: 'va' });
    const va = silos.find((s) => s.key === 'va')!;
    expect(dropped.round.participants.find((p) => p.siloId === va.id)?.status).toBe('late');
    expect(dropped.round.participants.filter((p) => p.status === 'uploaded')).toHaveLength(3);
    const scale3 = Math.floor((2 ** 31 - 1) / 4) / SECURE.clipNorm;
    let worst3 = 0;
    dropped.model.forEach((v, i) => (worst3 = Math.max(worst3, Math.abs(v - plainThree.model[i]!))));
    expect(worst3).toBeLessThanOrEqual(1 / scale3 + 1e-6);
    console.log(
      `dropout after sharing: largest difference ${worst3.toExponential(2)}, bound ${(1 / scale3).toExponential(2)}`,
    );
    const stages = await call<AuditEventPageView>('GET', `/api/audit/events?action=secagg.stage.closed&order=asc`);
    const unmaskPlan = stages.events.find(
      (e) => e.details.next === 'unmask' && (e.details.dropped as string[]).length > 0,
    );
    expect(unmaskPlan?.details.dropped).toEqual([va.id]);
    expect((await reported(dropped.study.id)).perRound).toMatchObject([{ summed: 3, individualUpdatesStored: false }]);

    const verified = await call<{ ok: boolean }>('GET', '/api/audit/verify');
    expect(verified.ok).toBe(true);
  }, 900_000);
});
