import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditEventPageView, AuditRecord, RoundView, SecureAggregationPlan } from '@tessera/protocol';
import { beforeAll, describe, expect, it } from 'vitest';
import type { StudyReportSummary } from '../reports/study-report';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyView } from '../studies/studies.service';
import { runAgent, startAgentRun, type AgentRun } from '../testing/agent-process.test-util';
import { processTestBed, until } from '../testing/hub-process.test-util';
import { createServerDatabase } from '../testing/test-hub.test-util';
import { FaultBed, type FaultSilo } from './fault-bed.test-util';

const HOSPITALS = ['cleveland', 'hungarian', 'switzerland', 'va'];
const SECURE: SecureAggregationPlan = { threshold: 2, modulusBits: 32, clipNorm: 100 };
/**
 * The scale the hub derives for a roster of four at C = 100 and 32 bits (maxSafeScale): the mean of the survivors'
 * dequantised inputs is within 1/s of the mean of their clipped updates in every coordinate, whoever survived.
 */
const SCALE = Math.floor((2 ** 31 - 1) / HOSPITALS.length) / SECURE.clipNorm;
const BOUND = 1 / SCALE + 1e-6;

interface StudyRun {
  study: StudyView;
  /** Each member's agent process, by hospital key. */
  runs: Map<string, AgentRun>;
  /** The audit chain's head before the study started: its rounds' records come after it. */
  mark: number;
  /** The audit records the study's rounds wrote under secure aggregation (`secagg.*`), in order. */
  secagg: AuditRecord[];
}

/**
 * Secure aggregation with silos lost at each stage (issue 16, item 2): a hub process and four agent processes over
 * mutual TLS, on the embedded database and on a fresh PostgreSQL database; a silo is lost by SIGKILL at the agent's own fault point
 * (TESSERA_AGENT_FAULT_POINT, apps/agent/src/faults/fault-point.util.ts), so it stops exactly after the hub took its
 * message and sends nothing more. Training is seeded, so each silo's update is the same in every study: each secure
 * model is compared with the plain FedAvg model of the silos whose inputs must be in its sum. Every case also checks
 * that the audit trail names the lost silo at the stage it was lost, the compliance report's count of summed inputs,
 * and (after the last case, from the database and the blob store) that no individual update was stored.
 */
