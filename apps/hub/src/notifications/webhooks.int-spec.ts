import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SILO_STUDY_API } from '@tessera/protocol';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataGeneration } from '../database/data-generation';
import { ReadCache } from '../database/read-cache';
import { heartDiseasePlan } from '../studies/heart-disease-plan';
import type { StudyView } from '../studies/studies.service';
import { ADMIN, DATABASE_KINDS, api, signIn, startTestHub, type TestHub } from '../testing/test-hub.test-util';
import { TestSilo } from '../testing/test-silo.test-util';
import type { WebhookEvent } from './webhook-events.util';
import { MAX_WEBHOOK_ATTEMPTS } from './webhook-retry.util';
import { verifyWebhook, WEBHOOK_HEADERS } from './webhook-signature.util';
import type { CreatedWebhookView, WebhookDeliveryView, WebhookEndpointView } from './webhook-views';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  answered: number;
  atSeconds: number;
}

/** A webhook receiver on 127.0.0.1: records every request and answers the next queued status (204 when none). */
class Receiver {
  readonly received: Received[] = [];
  readonly answers: number[] = [];
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const answered = this.answers.shift() ?? 204;
        this.received.push({
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          answered,
          atSeconds: Date.now() / 1000,
        });
        if (answered >= 300 && answered < 400) res.setHeader('location', 'https://elsewhere.example.org/');
        res.statusCode = answered;
        res.end();
      });
    });
    await new Promise<void>((done) => this.server.listen(0, '127.0.0.1', done));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks/tessera`;
  }

  stop(): Promise<void> {
    return new Promise((done) => this.server.close(() => done()));
  }

  of(type: string): Received[] {
    return this.received.filter((r) => r.headers[WEBHOOK_HEADERS.event] === type);
  }
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.each(DATABASE_KINDS)('signed webhooks on the %s database', (kind) => {
  let hub: TestHub;
  let admin: Record<string, string>;
  const receiver = new Receiver();

  beforeAll(async () => {
    await receiver.start();
    hub = await startTestHub(kind, {
      env: {
        TESSERA_ENROLL_PORT: '0',
        TESSERA_WEBHOOK_ALLOW_LOOPBACK_HTTP: 'true',
        TESSERA_WEBHOOK_RETRY_BASE_SECONDS: '1',
      },
    });
    admin = await signIn(hub, ADMIN.username, ADMIN.password);
  });
  afterAll(async () => {
    await hub?.dispose();
    await receiver.stop();
  });

  it.runIf(kind === 'embedded')('writes nothing while idle, so cached reads stay valid', async () => {
    // First, before any silo exists: nothing else of the hub writes on a timer then (silo presence flushes do).
    const created = await api(hub, 'POST', '/api/webhooks', {
      headers: admin,
      json: { url: receiver.url, events: ['study.started'] },
    });
    const { endpoint } = created.body as CreatedWebhookView;
    const cache = hub.app.get<ReadCache, { generation: DataGeneration }>(ReadCache); // its private generation
    await new Promise((r) => setTimeout(r, 1500)); // the creation's audit record is fed once
    const before = cache.generation.value;
    await new Promise((r) => setTimeout(r, 3500)); // three polls or more, with an enabled endpoint
    expect(cache.generation.value).toBe(before);
    expect((await api(hub, 'DELETE', `/api/webhooks/${endpoint.id}`, { headers: admin })).status).toBe(204);
  });

  it('refuses endpoints it cannot honour with a 400 naming the problem, strangers with a 401 and auditors with a 403', async () => {
    const create = (json: unknown, headers = admin) => api(hub, 'POST', '/api/webhooks', { headers, json });
    const plainHttp = await create({ url: 'http://alerts.example.org/hook', events: ['study.started'] });
    expect(plainHttp).toMatchObject({ status: 400, body: { error: 'VALIDATION_FAILED' } });
    expect(JSON.stringify(plainHttp.body)).toContain('must use https');
    const unknownEvent = await create({ url: 'https://alerts.example.org/hook', events: ['study.exploded'] });
    expect(unknownEvent.status).toBe(400);
    expect((unknownEvent.body as { details: string[] }).details).toEqual([
      'events: "study.exploded" is not an event this hub sends',
    ]);
    expect((await create({ url: 'https://alerts.example.org/hook', events: [] })).status).toBe(400);
    expect((await create({ events: ['study.started'] })).status).toBe(400);
    expect((await create({ url: 'https://a.example.org/', events: ['study.started'], secret: 'mine' })).status).toBe(
      400,
    );
    expect((await create({ url: 'https://alerts.example.org/hook', events: ['study.started'] }, {})).status).toBe(401);
    const auditor = { username: `auditor-${kind}`, password: 'auditor password 42', role: 'auditor' };
    expect((await api(hub, 'POST', '/api/users', { headers: admin, json: auditor })).status).toBe(201);
    const auditorHeaders = await signIn(hub, auditor.username, auditor.password);
    expect((await api(hub, 'GET', '/api/webhooks', { headers: auditorHeaders })).status).toBe(403);
    expect(
      (await create({ url: 'https://alerts.example.org/hook', events: ['study.started'] }, auditorHeaders)).status,
    ).toBe(403);
    expect(((await api(hub, 'GET', '/api/webhooks', { headers: admin })).body as unknown[]).length).toBe(0);
  });

  it('delivers a study event signed, retries after a 500, logs both attempts, and sends a test event', async () => {
    const created = await api(hub, 'POST', '/api/webhooks', {
      headers: admin,
      json: { url: receiver.url, events: ['study.submitted', 'study.decision'], description: 'on-call' },
    });
    expect(created.status).toBe(201);
    const { endpoint, secret } = created.body as CreatedWebhookView;
    expect(secret).toMatch(/^whsec_/);
    // Shown once: no read answer holds the secret, nor does the audit log.
    const listed = await api(hub, 'GET', '/api/webhooks', { headers: admin });
    expect(JSON.stringify(listed.body)).not.toContain(secret);
    expect((listed.body as WebhookEndpointView[]).map((e) => e.id)).toEqual([endpoint.id]);
    const audit = await api(hub, 'GET', '/api/audit/events?action=webhook.', { headers: admin });
    expect(JSON.stringify(audit.body)).toContain('webhook.created');
    expect(JSON.stringify(audit.body)).not.toContain(secret);

    const silos = [
      await TestSilo.enroll(hub, admin, `North ${kind}`),
      await TestSilo.enroll(hub, admin, `South ${kind}`),
    ];
    const plan = heartDiseasePlan(
      silos.map((s) => s.id),
      {
        participation: { minSilosPerRound: 2, roundDeadlineSeconds: 30, maxRoundRetries: 0, onSiloFailure: 'continue' },
      },
    );
    const study = (await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } })).body as StudyView;
    receiver.answers.push(500);
    expect((await api(hub, 'POST', `/api/studies/${study.id}/submit`, { headers: admin })).status).toBe(200);

    const [first, second] = await until('the retried delivery', () => {
      const got = receiver.of('study.submitted');
      return got.length >= 2 ? got : undefined;
    });
    expect(first!.answered).toBe(500);
    expect(second!.answered).toBe(204);
    for (const [i, r] of [first!, second!].entries()) {
      expect(r.headers[WEBHOOK_HEADERS.attempt]).toBe(String(i + 1));
      expect(r.headers['content-type']).toBe('application/json');
      const verdict = verifyWebhook({
        secret,
        body: r.body,
        timestampHeader: r.headers[WEBHOOK_HEADERS.timestamp] as string,
        signatureHeader: r.headers[WEBHOOK_HEADERS.signature] as string,
        nowSeconds: Math.floor(r.atSeconds),
      });
      expect(verdict).toEqual({ valid: true });
      expect(
        verifyWebhook({
          ...{ secret: 'whsec_wrong', body: r.body },
          timestampHeader: r.headers[WEBHOOK_HEADERS.timestamp] as string,
          signatureHeader: r.headers[WEBHOOK_HEADERS.signature] as string,
          nowSeconds: Math.floor(r.atSeconds),
        }).valid,
      ).toBe(false);
    }
    // One delivery, retried: the same id, so a receiver can drop a duplicate.
    expect(second!.headers[WEBHOOK_HEADERS.id]).toBe(first!.headers[WEBHOOK_HEADERS.id]);
    const event = JSON.parse(second!.body) as WebhookEvent;
    expect(event).toMatchObject({ type: 'study.submitted', data: { studyId: study.id, planHash: study.planHash } });
    expect(event.auditSeq).toEqual(expect.any(Number));

    const log = await until('the delivered log entry', async () => {
      const res = await api(hub, 'GET', `/api/webhooks/${endpoint.id}/deliveries`, { headers: admin });
      const rows = res.body as WebhookDeliveryView[];
      return rows.find((d) => d.eventType === 'study.submitted' && d.status === 'delivered');
    });
    expect(log).toMatchObject({ id: first!.headers[WEBHOOK_HEADERS.id], attempts: 2, nextAttemptAt: null });
    expect(log.log.map((a) => [a.attempt, a.statusCode, a.error])).toEqual([
      [1, 500, 'HTTP 500'],
      [2, 204, null],
    ]);
    expect(log.log.every((a) => a.durationMs >= 0)).toBe(true);

    // A steward's rejection arrives with its reason; events the endpoint did not subscribe to do not.
    const seen = (await silos[0]!.call('GET', SILO_STUDY_API.studies)).body as { planHash: string }[];
    const decided = await silos[0]!.call('POST', SILO_STUDY_API.decision(study.id), {
      planHash: seen[0]!.planHash,
      decision: 'reject',
      reason: 'not before the ethics board meets',
    });
    expect(decided.status).toBe(200);
    const decision = await until('the decision event', () => receiver.of('study.decision')[0]);
    expect(JSON.parse(decision.body)).toMatchObject({
      type: 'study.decision',
      data: {
        studyId: study.id,
        siloId: silos[0]!.id,
        decision: 'reject',
        reason: 'not before the ethics board meets',
      },
    });

    const test = await api(hub, 'POST', `/api/webhooks/${endpoint.id}/test`, { headers: admin });
    expect(test.status).toBe(202);
    const testEvent = await until('the test event', () => receiver.of('webhook.test')[0]);
    expect(JSON.parse(testEvent.body)).toMatchObject({ type: 'webhook.test', data: { endpointId: endpoint.id } });

    // Disabled: nothing more is queued nor sent; a test event is refused.
    const disabled = await api(hub, 'PATCH', `/api/webhooks/${endpoint.id}`, {
      headers: admin,
      json: { enabled: false },
    });
    expect(disabled).toMatchObject({ status: 200, body: { enabled: false } });
    expect((await api(hub, 'POST', `/api/webhooks/${endpoint.id}/test`, { headers: admin })).status).toBe(409);
    expect(receiver.of('study.started')).toHaveLength(0);

    expect((await api(hub, 'DELETE', `/api/webhooks/${endpoint.id}`, { headers: admin })).status).toBe(204);
    expect((await api(hub, 'GET', `/api/webhooks/${endpoint.id}`, { headers: admin })).status).toBe(404);
    const trail = JSON.stringify((await api(hub, 'GET', '/api/audit/events?action=webhook.', { headers: admin })).body);
    for (const action of ['webhook.created', 'webhook.test.queued', 'webhook.updated', 'webhook.deleted']) {
      expect(trail).toContain(action);
    }
  });

  it('announces a pause and a resume, delivered signed like every other event', async () => {
    const created = await api(hub, 'POST', '/api/webhooks', {
      headers: admin,
      json: { url: receiver.url, events: ['study.paused', 'study.resumed'] },
    });
    expect(created.status).toBe(201);
    const { endpoint, secret } = created.body as CreatedWebhookView;
    const silos = [
      await TestSilo.enroll(hub, admin, `East ${kind}`),
      await TestSilo.enroll(hub, admin, `West ${kind}`),
    ];
    const plan = heartDiseasePlan(
      silos.map((s) => s.id),
      {
        participation: {
          minSilosPerRound: 2,
          roundDeadlineSeconds: 600,
          maxRoundRetries: 0,
          onSiloFailure: 'continue',
        },
      },
    );
    const study = (await api(hub, 'POST', '/api/studies', { headers: admin, json: { plan } })).body as StudyView;
    const path = `/api/studies/${study.id}`;
    expect((await api(hub, 'POST', `${path}/submit`, { headers: admin })).status).toBe(200);
    for (const silo of silos) {
      const decided = await silo.call('POST', SILO_STUDY_API.decision(study.id), {
        planHash: study.planHash,
        decision: 'approve',
      });
      expect(decided.status).toBe(200);
    }
    expect((await api(hub, 'POST', `${path}/start`, { headers: admin })).status).toBe(200);

    const paused = await api(hub, 'POST', `${path}/pause`, { headers: admin, json: { reason: 'scanner upgrade' } });
    expect(paused.status).toBe(200);
    const pauseEvent = await until('the pause event', () => receiver.of('study.paused')[0]);
    expect(JSON.parse(pauseEvent.body)).toMatchObject({
      type: 'study.paused',
      data: { studyId: study.id, reason: 'scanner upgrade' },
    });
    expect((await api(hub, 'POST', `${path}/resume`, { headers: admin })).status).toBe(200);
    const resumeEvent = await until('the resume event', () => receiver.of('study.resumed')[0]);
    const resumed = JSON.parse(resumeEvent.body) as WebhookEvent;
    expect(resumed).toMatchObject({ type: 'study.resumed', data: { studyId: study.id } });
    expect(Date.parse(String(resumed.data.pausedSince))).not.toBeNaN();
    for (const r of [pauseEvent, resumeEvent]) {
      const verdict = verifyWebhook({
        secret,
        body: r.body,
        timestampHeader: r.headers[WEBHOOK_HEADERS.timestamp] as string,
        signatureHeader: r.headers[WEBHOOK_HEADERS.signature] as string,
        nowSeconds: Math.floor(r.atSeconds),
      });
      expect(verdict).toEqual({ valid: true });
    }
    const log = await until('both deliveries logged', async () => {
      const res = await api(hub, 'GET', `/api/webhooks/${endpoint.id}/deliveries`, { headers: admin });
      const rows = (res.body as WebhookDeliveryView[]).filter((d) => d.status === 'delivered');
      return rows.length >= 2 ? rows : undefined;
    });
    expect(log.map((d) => d.eventType).sort()).toEqual(['study.paused', 'study.resumed']);
    expect((await api(hub, 'DELETE', `/api/webhooks/${endpoint.id}`, { headers: admin })).status).toBe(204);
  });

  it('does not follow a redirect: a 3xx is a failed attempt, retried', async () => {
    const created = await api(hub, 'POST', '/api/webhooks', {
      headers: admin,
      json: { url: receiver.url, events: ['study.started'] },
    });
    const { endpoint } = created.body as CreatedWebhookView;
    receiver.answers.push(302);
    await api(hub, 'POST', `/api/webhooks/${endpoint.id}/test`, { headers: admin });
    const log = await until('the delivery after a redirect', async () => {
      const rows = (await api(hub, 'GET', `/api/webhooks/${endpoint.id}/deliveries`, { headers: admin }))
        .body as WebhookDeliveryView[];
      return rows.find((d) => d.status === 'delivered');
    });
    expect(log.log[0]).toMatchObject({ attempt: 1, statusCode: 302 });
    expect(log.log[0]!.error).toMatch(/redirect not followed/);
    expect(log.log[1]).toMatchObject({ attempt: 2, statusCode: 204, error: null });
  });

  it('marks a delivery failed after its last attempt, with every attempt logged', async () => {
    const created = await api(hub, 'POST', '/api/webhooks', {
      headers: admin,
      json: { url: receiver.url, events: ['study.failed'] },
    });
    const { endpoint } = created.body as CreatedWebhookView;
    receiver.answers.push(500, 503);
    const queued = (await api(hub, 'POST', `/api/webhooks/${endpoint.id}/test`, { headers: admin }))
      .body as WebhookDeliveryView;
    const deliveries = () => api(hub, 'GET', `/api/webhooks/${endpoint.id}/deliveries`, { headers: admin });
    await until('the first failed attempt', async () => {
      const [d] = (await deliveries()).body as WebhookDeliveryView[];
      return d?.status === 'pending' && d.log.length === 1 ? d : undefined;
    });
    // Seven attempts take minutes even at a 1 s base: the stored count is moved on to the last attempt instead.
    await hub.app
      .get(DataSource)
      .query(`UPDATE webhook_deliveries SET attempts = $2, next_attempt_at = now() WHERE id = $1`, [
        queued.id,
        MAX_WEBHOOK_ATTEMPTS - 1,
      ]);
    const failed = await until('the delivery marked failed', async () => {
      const [d] = (await deliveries()).body as WebhookDeliveryView[];
      return d?.status === 'failed' ? d : undefined;
    });
    expect(failed).toMatchObject({ attempts: MAX_WEBHOOK_ATTEMPTS, nextAttemptAt: null });
    expect(failed.finishedAt).not.toBeNull();
    expect(failed.log.map((a) => [a.attempt, a.statusCode, a.error])).toEqual([
      [1, 500, 'HTTP 500'],
      [MAX_WEBHOOK_ATTEMPTS, 503, 'HTTP 503'],
    ]);
    const listed = (await api(hub, 'GET', `/api/webhooks/${endpoint.id}`, { headers: admin })).body;
    expect(listed).toMatchObject({ pending: 0, failed: 1 });
  });
});
