import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chargedEpsilon } from '@tessera/dp';
import type { PrivacyPlan } from '@tessera/protocol';
import { Client } from 'pg';
import { describe, expect, it } from 'vitest';
import { FaultBed } from '../faults/fault-bed.test-util';
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

interface ControlTrace {
  step: string;
  aggregated: number;
  asked: number;
  from: string | null;
  to: string;
}

/** The silo's c_i after its last round, from its state file (`TSC1` | header length | header | before | after). */
function siloControl(stateDir: string, studyId: string): Float32Array {
  const bytes = readFileSync(join(stateDir, 'control-variates', `${studyId}.tsc`));
  const headerLength = bytes.readUInt32LE(4);
  const { length } = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as { length: number };
  const start = 8 + headerLength + 4 * length;
  return Float32Array.from({ length }, (_, i) => bytes.readFloatLE(start + 4 * i));
}

/**
 * SCAFFOLD across processes (ADR 0019): a hub on a server database and three hospital agents over mutual TLS. Each
 * round the hub averages the silos' control deltas into its control variate c, stores it as a blob named by the
 * study, and hands it to the agents with the next task; each agent keeps its own c_i in its state directory.
 */
describe('a SCAFFOLD study across processes (server database)', () => {
  const bed = processTestBed('tessera-e2e-scaffold-');

  async function runStudy(privacy: PrivacyPlan, rounds: number) {
    const db = await createServerDatabase();
    bed.cleanups.push(db.drop);
    const root = join(bed.root, privacy.mode);
    const hub = (bed.hub = await startHubProcess(
      hubEnv(join(root, 'hub'), {
        DATABASE_URL: db.url,
        TESSERA_ADMIN_USERNAME: 'admin',
        TESSERA_ADMIN_PASSWORD: 'e2e admin password',
      }),
    ));
    const api = new HubApiClient(hub.url, 'admin', 'e2e admin password');
    await api.signIn();
    const silos: { key: string; id: string; env: Record<string, string> }[] = [];
    for (const key of ['cleveland', 'hungarian', 'va']) {
      const issued = await api.call<EnrollmentIssued>('POST', '/api/silos', {
        name: `SCAFFOLD ${key}`,
        contact: 'it@example.org',
      });
      const env = { TESSERA_STATE_DIR: join(root, key), TESSERA_DATA_FILE: heartFile(`processed.${key}.data`) };
      expect((await runAgent(['enroll', '--bundle', issued.bundleText], env)).code).toBe(0);
      silos.push({ key, id: issued.silo.id, env });
    }
    const plan = heartDiseasePlan(
      silos.map((s) => s.id),
      { privacy },
    );
    plan.training = {
      ...plan.training,
      rounds,
      localEpochs: 2,
      algorithm: 'scaffold',
      serverOptimizer: { kind: 'fedavg', learningRate: 1 },
    };
    const study = await api.call<StudyView>('POST', '/api/studies', { plan });
    await api.call('POST', `/api/studies/${study.id}/submit`);
    for (const s of silos) {
      // The steward sees the algorithm in the plan it approves.
      const shown = await runAgent(['studies', 'show', study.id], s.env);
      expect(shown.stdout).toMatch(/training: .*scaffold/);
      expect((await runAgent(['studies', 'approve', study.id, '--plan-hash', study.planHash], s.env)).code).toBe(0);
    }
    const runs = silos.map((s) => startAgentRun(study.id, s.env));
    bed.agents.push(...runs.map((r) => r.child));
    await api.call('POST', `/api/studies/${study.id}/start`);
    await until(
      'the study to complete',
      async () => (await api.call<StudyView>('GET', `/api/studies/${study.id}`)).status === 'completed',
      180_000,
    );
    const codes = await Promise.all(runs.map((r) => r.exited));
    expect(codes, runs.map((r) => r.output()).join('\n---\n')).toEqual([0, 0, 0]);

    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    const [row] = (
      await pg.query<{ control_variate_hash: string | null }>(
        'SELECT control_variate_hash FROM studies WHERE id = $1',
        [study.id],
      )
    ).rows;
    const traces = (
      await pg.query<{ number: number; trace: { record?: ControlTrace }[] }>(
        `SELECT number, summary->'aggregationTrace' AS trace FROM rounds
          WHERE study_id = $1 AND kind = 'train' AND status = 'closed' ORDER BY number`,
        [study.id],
      )
    ).rows.map((r) => ({
      number: r.number,
      control: r.trace.find((t) => t.record?.step === 'scaffold-control-variate')!.record!,
    }));
    await pg.end();
    return { api, study, silos, runs, controlVariateHash: row!.control_variate_hash, traces };
  }

  it('moves the server control variate every round, hands it to the agents, and completes', async () => {
    const { api, study, silos, runs, controlVariateHash, traces } = await runStudy({ mode: 'none' }, 3);
    expect(traces.map((t) => t.number)).toEqual([1, 2, 3]);
    // Round 1 starts from c = 0 (no blob); each round's c is the next round's starting point, and c changes.
    expect(traces[0]!.control.from).toBeNull();
    for (let i = 1; i < traces.length; i++) expect(traces[i]!.control.from).toBe(traces[i - 1]!.control.to);
    expect(new Set(traces.map((t) => t.control.to)).size).toBe(3);
    for (const t of traces) expect(t.control).toMatchObject({ aggregated: 3, asked: 3 });
    expect(controlVariateHash).toBe(traces[2]!.control.to);

    const rounds = await api.call<RoundView[]>('GET', `/api/studies/${study.id}/rounds`);
    for (const r of rounds.filter((x) => x.kind === 'train')) {
      expect(r.participants.map((p) => p.status)).toEqual(['uploaded', 'uploaded', 'uploaded']);
    }
    for (const [i, s] of silos.entries()) {
      // Each agent downloaded c from round 2 on, and kept its own c_i in its state directory.
      const log = runs[i]!.output();
      expect(log).toMatch(/SCAFFOLD: control variate [0-9a-f]{12}… downloaded and verified/);
      expect(readdirSync(join(s.env.TESSERA_STATE_DIR!, 'control-variates'))).toEqual([`${study.id}.tsc`]);
    }
  });

  it('under DP-SGD charges exactly what FedAvg would, with the hub and silo ledgers in agreement', async () => {
    const { api, study, silos, traces } = await runStudy(
      {
        mode: 'dp-sgd',
        unit: 'record',
        targetEpsilon: 3,
        delta: 1e-5,
        clipNorm: 1,
        noiseMultiplier: 'derive',
        samplingRate: 0.1,
      },
      2,
    );
    expect(traces).toHaveLength(2);
    const privacy = await api.call<StudyPrivacyView>('GET', `/api/studies/${study.id}/privacy`);
    for (const e of privacy.entries) expect(e.agrees).toBe(true);
    for (const s of silos) {
      const own = privacy.entries.filter((e) => e.siloId === s.id).sort((a, b) => a.round - b.round);
      const last = own[own.length - 1]!;
      // The control delta is post-processing of the noisy gradients: 2 training rounds and 1 evaluation, no more.
      expect(last.epsilonCumulative).toBeCloseTo(chargedEpsilon(privacy.mechanism!, 2, 1), 12);
      const budget = await runAgent(['budget', '--json'], s.env);
      const report = JSON.parse(budget.stdout) as { studies: { studyId: string; epsilon: number; rounds: number }[] };
      const line = report.studies.find((x) => x.studyId === study.id)!;
      expect(line.rounds).toBe(2);
      expect(line.epsilon).toBeCloseTo(last.epsilonCumulative, 9);
    }
  });

  it("keeps c across a hub restart and c_i across an agent restart: c stays the weighted mean of the silos' c_i", async () => {
    const db = await createServerDatabase();
    bed.cleanups.push(db.drop);
    const f = new FaultBed(bed, db.url);
    await f.startHub();
    await f.enroll(['cleveland', 'hungarian', 'va']);
    const training = heartDiseasePlan([]).training;
    await f.createStudy(false, 3, {
      training: {
        ...training,
        localEpochs: 2,
        algorithm: 'scaffold',
        serverOptimizer: { kind: 'fedavg', learningRate: 1 },
      },
      // Every silo reports every round (a generous deadline across the restarts): the invariant below needs it.
      participation: { minSilosPerRound: 3, roundDeadlineSeconds: 90, maxRoundRetries: 1, onSiloFailure: 'continue' },
    });
    for (const s of f.silos) f.startAgent(s);
    // The hub dies just after round 1's close committed c₁; one agent is killed too and restarted from its state.
    await f.stopHub();
    await f.startHub({ TESSERA_FAULT_POINT: 'after-close-commit@1' });
    await f.start();
    await f.hubDies();
    const restarted = f.silos[0]!;
    restarted.run!.child.kill('SIGKILL');
    await restarted.run!.exited;
    f.startAgent(restarted);
    await f.startHub();
    await f.completes(180_000);

    const rounds = await f.rounds();
    for (const r of rounds.filter((x) => x.kind === 'train')) {
      expect(r.participants.map((p) => p.status)).toEqual(['uploaded', 'uploaded', 'uploaded']);
    }
    const traces = (
      await f.query<{ number: number; trace: { record?: ControlTrace }[] }>(
        `SELECT number, summary->'aggregationTrace' AS trace FROM rounds
          WHERE study_id = $1 AND kind = 'train' AND status = 'closed' ORDER BY number`,
        [f.studyId],
      )
    ).map((r) => r.trace.find((t) => t.record?.step === 'scaffold-control-variate')!.record!);
    expect(traces).toHaveLength(3);
    // The restarted hub continued from the c it had committed.
    expect(traces[1]!.from).toBe(traces[0]!.to);
    expect(traces[2]!.from).toBe(traces[1]!.to);
    const [study] = await f.query<{ control_variate_hash: string }>(
      'SELECT control_variate_hash FROM studies WHERE id = $1',
      [f.studyId],
    );
    const hash = study!.control_variate_hash.trim();
    expect(hash).toBe(traces[2]!.to);

    // With every silo in every round and weights n_i / Σn, option II keeps c = Σ w_i c_i exactly (up to float32):
    // a silo that lost its c_i in the restart (starting again from 0) would break it.
    const counts = await f.query<{ silo_id: string; n: number }>(
      `SELECT DISTINCT p.silo_id, p.num_examples AS n FROM round_participants p JOIN rounds r ON r.id = p.round_id
        WHERE r.study_id = $1 AND r.kind = 'train'`,
      [f.studyId],
    );
    expect(counts).toHaveLength(3);
    const total = counts.reduce((a, c) => a + c.n, 0);
    const bytes = readFileSync(join(f.dataDir, 'blobs', hash.slice(0, 2), hash));
    const hubControl = Float32Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(4 * i));
    const expected = new Float64Array(hubControl.length);
    for (const s of f.silos) {
      const w = counts.find((c) => c.silo_id === s.id)!.n / total;
      siloControl(s.env.TESSERA_STATE_DIR!, f.studyId).forEach((v, i) => (expected[i]! += w * v));
    }
    expect(Math.max(...hubControl.map((v) => Math.abs(v)))).toBeGreaterThan(1e-3);
    hubControl.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 4));
    expect(restarted.run!.output()).toMatch(/SCAFFOLD: control variate [0-9a-f]{12}… downloaded and verified/);
  });
});
