import type { AuditEventPageView, SecureAggregationPlan, TabularStudyPlan } from '@tessera/protocol';
import { describe, expect, it } from 'vitest';
import { processTestBed, until } from '../testing/hub-process.test-util';
import { createServerDatabase } from '../testing/test-hub.test-util';
import { FaultBed } from './fault-bed.test-util';

const HOSPITALS = ['cleveland', 'hungarian', 'switzerland', 'va'];
const SECURE: SecureAggregationPlan = { threshold: 2, modulusBits: 32, clipNorm: 100 };

/** One training round of the four hospitals under secure aggregation, every silo needed, no retry. */
const SECURE_STUDY: Partial<TabularStudyPlan> = {
  secureAggregation: SECURE,
  participation: { minSilosPerRound: 3, roundDeadlineSeconds: 120, maxRoundRetries: 0, onSiloFailure: 'continue' },
  release: { evaluation: { mode: 'none' }, trainingExamples: 'none' },
};

/**
 * Secure aggregation under faults, with a real hub process and four real agent processes over mutual TLS on a fresh
 * PostgreSQL database (issue 16, items 2 and 3): the hub killed (SIGKILL) right after it stored the last key
 * advertisement, a share message, a masked input, and the first unmasking answer resumes the round from the database
 * after each restart; a silo killed after uploading its masked input, before it answers unmasking, leaves its input in
 * a sum the three others unmask.
 */
describe('secure aggregation: the hub killed mid-protocol', () => {
  const bed = processTestBed('tessera-fault-secagg-hub-');

  it('resumes the round after key advertisement, during sharing, upload and unmasking, and sums all four', async () => {
    const db = await createServerDatabase();
    bed.cleanups.push(db.drop);
    const f = new FaultBed(bed, db.url);
    await f.startHub();
    await f.enroll(HOSPITALS);
    // A long round: four hub boots (seconds each on a loaded machine) must not outlast a stage's deadline.
    await f.createStudy(false, 1, {
      ...SECURE_STUDY,
      participation: { ...SECURE_STUDY.participation!, roundDeadlineSeconds: 300 },
    });
    await f.stopHub();

    // 1. After the fourth advertisement committed, before it is answered (the stage would close at once).
    await f.startHub({ TESSERA_FAULT_POINT: 'secagg-advertise-committed@4' });
    for (const s of f.silos) f.startAgent(s);
    await f.start();
    await f.hubDies();
    const [afterAdvertise] = await f.query<{ stage: string; ads: number }>(
      `SELECT s.stage, (SELECT count(*)::int FROM secagg_messages m WHERE m.round_id = s.round_id
          AND m.stage = 'advertise') AS ads FROM secagg_sessions s`,
    );
    expect(afterAdvertise).toEqual({ stage: 'advertise', ads: 4 });

    // 2. During sharing: after the second share message committed.
    await f.startHub({ TESSERA_FAULT_POINT: 'secagg-share-committed@2' });
    await f.hubDies(120_000);
    const [duringShare] = await f.query<{ stage: string; shares: number }>(
      `SELECT s.stage, (SELECT count(*)::int FROM secagg_messages m WHERE m.round_id = s.round_id
          AND m.stage = 'share') AS shares FROM secagg_sessions s`,
    );
    expect(duringShare).toEqual({ stage: 'share', shares: 2 });

    // 3. During masked-input collection: after the second masked input went into the stored running sum.
    await f.startHub({ TESSERA_FAULT_POINT: 'secagg-upload-committed@2' });
    await f.hubDies(120_000);
    const [duringUpload] = await f.query<{ stage: string; contributors: number }>(
      `SELECT stage, jsonb_array_length(contributors) AS contributors FROM secagg_sessions`,
    );
    expect(duringUpload).toEqual({ stage: 'upload', contributors: 2 });

    // 4. After the first unmasking answer committed: the session is at 'unmask' with one answer of four.
    await f.startHub({ TESSERA_FAULT_POINT: 'secagg-unmask-committed@1' });
    await f.hubDies(120_000);
    const [duringUnmask] = await f.query<{ stage: string; answers: number; contributors: number }>(
      `SELECT s.stage, jsonb_array_length(s.contributors) AS contributors,
         (SELECT count(*)::int FROM secagg_messages m WHERE m.round_id = s.round_id AND m.stage = 'unmask') AS answers
         FROM secagg_sessions s`,
    );
    expect(duringUnmask).toEqual({ stage: 'unmask', answers: 1, contributors: 4 });

    // 5. A clean restart: the agents re-send what they hold, the hub answers from the database and unmasks.
    await f.startHub();
    await f.completes(180_000);
    const rounds = await f.rounds();
    const round = rounds.find((r) => r.kind === 'train' && r.number === 1 && r.status === 'closed')!;
    expect(round.participants.map((p) => p.status)).toEqual(['uploaded', 'uploaded', 'uploaded', 'uploaded']);
    expect(round.participants.every((p) => p.updateSha256 === null)).toBe(true);
    const [session] = await f.query<{ stage: string; sessions: number }>(
      `SELECT max(stage) AS stage, count(*)::int AS sessions FROM secagg_sessions`,
    );
    // One session for the round's single attempt: the restarts resumed it rather than starting another.
    expect(session).toEqual({ stage: 'complete', sessions: 1 });
    const closes = await f.api.call<AuditEventPageView>(
      'GET',
      `/api/audit/events?action=secagg.stage.closed&order=asc`,
    );
    expect(closes.events.map((e) => e.details.next)).toEqual(['share', 'upload', 'unmask', 'complete']);
    const verified = await f.api.call<{ ok: boolean }>('GET', '/api/audit/verify');
    expect(verified.ok).toBe(true);
  }, 600_000);
});

