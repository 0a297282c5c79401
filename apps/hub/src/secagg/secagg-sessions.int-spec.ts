import { createPrivateKey } from 'node:crypto';
import { rmSync } from 'node:fs';
import { generateKeyPair, type KeyPairPem } from '@tessera/pki';
import {
  encodeMaskedInputFrame,
  SECAGG_API,
  SILO_STUDY_API,
  type AuditEventPageView,
  type SecAggAdvertisementsView,
  type SecAggSessionView,
  type SecAggSharesView,
  type SecAggUnmaskingView,
  type SecureAggregationPlan,
  type TasksResponse,
} from '@tessera/protocol';
import {
  advertiseKeys,
  cryptoRandom,
  encodeMaskedVector,
  maskInput,
  quantise,
  revealShares,
  shareKeys,
  type AdvertisedState,
  type MaskedState,
  type SecAggConfig,
  type SharedState,
} from '@tessera/secagg';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RoundEntity } from '../study-state/round.entity';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyView } from '../studies/studies.service';
import {
  ADMIN,
  api,
  createServerDatabase,
  DATABASE_KINDS,
  signIn,
  startTestHub,
  type DatabaseKind,
  type TestHub,
} from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';
import { SecAggSessionsService } from './secagg-sessions.service';

const SECAGG: SecureAggregationPlan = { threshold: 2, modulusBits: 32, clipNorm: 10 };
const VECTOR_LENGTH = 200;

/** A participant's update: deterministic per silo, norm well below the clip (so clipping changes nothing). */
function updateOf(index: number): Float64Array {
  return Float64Array.from({ length: VECTOR_LENGTH }, (_, i) => Math.sin(index * 31 + i * 0.7) * 0.3);
}

/**
 * Secure aggregation's hub stages over the real silo listener (mutual TLS) on both databases, driven by five
 * participants running @tessera/secagg's participant side (issue 16, items 2, 3 and 5): one advertises keys signed by
 * a key that is not its enrolled one and is excluded and audited; one drops after sharing; the hub is restarted
 * between sharing and the masked uploads; the unmasked sum equals the three survivors' clipped updates within the
 * quantisation bound. The round's session is opened here through the service (the round opener does not start one
 * yet: plans with secureAggregation are still refused, see secagg-plan.int-spec.ts).
 */
