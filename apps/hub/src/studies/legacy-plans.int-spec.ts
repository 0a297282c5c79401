import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalJson, verifyBundle, type AuditBundle } from '@tessera/audit';
import {
  SILO_STUDY_API,
  SiloStudy,
  StudyPlan,
  type AuditEventPageView,
  type PrivacyPlan,
  type RoundView,
  type TasksResponse,
} from '@tessera/protocol';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { dataSourceOptions, MIGRATIONS } from '../database/data-source';
import { LegacyStudyPlans1763800700000 } from '../database/migrations/1763800700000-legacy-study-plans';
import { externalPostgres, startEmbeddedPostgres } from '../database/embedded-postgres';
import type { StudyReportSummary } from '../reports/study-report';
import {
  ADMIN,
  DATABASE_KINDS,
  api,
  createServerDatabase,
  signIn,
  startTestHub,
  type DatabaseKind,
  type TestHub,
} from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';
import { AuditTrail, SYSTEM_ACTOR } from '../audit/audit-trail';
import { heartDiseasePlan } from './heart-disease-plan';
import type { StudyView } from './studies.service';
import { priceStudy } from './study-privacy';
import { LEGACY_PLAN_NOTE, LEGACY_TRAINING_LOSS_RELEASE } from '../study-state/stored-plan.util';

const DP_SGD: PrivacyPlan = {
  mode: 'dp-sgd',
  unit: 'record',
  targetEpsilon: 5,
  delta: 1e-5,
  clipNorm: 1,
  noiseMultiplier: 'derive',
  samplingRate: 0.1,
};

/**
 * A plan exactly as the previous release stored it (libs/protocol study-plan.ts before issue 13): no `release`,
 * features without declared constants, mean imputation, a seeded stratified split and standardisation.
 */
function legacyPlanOf(silos: string[], privacy: PrivacyPlan): Record<string, unknown> {
  const { release: _dropped, schema, ...rest } = heartDiseasePlan(silos, { privacy });
  return {
    ...rest,
    name: `Legacy ${privacy.mode}`,
    schema: {
      ...(schema.columns ? { columns: schema.columns } : {}),
      ...(schema.missingValues ? { missingValues: schema.missingValues } : {}),
      features: schema.features.map((f) =>
        f.type === 'numeric' ? { name: f.name, type: f.type } : { name: f.name, type: f.type, levels: f.levels },
      ),
      label: schema.label,
      missing: 'impute-mean',
      split: { testFraction: 0.25, seed: 7, stratify: true },
      standardize: true,
    },
  };
}

/** The previous release's plan hash: SHA-256 of the canonical { studyId, version, plan }. */
function legacyHash(studyId: string, plan: unknown): string {
  return createHash('sha256')
    .update(canonicalJson({ studyId, version: 1, plan }), 'utf8')
    .digest('hex');
}

/** The hub's database while no hub runs on it (the embedded one is opened from the data directory). */
async function withDatabase<T>(
  kind: DatabaseKind,
  dataDir: string,
  url: string | undefined,
  work: (db: DataSource) => Promise<T>,
): Promise<T> {
  const endpoint = kind === 'server' ? externalPostgres(url!, 1) : await startEmbeddedPostgres(dataDir);
  const db = new DataSource(dataSourceOptions(endpoint));
  await db.initialize();
  try {
    return await work(db);
  } finally {
    await db.destroy();
    await endpoint.close();
  }
}

interface LegacyStudy {
  id: string;
  status: 'draft' | 'awaiting_approvals' | 'running' | 'completed';
  plan: Record<string, unknown>;
  hash: string;
}