describe('secure aggregation: a silo killed during unmasking', () => {
  const bed = processTestBed('tessera-fault-secagg-unmask-');

  it('keeps its masked input in the sum; the three others rebuild its seed and the round closes', async () => {
    const db = await createServerDatabase();
    bed.cleanups.push(db.drop);
    const f = new FaultBed(bed, db.url);
    await f.startHub();
    await f.enroll(HOSPITALS);
    await f.createStudy(false, 1, SECURE_STUDY);
    await f.stopHub();
    // The hub holds its answer to the fourth masked input for 8 s: that silo is killed meanwhile, having uploaded but
    // never seen the unmasking request.
    await f.startHub({ TESSERA_FAULT_POINT: 'secagg-upload-committed@4', TESSERA_FAULT_STALL_MS: '8000' });
    for (const s of f.silos) f.startAgent(s);
    await f.start();
    await until(
      'the hub to hold the fourth upload',
      () => f.hub.output().includes('TESSERA_FAULT_POINT: stalling'),
      120_000,
    );
    await until(
      'three agents to have their upload receipts',
      () => f.silos.filter((s) => s.run!.output().includes('masked input uploaded')).length === 3,
      6_000,
    );
    const victim = f.silos.find((s) => !s.run!.output().includes('masked input uploaded'))!;
    victim.run!.child.kill('SIGKILL');
    await victim.run!.exited;
    await f.completes(180_000);

    const round = (await f.rounds()).find((r) => r.kind === 'train' && r.number === 1 && r.status === 'closed')!;
    expect(round.participants.filter((p) => p.status === 'uploaded')).toHaveLength(4);
    const answered = await f.query<{ silo_id: string }>(
      `SELECT silo_id FROM secagg_messages WHERE stage = 'unmask' ORDER BY silo_id`,
    );
    expect(answered.map((a) => a.silo_id)).toEqual(
      f.silos
        .filter((s) => s !== victim)
        .map((s) => s.id)
        .sort(),
    );
    const stages = await f.api.call<AuditEventPageView>(
      'GET',
      `/api/audit/events?action=secagg.stage.closed&order=asc`,
    );
    const unmasking = stages.events.find((e) => e.details.next === 'unmask');
    // The victim uploaded: it is a survivor, so its seed (never its mask key) is rebuilt by the others.
    expect(unmasking?.details.survivors).toContain(victim.id);
    expect(unmasking?.details.dropped).toEqual([]);
    const verified = await f.api.call<{ ok: boolean }>('GET', '/api/audit/verify');
    expect(verified.ok).toBe(true);
  }, 600_000);
});