describe.each(DATABASE_KINDS)('secure-aggregation sessions on the %s database', (kind: DatabaseKind) => {
  let hub: TestHub;
  let server: { url: string; drop(): Promise<void> } | undefined;
  let admin: Record<string, string>;
  let silos: TestSilo[];
  let keys: KeyPairPem[];
  let study: StudyView;
  let roundId: string;
  let config: SecAggConfig;
  let firstDataDir: string;

  /** A one-round study of `members`, started, with a secure-aggregation session opened on its round 1. */
  async function studyWithSession(
    members: TestSilo[],
  ): Promise<{ study: StudyView; roundId: string; config: SecAggConfig }> {
    const plan = heartDiseasePlan(
      members.map((s) => s.id),
      {
        participation: {
          minSilosPerRound: members.length,
          roundDeadlineSeconds: 600,
          maxRoundRetries: 0,
          onSiloFailure: 'continue',
        },
        training: {
          rounds: 1,
          localEpochs: 1,
          batchSize: 16,
          learningRate: 0.05,
          algorithm: 'fedavg',
          serverOptimizer: { kind: 'fedavg', learningRate: 1 },
          initSeed: 1,
        },
      },
    );
    const created = await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } });
    expect(created.status).toBe(201);
    const study = created.body as StudyView;
    await api(hub, 'POST', `/api/studies/${study.id}/submit`, { headers: admin });
    for (const s of members) {
      const r = await s.call('POST', `/silo/v1/studies/${study.id}/decision`, {
        planHash: study.planHash,
        decision: 'approve',
      });
      expect(r.status).toBe(200);
    }
    expect((await api(hub, 'POST', `/api/studies/${study.id}/start`, { headers: admin })).status).toBe(200);
    const db = hub.app.get(DataSource);
    const round = await db.getRepository(RoundEntity).findOneByOrFail({ studyId: study.id, number: 1 });
    const service = hub.app.get(SecAggSessionsService);
    const session = await db.transaction((tx) =>
      service.open(
        tx,
        round,
        SECAGG,
        members.map((s) => s.id),
        VECTOR_LENGTH,
      ),
    );
    return { study, roundId: round.id, config: session.config };
  }

  beforeAll(async () => {
    server = kind === 'server' ? await createServerDatabase() : undefined;
    hub = await startTestHub(kind, server ? { databaseUrl: server.url } : {});
    firstDataDir = hub.dataDir;
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    keys = [];
    silos = [];
    for (const name of ['Ash', 'Birch', 'Cedar', 'Dogwood', 'Elm']) {
      const pair = generateKeyPair();
      keys.push(pair);
      silos.push(await TestSilo.enroll(hub, admin, `${name} secagg ${kind}`, pair));
    }
    ({ study, roundId, config } = await studyWithSession(silos));
  }, 120_000);

  afterAll(async () => {
    await hub?.dispose();
    await server?.drop();
    if (firstDataDir) rmSync(firstDataDir, { recursive: true, force: true });
  });

  it('runs advertise → share → (hub restart) → upload → unmask, excluding a bad signature and a dropout', async () => {
    const [ash, birch, cedar, dogwood, elm] = silos as [TestSilo, TestSilo, TestSilo, TestSilo, TestSilo];
    const view = (await ash.call('GET', SECAGG_API.session(study.id, 1))).body as SecAggSessionView;
    expect(view.stage).toBe('advertise');
    expect(view.configHash).toMatch(/^[0-9a-f]{64}$/);
    expect(view.config).toEqual(config);

    // Stage 0. Elm signs its keys with a key the hub never certified.
    const advertised = new Map<string, AdvertisedState>();
    for (const [i, silo] of silos.entries()) {
      const identity = silo === elm ? generateKeyPair() : keys[i]!;
      const { state, advertisement } = advertiseKeys({
        config: view.config,
        participantId: silo.id,
        identityKey: createPrivateKey(identity.privateKeyPem),
      });
      advertised.set(silo.id, state);
      expect((await silo.call('POST', SECAGG_API.advertisements(study.id, 1), advertisement)).status).toBe(200);
      if (i === 0) {
        // A re-send of the same advertisement (an agent restarted after sending) is taken again; another is refused.
        expect((await silo.call('POST', SECAGG_API.advertisements(study.id, 1), advertisement)).status).toBe(200);
        const other = { ...advertisement, maskPublicKey: advertisement.encryptionPublicKey };
        expect((await silo.call('POST', SECAGG_API.advertisements(study.id, 1), other)).status).toBe(409);
      }
    }
    const ads = (await ash.call('GET', SECAGG_API.advertisements(study.id, 1))).body as SecAggAdvertisementsView;
    if (!ads.ready) throw new Error('the advertise stage should have closed once all five advertised');
    expect(ads.advertisements.map((a) => a.participantId).sort()).toEqual(
      [ash.id, birch.id, cedar.id, dogwood.id].sort(),
    );

    // Stage 1: the four verified participants share (Elm's advertisement is not even relayed).
    // Elm shares first, anyway (its own state still works): refused, it never advertised valid keys.
    const { message: elmMessage } = await shareKeys(advertised.get(elm.id)!, {
      advertisements: ads.advertisements,
      identityKeys: new Map(Object.entries(ads.identityCertificates)),
    });
    const elmShares = await elm.call('POST', SECAGG_API.shares(study.id, 1), elmMessage);
    expect(elmShares).toMatchObject({ status: 400, body: { error: 'UPDATE_MALFORMED' } });
    const shared = new Map<string, SharedState>();
    for (const silo of [ash, birch, cedar, dogwood]) {
      const { state, message } = await shareKeys(advertised.get(silo.id)!, {
        advertisements: ads.advertisements,
        identityKeys: new Map(Object.entries(ads.identityCertificates)),
      });
      shared.set(silo.id, state);
      expect((await silo.call('POST', SECAGG_API.shares(study.id, 1), message)).status).toBe(200);
    }
    // Once all four verified participants shared, the stage is closed: a late message is refused as out of stage.
    expect((await elm.call('POST', SECAGG_API.shares(study.id, 1), elmMessage)).status).toBe(409);
    // A participant restarted after sending its shares sends them again: taken alike, though the stage has closed.
    const ashShares = await hub.app
      .get(DataSource)
      .query<{ body: object }[]>(
        `SELECT body FROM secagg_messages WHERE round_id = $1 AND silo_id = $2 AND stage = 'share'`,
        [roundId, ash.id],
      );
    expect((await ash.call('POST', SECAGG_API.shares(study.id, 1), ashShares[0]!.body)).status).toBe(200);

    // The hub is killed between sharing and uploading: everything it needs is in the database.
    await hub.stop();
    hub = await startTestHub(kind, { dataDir: hub.dataDir, ...(server ? { databaseUrl: server.url } : {}) });
    const [ash2, birch2, cedar2, dogwood2] = [ash.on(hub), birch.on(hub), cedar.on(hub), dogwood.on(hub)];

    // Stage 2: Dogwood drops after sharing; the others upload masked inputs.
    const masked = new Map<string, MaskedState>();
    const clippedSum = new Float64Array(VECTOR_LENGTH);
    for (const [i, silo] of [ash2, birch2, cedar2].entries()) {
      const routed = (await silo.call('GET', SECAGG_API.shares(study.id, 1))).body as SecAggSharesView;
      if (!routed.ready) throw new Error('the share stage should have closed once all four shared');
      const update = updateOf(i);
      update.forEach((v, j) => (clippedSum[j] = clippedSum[j]! + v));
      const { vector: input } = quantise(update, config, cryptoRandom);
      const { state, header, vector } = maskInput(shared.get(silo.id)!, { shares: routed.shares, input });
      masked.set(silo.id, state);
      const frame = encodeMaskedInputFrame({ ...header }, encodeMaskedVector(vector, config.modulusBits));
      const res = await silo.binary('POST', SECAGG_API.maskedInput(study.id, 1), frame);
      expect([silo.name, res.status]).toEqual([silo.name, 200]);
    }
    const waiting = (await ash2.call('GET', SECAGG_API.unmasking(study.id, 1))).body as SecAggUnmaskingView;
    expect(waiting).toMatchObject({ ready: false, stage: 'upload' });

    // The upload stage's deadline passes (the tick at that time would do exactly this).
    const service = hub.app.get(SecAggSessionsService);
    const session = await service.find(roundId);
    await service.advance(roundId, session!.uploadUntil);

    // Stage 3: the survivors reveal Ash's, Birch's and Cedar's seeds and Dogwood's mask key. A silo that answered
    // has done its part of the round's task: the hub stops offering it (its agent then long-polls for the next
    // round instead of finding a task it settled), while the others are still offered theirs.
    const offered = async (silo: TestSilo): Promise<number[]> => {
      const res = await silo.call('GET', SILO_STUDY_API.tasks);
      return (res.body as TasksResponse).tasks.filter((t) => t.studyId === study.id).map((t) => t.round);
    };
    expect(await offered(ash2)).toEqual([1]);
    for (const silo of [ash2, birch2, cedar2]) {
      const asked = (await silo.call('GET', SECAGG_API.unmasking(study.id, 1))).body as SecAggUnmaskingView;
      if (!asked.ready || !asked.request) throw new Error(`${silo.name} should be asked to unmask`);
      expect(asked.request).toMatchObject({ dropped: [dogwood2.id] });
      const { response } = revealShares(masked.get(silo.id)!, asked.request);
      const res = await silo.call('POST', SECAGG_API.unmasking(study.id, 1), response);
      // Once t shares of every secret are in the session is complete; a later answer is still taken (not needed).
      expect(res.status).toBe(200);
      if (silo === ash2) {
        expect(await offered(ash2)).toEqual([]);
        expect(await offered(birch2)).toEqual([1]);
      }
    }
    const dropped = (await dogwood2.call('GET', SECAGG_API.unmasking(study.id, 1))).body as SecAggUnmaskingView;
    expect(dropped).toEqual({ ready: true, request: null });

    const result = await service.unmask(roundId);
    expect(result.survivors.sort()).toEqual([ash.id, birch.id, cedar.id].sort());
    expect(result.quantisationErrorBound).toBeGreaterThan(0);
    let worst = 0;
    result.sum.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - clippedSum[j]!))));
    expect(worst).toBeLessThanOrEqual(result.quantisationErrorBound);

    // No individual masked vector is stored: the upload messages hold headers only, the session one running sum.
    const db = hub.app.get(DataSource);
    const uploads = await db.query<{ body: Record<string, unknown> }[]>(
      `SELECT body FROM secagg_messages WHERE round_id = $1 AND stage = 'upload'`,
      [roundId],
    );
    expect(uploads).toHaveLength(3);
    for (const u of uploads)
      expect(Object.keys(u.body).sort()).toEqual(['configHash', 'maskPartners', 'participantId']);
    const [row] = await db.query<{ bytes: number; contributors: string[]; stage: string }[]>(
      `SELECT octet_length(masked_sum) AS bytes, contributors, stage FROM secagg_sessions WHERE round_id = $1`,
      [roundId],
    );
    expect(row).toMatchObject({ bytes: VECTOR_LENGTH * 4, stage: 'complete' });
    expect(row!.contributors.sort()).toEqual([ash.id, birch.id, cedar.id].sort());
  }, 180_000);

  it('audited every step: the bad signature as an exclusion naming Elm, each stage close, each message', async () => {
    const page = (
      await api(hub, 'GET', `/api/audit/events?action=secagg.participant.excluded&order=asc`, { headers: admin })
    ).body as AuditEventPageView;
    expect(page.events.map((e) => e.details)).toEqual([
      expect.objectContaining({ participantId: silos[4]!.id, stage: 'advertise', reason: 'SIGNATURE_INVALID' }),
      expect.objectContaining({ participantId: silos[4]!.id, stage: 'share', reason: 'MISSED_PREVIOUS_STAGE' }),
    ]);
    expect(page.events[0]!.subject).toMatchObject({ siloId: silos[4]!.id });
    const closes = (await api(hub, 'GET', `/api/audit/events?action=secagg.stage.closed&order=asc`, { headers: admin }))
      .body as AuditEventPageView;
    expect(closes.events.map((e) => [e.details.stage, e.details.next])).toEqual([
      ['advertise', 'share'],
      ['share', 'upload'],
      ['upload', 'unmask'],
      ['unmask', 'complete'],
    ]);
    for (const [action, count] of [
      ['secagg.session.opened', 1],
      ['secagg.advertise.received', 5],
      ['secagg.share.received', 4],
      ['secagg.upload.received', 3],
    ] as const) {
      const events = (await api(hub, 'GET', `/api/audit/events?action=${action}`, { headers: admin }))
        .body as AuditEventPageView;
      expect([action, events.events.length]).toEqual([action, count]);
    }
    const verified = (await api(hub, 'GET', '/api/audit/verify', { headers: admin })).body as { ok: boolean };
    expect(verified.ok).toBe(true);
  });

  it('fails the session cleanly when too few silos advertise before the deadline, and says so to the silos', async () => {
    // The silos talk to the hub as it now runs (the first test restarted it).
    const members = silos.slice(0, 3).map((s) => s.on(hub));
    const second = await studyWithSession(members);
    for (const [i, silo] of members.slice(0, 2).entries()) {
      const { advertisement } = advertiseKeys({
        config: second.config,
        participantId: silo.id,
        identityKey: createPrivateKey(keys[i]!.privateKeyPem),
      });
      expect((await silo.call('POST', SECAGG_API.advertisements(second.study.id, 1), advertisement)).status).toBe(200);
    }
    const service = hub.app.get(SecAggSessionsService);
    const session = await service.find(second.roundId);
    const failed = await service.advance(second.roundId, session!.advertiseUntil);
    expect(failed.stage).toBe('failed');
    expect(failed.failure).toMatch(/^TOO_FEW_SURVIVORS: Only 2 participants advertised valid keys/);
    const answer = await members[0]!.call('GET', SECAGG_API.advertisements(second.study.id, 1));
    expect(answer).toMatchObject({ status: 409, body: { error: 'ROUND_CLOSED' } });
    const late = await members[2]!.call('POST', SECAGG_API.advertisements(second.study.id, 1), {
      participantId: members[2]!.id,
    });
    expect(late.status).toBe(409);
    const audited = (await api(hub, 'GET', `/api/audit/events?action=secagg.session.failed`, { headers: admin }))
      .body as AuditEventPageView;
    expect(audited.events).toHaveLength(1);
    expect(audited.events[0]!.details).toMatchObject({ stage: 'advertise' });
    expect(audited.events[0]!.details.failure).toMatch(/^TOO_FEW_SURVIVORS/);
    await expect(service.unmask(second.roundId)).rejects.toThrow(/failed, not complete/);
  });
});