describe.each([
  ['embedded database', false],
  ['PostgreSQL', true],
] as const)('secure aggregation: silos lost at each stage, with real agent processes (%s)', (_database, server) => {
  const bed = processTestBed('tessera-fault-secagg-dropouts-');
  let f: FaultBed;
  const secureStudies: string[] = [];
  const plainModels = new Map<string, Float32Array>();
  let silos: FaultSilo[] = [];
  const silo = (key: string): FaultSilo => silos.find((s) => s.key === key)!;

  /** The hub's audit records after `mark`, oldest first. */
  async function auditAfter(mark: number): Promise<AuditRecord[]> {
    const out: AuditRecord[] = [];
    let cursor: number | null = mark;
    while (cursor !== null) {
      const page: AuditEventPageView = await f.api.call<AuditEventPageView>(
        'GET',
        `/api/audit/events?action=secagg.&order=asc&limit=100&cursor=${cursor}`,
      );
      out.push(...page.events);
      cursor = page.nextCursor;
    }
    return out;
  }

  async function headSeq(): Promise<number> {
    return (await f.api.call<{ headSeq: number }>('GET', '/api/audit/verify')).headSeq;
  }

  /**
   * Creates a one-round study of `members`, approved by each, starts their agents (`faults`: a fault point per
   * hospital key) and the study; `whileRunning` acts on the agents before the study is awaited to completion.
   */
  async function runStudy(
    members: FaultSilo[],
    options: {
      secure: boolean;
      minSilos?: number;
      retries?: number;
      faults?: Record<string, string>;
      whileRunning?: (run: StudyRun) => Promise<void>;
    },
  ): Promise<StudyRun> {
    const base = heartDiseasePlan(members.map((s) => s.id));
    const plan = heartDiseasePlan(
      members.map((s) => s.id),
      {
        participation: {
          minSilosPerRound: options.minSilos ?? members.length,
          roundDeadlineSeconds: 60,
          maxRoundRetries: options.retries ?? 0,
          onSiloFailure: 'continue',
        },
        release: { evaluation: { mode: 'none' }, trainingExamples: 'none' },
        training: { ...base.training, rounds: 1, serverOptimizer: { kind: 'fedavg', learningRate: 1 } },
        ...(options.secure ? { secureAggregation: SECURE } : {}),
      },
    );
    const study = await f.api.call<StudyView>('POST', '/api/studies', { plan });
    await f.api.call('POST', `/api/studies/${study.id}/submit`);
    for (const s of members) {
      const approved = await runAgent(['studies', 'approve', study.id, '--plan-hash', study.planHash], s.env);
      expect(approved.code, approved.stderr).toBe(0);
    }
    const mark = await headSeq();
    const runs = new Map<string, AgentRun>();
    for (const s of members) {
      const fault = options.faults?.[s.key];
      const run = startAgentRun(study.id, { ...s.env, ...(fault ? { TESSERA_AGENT_FAULT_POINT: fault } : {}) }, 1);
      bed.agents.push(run.child);
      runs.set(s.key, run);
    }
    await f.api.call('POST', `/api/studies/${study.id}/start`);
    const run: StudyRun = { study, runs, mark, secagg: [] };
    await options.whileRunning?.(run);
    try {
      await until(
        `study ${study.id} to complete`,
        async () => {
          const now = await f.api.call<StudyView>('GET', `/api/studies/${study.id}`);
          if (now.status === 'failed' || now.status === 'stopped') throw new Error(`the study ${now.status}`);
          return now.status === 'completed';
        },
        300_000,
      );
    } catch (err) {
      for (const [key, r] of runs) console.log(`--- ${key}\n${r.output().split('\n').slice(-12).join('\n')}`);
      throw err;
    }
    run.secagg = await auditAfter(mark);
    if (options.secure) secureStudies.push(study.id);
    return run;
  }

  async function roundsOf(studyId: string): Promise<RoundView[]> {
    return f.api.call<RoundView[]>('GET', `/api/studies/${studyId}/rounds`);
  }

  /** The model a closed training round produced, read from the hub's blob store. */
  function modelOf(round: RoundView): Float32Array {
    const hash = round.resultModelHash!;
    const bytes = readFileSync(join(f.dataDir, 'blobs', hash.slice(0, 2), hash));
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  }

  function largestDifference(a: Float32Array, b: Float32Array): number {
    expect(a.length).toBe(b.length);
    let worst = 0;
    a.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b[i]!))));
    return worst;
  }

  async function closedTrainingRound(studyId: string): Promise<RoundView> {
    const closed = (await roundsOf(studyId)).filter((r) => r.kind === 'train' && r.status === 'closed');
    expect(closed).toHaveLength(1);
    return closed[0]!;
  }

  /** Per training round of the compliance report: the masked inputs summed. */
  async function reportedSums(studyId: string): Promise<(number | undefined)[]> {
    const bundle = await f.api.call<{ study: StudyReportSummary }>('GET', `/api/studies/${studyId}/report.json`);
    expect(bundle.study.secureAggregation?.statement).toBeTruthy();
    return bundle.study.rounds
      .filter((r) => r.kind === 'train' && r.status === 'closed')
      .map((r) => {
        expect(r.secureAggregation?.individualUpdatesStored).toBe(false);
        return r.secureAggregation?.summed;
      });
  }

  const stageClosed = (records: AuditRecord[], next: string) =>
    records.filter((r) => r.action === 'secagg.stage.closed' && r.details.next === next);

  /** Waits for an agent killed at its fault point and checks that it died there. */
  async function killedAtFault(run: AgentRun, point: string): Promise<void> {
    await until(`the agent to die at ${point}`, () => run.child.exitCode !== null || run.child.signalCode !== null);
    expect(run.child.signalCode).toBe('SIGKILL');
    expect(run.output()).toContain(`TESSERA_AGENT_FAULT_POINT: killing the agent at ${point}`);
  }

  beforeAll(async () => {
    let url: string | null = null;
    if (server) {
      const db = await createServerDatabase();
      bed.cleanups.push(db.drop);
      url = db.url;
    }
    f = new FaultBed(bed, url);
    await f.startHub();
    await f.enroll(HOSPITALS);
    silos = f.silos;
    // The references: the plain FedAvg model of all four, and of the three that survive case 1 (va lost).
    const all = await runStudy(silos, { secure: false });
    plainModels.set('all', modelOf(await closedTrainingRound(all.study.id)));
    const three = await runStudy(
      silos.filter((s) => s.key !== 'va'),
      { secure: false },
    );
    plainModels.set('without va', modelOf(await closedTrainingRound(three.study.id)));
  }, 600_000);

  it('a silo killed right after advertising its keys is left out of the sharing graph; the three others sum', async () => {
    const run = await runStudy(silos, {
      secure: true,
      minSilos: 3,
      faults: { va: 'secagg-advertised' },
      whileRunning: (r) => killedAtFault(r.runs.get('va')!, 'secagg-advertised'),
    });
    const va = silo('va');
    const round = await closedTrainingRound(run.study.id);
    expect(round.participants.find((p) => p.siloId === va.id)?.status).toBe('late');
    expect(round.participants.filter((p) => p.status === 'uploaded')).toHaveLength(3);
    const worst = largestDifference(modelOf(round), plainModels.get('without va')!);
    expect(worst).toBeLessThanOrEqual(BOUND);
    console.log(
      `lost after advertising: largest difference ${worst.toExponential(2)}, bound ${BOUND.toExponential(2)}`,
    );

    // Its keys were accepted; it never shared, so it is nobody's mask partner and nothing of it is rebuilt.
    const [share] = stageClosed(run.secagg, 'share');
    expect(share?.details.accepted).toContain(va.id);
    const [upload] = stageClosed(run.secagg, 'upload');
    expect(upload?.details.silent).toEqual([va.id]);
    expect(upload?.details.sharers).not.toContain(va.id);
    const [unmask] = stageClosed(run.secagg, 'unmask');
    expect(unmask?.details.dropped).toEqual([]);
    expect(unmask?.details.silent).toEqual([]);
    expect(unmask?.details.survivors).toHaveLength(3);
    expect(stageClosed(run.secagg, 'complete')).toHaveLength(1);
    expect(run.secagg.filter((r) => r.action === 'secagg.upload.received')).toHaveLength(3);
    expect(await reportedSums(run.study.id)).toEqual([3]);
  }, 600_000);

  it('a silo killed right after uploading its masked input stays in the sum: the others rebuild its seed', async () => {
    const run = await runStudy(silos, {
      secure: true,
      minSilos: 3,
      faults: { hungarian: 'secagg-uploaded' },
      whileRunning: (r) => killedAtFault(r.runs.get('hungarian')!, 'secagg-uploaded'),
    });
    const hungarian = silo('hungarian');
    const round = await closedTrainingRound(run.study.id);
    expect(round.participants.map((p) => p.status)).toEqual(['uploaded', 'uploaded', 'uploaded', 'uploaded']);
    // The sum of all four: its input is in it, unmasked without its answer.
    const worst = largestDifference(modelOf(round), plainModels.get('all')!);
    expect(worst).toBeLessThanOrEqual(BOUND);
    console.log(`lost after uploading: largest difference ${worst.toExponential(2)}, bound ${BOUND.toExponential(2)}`);

    const [unmask] = stageClosed(run.secagg, 'unmask');
    expect(unmask?.details.survivors).toContain(hungarian.id);
    expect(unmask?.details.dropped).toEqual([]);
    const [complete] = stageClosed(run.secagg, 'complete');
    expect(complete?.details.silent).toEqual([hungarian.id]);
    expect(complete?.details.responders).not.toContain(hungarian.id);
    expect(run.secagg.filter((r) => r.action === 'secagg.unmask.received')).toHaveLength(3);
    expect(await reportedSums(run.study.id)).toEqual([4]);
  }, 600_000);

  it('fewer than t survivors: the attempt fails without unmasking, naming the lost silos; the retry sums all four', async () => {
    const lost = ['hungarian', 'switzerland', 'va'];
    const run = await runStudy(silos, {
      secure: true,
      minSilos: 3,
      retries: 1,
      faults: Object.fromEntries(lost.map((k) => [k, 'secagg-advertised'])),
      whileRunning: async (r) => {
        for (const k of lost) await killedAtFault(r.runs.get(k)!, 'secagg-advertised');
        // Restarted only once the first attempt's session failed (earlier, their re-sent advertisements and shares
        // would rescue it): they take part in the plan's retry.
        await until(
          "the first attempt's session to fail",
          async () => (await auditAfter(r.mark)).some((e) => e.action === 'secagg.session.failed'),
          120_000,
        );
        for (const k of lost) {
          const again = startAgentRun(r.study.id, silo(k).env, 1);
          bed.agents.push(again.child);
          r.runs.set(k, again);
        }
      },
    });
    const opened = run.secagg.filter((r) => r.action === 'secagg.session.opened');
    expect(opened).toHaveLength(2);
    const firstRound = opened[0]!.subject.roundId;
    const first = run.secagg.filter((r) => r.subject.roundId === firstRound);
    const failed = first.filter((r) => r.action === 'secagg.session.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.details).toMatchObject({ stage: 'share', silent: lost.map((k) => silo(k).id).sort() });
    expect(failed[0]!.details.failure).toMatch(/^TOO_FEW_SURVIVORS: Only 1 participants completed sharing; t = 2/);
    // Nothing was masked, asked for or revealed in the failed attempt.
    expect(first.map((r) => r.action)).not.toContain('secagg.upload.received');
    expect(first.map((r) => r.action)).not.toContain('secagg.unmask.received');
    expect(first.filter((r) => r.action === 'secagg.stage.closed').map((r) => r.details.next)).toEqual(['share']);

    const rounds = (await roundsOf(run.study.id)).filter((r) => r.kind === 'train' && r.number === 1);
    expect(rounds.map((r) => [r.attempt, r.status])).toEqual([
      [1, 'retried'],
      [2, 'closed'],
    ]);
    const retried = rounds.find((r) => r.attempt === 2)!;
    expect(retried.participants.map((p) => p.status)).toEqual(['uploaded', 'uploaded', 'uploaded', 'uploaded']);
    const second = run.secagg.filter((r) => r.subject.roundId === opened[1]!.subject.roundId);
    expect(second.filter((r) => r.action === 'secagg.stage.closed').map((r) => r.details.next)).toEqual([
      'share',
      'upload',
      'unmask',
      'complete',
    ]);
    expect(await reportedSums(run.study.id)).toEqual([4]);
  }, 600_000);

  it('stored no individual update: the database holds masked-input headers only, the blob store models only', async () => {
    expect(secureStudies).toHaveLength(3);
    const verified = await f.api.call<{ ok: boolean }>('GET', '/api/audit/verify');
    expect(verified.ok).toBe(true);
    await f.stopHub();
    const updates = await f.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM round_participants p JOIN rounds r ON r.id = p.round_id
        WHERE r.study_id = ANY($1::uuid[]) AND p.update_hash IS NOT NULL`,
      [secureStudies],
    );
    expect(updates).toEqual([{ n: 0 }]);
    const uploads = await f.query<{ keys: string[] }>(
      `SELECT array(SELECT jsonb_object_keys(m.body) ORDER BY 1) AS keys FROM secagg_messages m
        WHERE m.stage = 'upload'`,
    );
    // 3 + 4 + 4 masked inputs, each stored as its header (no vector).
    expect(uploads).toHaveLength(11);
    for (const u of uploads) expect(u.keys).toEqual(['configHash', 'maskPartners', 'participantId']);
    // Every blob is a model, an optimizer state or a plain study's update; none belongs to a secure round's silo.
    const referenced = new Set(
      (
        await f.query<{ hash: string }>(
          `SELECT model_hash AS hash FROM rounds
            UNION SELECT result_model_hash FROM rounds WHERE result_model_hash IS NOT NULL
            UNION SELECT current_model_hash FROM studies WHERE current_model_hash IS NOT NULL
            UNION SELECT optimizer_state_hash FROM studies WHERE optimizer_state_hash IS NOT NULL
            UNION SELECT p.update_hash FROM round_participants p JOIN rounds r ON r.id = p.round_id
              WHERE p.update_hash IS NOT NULL AND NOT r.study_id = ANY($1::uuid[])`,
          [secureStudies],
        )
      ).map((r) => r.hash.trim()),
    );
    const root = join(f.dataDir, 'blobs');
    const files = readdirSync(root)
      .filter((d) => d !== 'tmp')
      .flatMap((d) => readdirSync(join(root, d)));
    expect(files.length).toBeGreaterThan(0);
    expect(files.filter((name) => !referenced.has(name))).toEqual([]);
    expect(existsSync(join(root, 'tmp')) ? readdirSync(join(root, 'tmp')) : []).toEqual([]);
  }, 120_000);
});