describe.each(DATABASE_KINDS)('studies whose stored plan predates the plan format, on the %s database', (kind) => {
  let dataDir: string;
  let server: { url: string; drop(): Promise<void> } | undefined;
  let hub: TestHub;
  let admin: Record<string, string>;
  let silos: TestSilo[];
  let current: StudyView;
  const legacy = new Map<LegacyStudy['status'], LegacyStudy>();
  let storedBefore: { id: string; plan: string; plan_hash: string; versions: string }[];

  async function stored(db: DataSource): Promise<typeof storedBefore> {
    return await db.query<typeof storedBefore>(
      `SELECT s.id, s.plan::text AS plan, s.plan_hash,
              (SELECT string_agg(v.plan_hash || v.plan::text, '|' ORDER BY v.version)
                 FROM study_plan_versions v WHERE v.study_id = s.id) AS versions
         FROM studies s ORDER BY s.id`,
    );
  }

  // Chosen up front: the previous release's audit records of these studies are written before their rows.
  const ids: Record<LegacyStudy['status'], string> = {
    running: randomUUID(),
    awaiting_approvals: randomUUID(),
    draft: randomUUID(),
    completed: randomUUID(),
  };

  async function insertLegacy(db: DataSource, status: LegacyStudy['status'], privacy: PrivacyPlan): Promise<void> {
    const id = ids[status];
    const plan = legacyPlanOf(
      silos.map((s) => s.id),
      privacy,
    );
    const hash = legacyHash(id, plan);
    // The stored privacy cost of a legacy DP plan covered training only (it had no noisy evaluation).
    const cost =
      privacy.mode === 'none'
        ? null
        : priceStudy(
            heartDiseasePlan(
              silos.map((s) => s.id),
              { privacy, release: { evaluation: { mode: 'none' }, trainingExamples: 'exact' } },
            ),
          );
    const participants = status === 'running' || status === 'completed' ? silos.map((s) => s.id) : [];
    await db.query(
      `INSERT INTO studies (id, name, status, plan_version, plan_hash, plan, privacy_cost, participants,
         current_model_hash, end_reason, started_at, ended_at)
       VALUES ($1, $2, $3, 1, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8, $9, $10, $11)`,
      [
        id,
        plan.name,
        status,
        hash,
        JSON.stringify(plan),
        cost === null ? null : JSON.stringify(cost),
        JSON.stringify(participants),
        status === 'completed' ? 'c'.repeat(64) : null,
        status === 'completed' ? 'completed 10 rounds' : null,
        participants.length ? new Date() : null,
        status === 'completed' ? new Date() : null,
      ],
    );
    await db.query(
      `INSERT INTO study_plan_versions (study_id, version, plan_hash, plan) VALUES ($1, 1, $2, $3::jsonb)`,
      [id, hash, JSON.stringify(plan)],
    );
    for (const s of silos) {
      await db.query(
        `INSERT INTO study_decisions (study_id, silo_id, plan_version, plan_hash, decision) VALUES ($1, $2, 1, $3, 'approve')`,
        [id, s.id, hash],
      );
    }
    if (participants.length) {
      // Running: round 1 open, both silos waiting. Completed: a closed round with the old exact metrics.
      const [round] = await db.query<{ id: string }[]>(
        `INSERT INTO rounds (study_id, number, attempt, kind, status, model_hash, deadline_at, closed_at)
         VALUES ($1, 1, 1, 'train', $2, $3, now() + interval '1 hour', $4) RETURNING id`,
        [id, status === 'running' ? 'open' : 'closed', 'a'.repeat(64), status === 'running' ? null : new Date()],
      );
      for (const [i, s] of silos.entries()) {
        await db.query(
          `INSERT INTO round_participants (round_id, silo_id, status, num_examples, train_loss, evaluation)
           VALUES ($1, $2, $3, $4, $5, $6::jsonb)`,
          status === 'running'
            ? [round!.id, s.id, 'waiting', null, null, null]
            : [
                round!.id,
                s.id,
                'uploaded',
                100 + i,
                0.5,
                JSON.stringify({ loss: 0.6, accuracy: 0.7 + i / 100, auc: 0.75, n: 20, positives: 9 }),
              ],
        );
      }
    }
    legacy.set(status, { id, status, plan, hash });
  }

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'tessera-legacy-'));
    server = kind === 'server' ? await createServerDatabase() : undefined;
    const options = { dataDir, ...(server ? { databaseUrl: server.url } : {}) };

    // The hub of this release, with two silos and a current study awaiting approvals.
    const first = await startTestHub(kind, options);
    try {
      const firstAdmin = await signIn(first, ADMIN.username, ADMIN.password);
      silos = [];
      for (const name of ['North', 'South']) silos.push(await TestSilo.enroll(first, firstAdmin, `${name} ${kind}`));
      const created = await api(first, 'POST', '/api/studies', {
        headers: firstAdmin,
        json: { plan: heartDiseasePlan(silos.map((s) => s.id)) },
      });
      expect(created.status).toBe(201);
      current = created.body as StudyView;
      expect((await api(first, 'POST', `/api/studies/${current.id}/submit`, { headers: firstAdmin })).status).toBe(200);
      // What the previous release recorded of the rounds and the end inserted below (the report checks that the
      // hub's state is described by the log).
      const trail = first.app.get(AuditTrail);
      for (const [studyId, action] of [
        [ids.running, 'round.opened'],
        [ids.completed, 'round.opened'],
        [ids.completed, 'round.closed'],
      ] as const) {
        await trail.record({ actor: SYSTEM_ACTOR, action, subject: { studyId }, details: { round: 1, attempt: 1 } });
      }
      await trail.record({
        actor: SYSTEM_ACTOR,
        action: 'study.completed',
        subject: { studyId: ids.completed },
        details: { reason: 'completed 10 rounds' },
      });
    } finally {
      await first.stop();
    }

    // Back to the previous release's schema (this release's last migration undone), with studies as it stored them.
    await withDatabase(kind, dataDir, server?.url, async (db) => {
      // Undo this migration and any later one (they are applied again at the next boot).
      const previous = MIGRATIONS[MIGRATIONS.indexOf(LegacyStudyPlans1763800700000) - 1]!.name;
      for (let undone = 0; ; undone++) {
        const [last] = await db.query<{ name: string }[]>(`SELECT name FROM migrations ORDER BY id DESC LIMIT 1`);
        if (last!.name === previous) break;
        expect(undone).toBeLessThan(MIGRATIONS.length);
        await db.undoLastMigration({ transaction: 'each' });
      }
      await insertLegacy(db, 'running', DP_SGD);
      await insertLegacy(db, 'awaiting_approvals', DP_SGD);
      await insertLegacy(db, 'draft', { mode: 'none' });
      await insertLegacy(db, 'completed', { mode: 'none' });
      storedBefore = await stored(db);
    });

    // The upgrade: the hub boots, migrates and records the stops.
    hub = await startTestHub(kind, options);
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
    silos = silos.map((s) => s.on(hub));
  });

  afterAll(async () => {
    await hub?.stop();
    await server?.drop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const study = (status: LegacyStudy['status']): LegacyStudy => legacy.get(status)!;

  it('stops legacy studies that could still run, with the reason, and keeps every stored plan byte for byte', async () => {
    for (const status of ['running', 'awaiting_approvals', 'draft'] as const) {
      const view = (await api(hub, 'GET', `/api/studies/${study(status).id}`, { headers: admin })).body as StudyView;
      expect(view.status).toBe('stopped');
      expect(view.endReason).toContain('predates the current plan format');
      expect(view.endedAt).not.toBeNull();
    }
    const completed = (await api(hub, 'GET', `/api/studies/${study('completed').id}`, { headers: admin }))
      .body as StudyView;
    expect(completed).toMatchObject({ status: 'completed', endReason: 'completed 10 rounds' });
    const untouched = (await api(hub, 'GET', `/api/studies/${current.id}`, { headers: admin })).body as StudyView;
    expect(untouched).toMatchObject({ status: 'awaiting_approvals', planHash: current.planHash });
    expect(untouched.legacyPlan).toBeUndefined();

    // Plans, hashes and every plan version exactly as stored (compared as PostgreSQL prints them, with the hub off).
    await hub.stop();
    try {
      await withDatabase(kind, dataDir, server?.url, async (db) => {
        expect(await stored(db)).toEqual(storedBefore);
        const rounds = await db.query<{ status: string; close_reason: string }[]>(
          `SELECT status, close_reason FROM rounds WHERE study_id = $1`,
          [study('running').id],
        );
        expect(rounds).toEqual([{ status: 'abandoned', close_reason: 'study stopped: plan of an earlier format' }]);
        const stops = await db.query<
          { study_id: string; previous_status: string; abandoned_rounds: number; audited: boolean }[]
        >(
          `SELECT study_id, previous_status, abandoned_rounds, audited_at IS NOT NULL AS audited
             FROM legacy_plan_stops ORDER BY previous_status`,
        );
        expect(stops).toEqual([
          { study_id: study('draft').id, previous_status: 'draft', abandoned_rounds: 0, audited: true },
          {
            study_id: study('awaiting_approvals').id,
            previous_status: 'awaiting_approvals',
            abandoned_rounds: 0,
            audited: true,
          },
          { study_id: study('running').id, previous_status: 'running', abandoned_rounds: 1, audited: true },
        ]);
      });
    } finally {
      // A second boot on the same data: nothing is stopped or recorded twice.
      hub = await startTestHub(kind, { dataDir, ...(server ? { databaseUrl: server.url } : {}) });
      admin = await signIn(hub, ADMIN.username, ADMIN.password);
      silos = silos.map((s) => s.on(hub));
    }
  });

  it('records each stop once in the audit chain, by the hub, with the plan hash the stewards approved', async () => {
    for (const status of ['running', 'awaiting_approvals', 'draft', 'completed'] as const) {
      const page = (
        await api(hub, 'GET', `/api/audit/events?studyId=${study(status).id}&action=study.stopped`, {
          headers: admin,
        })
      ).body as AuditEventPageView;
      if (status === 'completed') {
        expect(page.events).toEqual([]);
        continue;
      }
      expect(page.events).toHaveLength(1);
      expect(page.events[0]).toMatchObject({
        actor: { type: 'system', id: 'hub' },
        action: 'study.stopped',
        details: {
          legacyPlan: true,
          previousStatus: status,
          abandonedRounds: status === 'running' ? 1 : 0,
          planVersion: 1,
          planHash: study(status).hash,
        },
      });
      expect(page.events[0]!.details.reason).toContain('predates the current plan format');
    }
    const verify = await api(hub, 'GET', '/api/audit/verify', { headers: admin });
    expect(verify).toMatchObject({ status: 200, body: { ok: true } });
  });

  it('shows legacy studies as stored, flagged, in every view an administrator or auditor reads', async () => {
    const list = await api(hub, 'GET', '/api/studies', { headers: admin });
    expect(list.status).toBe(200);
    const views = list.body as StudyView[];
    expect(views).toHaveLength(5);
    for (const s of legacy.values()) {
      const view = views.find((v) => v.id === s.id)!;
      expect(view.plan).toEqual(s.plan);
      expect(view.planHash).toBe(s.hash);
      expect(view.legacyPlan?.note).toBe(LEGACY_PLAN_NOTE);
      expect(view.legacyPlan?.problems).toEqual(
        expect.arrayContaining([expect.stringMatching(/^release: /), expect.stringMatching(/^schema/)]),
      );
      expect(view.decisions.map((d) => [d.siloId, d.decision])).toEqual(silos.map((x) => [x.id, 'approve']));
      expect(StudyPlan.safeParse(view.plan).success).toBe(false);
    }

    const rounds = await api(hub, 'GET', `/api/studies/${study('completed').id}/rounds`, { headers: admin });
    expect(rounds.status).toBe(200);
    const accuracies = (rounds.body as RoundView[])[0]!.participants.map((p) => p.evaluation?.accuracy);
    expect(accuracies.sort()).toEqual([0.7, 0.71]);
    const privacy = await api(hub, 'GET', `/api/studies/${study('running').id}/privacy`, { headers: admin });
    expect(privacy.status).toBe(200);
    expect(privacy.body).toMatchObject({ mode: 'dp-sgd', mechanism: { mechanism: 'dp-sgd', evaluation: null } });
    const live = await fetch(`${hub.url}/api/studies/${study('draft').id}/events`, { headers: admin });
    expect(live.status).toBe(200);
    await live.body?.cancel();
  });

  it('exports the report of a legacy study, saying what its silos released and why its guarantee does not hold', async () => {
    for (const status of ['running', 'completed'] as const) {
      const json = await fetch(`${hub.url}/api/studies/${study(status).id}/report.json`, { headers: admin });
      expect(json.status).toBe(200);
      const bundle = (await json.json()) as AuditBundle;
      expect(verifyBundle(bundle)).toMatchObject({ ok: true, problems: [] });
      const s = bundle.study as unknown as StudyReportSummary;
      expect(s.planHash).toBe(study(status).hash);
      expect(s.releases.description).toContain(LEGACY_PLAN_NOTE);
      expect(s.releases.releasedWithoutDp).toContain('the exact number of training records (FedAvg weight)');
      expect(s.releases.releasedWithoutDp).toContain(LEGACY_TRAINING_LOSS_RELEASE);
      expect(s.chainVerification).toMatchObject({ ok: true, firstBroken: null });
      if (status === 'running') {
        expect(s.status).toBe('stopped');
        expect(s.privacy.mode).toBe('dp-sgd');
        expect(s.privacy.statement).toContain('does not hold as stated');
      } else {
        expect(s.privacy.mode).toBe('none');
        expect(s.finalEvaluation).toBeNull();
        expect(s.rounds[0]!.evaluations.map((e) => e.accuracy)).toEqual([0.7, 0.71]);
      }
      const pdf = await fetch(`${hub.url}/api/studies/${study(status).id}/report.pdf`, { headers: admin });
      expect(pdf.status).toBe(200);
      expect(
        Buffer.from(await pdf.arrayBuffer())
          .subarray(0, 5)
          .toString('latin1'),
      ).toBe('%PDF-');
      const csv = await fetch(`${hub.url}/api/studies/${study(status).id}/report.csv`, { headers: admin });
      expect(csv.status).toBe(200);
    }
  });

  it('does not offer legacy studies to agents: the study list still parses, and no task is left', async () => {
    for (const silo of silos) {
      const res = await silo.call('GET', SILO_STUDY_API.studies);
      expect(res.status).toBe(200);
      // What the agent does with the answer (apps/agent study-transport): one bad entry would refuse the whole list.
      const parsed = z.array(SiloStudy).parse(res.body);
      expect(parsed.map((s) => s.studyId)).toEqual([current.id]);
      const tasks = await silo.call('GET', `${SILO_STUDY_API.tasks}?wait=0`);
      expect((tasks.body as TasksResponse).tasks).toEqual([]);
    }
  });

  it('refuses to run a legacy study, naming the reason', async () => {
    const refusals = [
      await api(hub, 'POST', `/api/studies/${study('draft').id}/submit`, { headers: admin }),
      await api(hub, 'POST', `/api/studies/${study('awaiting_approvals').id}/start`, { headers: admin }),
      await api(hub, 'PUT', `/api/studies/${study('draft').id}/plan`, {
        headers: admin,
        json: { plan: heartDiseasePlan(silos.map((s) => s.id)) },
      }),
      await silos[0]!.call('POST', SILO_STUDY_API.decision(study('awaiting_approvals').id), {
        planHash: study('awaiting_approvals').hash,
        decision: 'approve',
      }),
    ];
    for (const res of refusals) {
      expect(res.status).toBe(409);
      expect(res.body).toMatchObject({ error: 'STUDY_STATE' });
      expect(JSON.stringify(res.body)).toContain('its plan predates the current plan format');
    }
    // A silo's report to the former running study's round is refused as closed (its round was abandoned).
    const report = await silos[0]!.call('POST', SILO_STUDY_API.evaluation(study('running').id, 1), {
      round: 1,
      attempt: 1,
      planHash: study('running').hash,
      modelHash: 'a'.repeat(64),
      evaluation: null,
      privacy: null,
    });
    expect(report).toMatchObject({ status: 409, body: { error: 'ROUND_CLOSED' } });
    // The stored plans are still what they were.
    const after = (await api(hub, 'GET', `/api/studies/${study('draft').id}`, { headers: admin })).body as StudyView;
    expect(after).toMatchObject({ status: 'stopped', planVersion: 1, planHash: study('draft').hash });
  });
});
