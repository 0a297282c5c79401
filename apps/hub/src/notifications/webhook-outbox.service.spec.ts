import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PinoLogger } from 'nestjs-pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { HubConfig } from '../config/config.schema';
import { InMemoryWebhooks } from './in-memory-webhooks.test-util';
import type { WebhookOutboxRepository } from './webhook-outbox.repository';
import { WebhookOutbox } from './webhook-outbox.service';
import { MAX_WEBHOOK_ATTEMPTS } from './webhook-retry.util';
import { WEBHOOK_HEADERS } from './webhook-signature.util';

const STUDY = { studyId: '5b0e7c1a-3f5e-4a57-9c56-1f3a7d2b9e40' };
const BASE_SECONDS = 10;

interface Received {
  deliveryId: string;
  attempt: number;
  event: string;
  body: string;
}

/** A receiver on a local port; `answer` decides each request's fate (a status, or a response held until later). */
class Receiver {
  readonly received: Received[] = [];
  answer: (req: Received, res: ServerResponse) => void = (_req, res) => void res.writeHead(200).end();
  private server: Server | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req: IncomingMessage, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const r = {
          deliveryId: String(req.headers[WEBHOOK_HEADERS.id]),
          attempt: Number(req.headers[WEBHOOK_HEADERS.attempt]),
          event: String(req.headers[WEBHOOK_HEADERS.event]),
          body: Buffer.concat(chunks).toString('utf8'),
        };
        this.received.push(r);
        this.answer(r, res);
      });
    });
    await new Promise<void>((done) => this.server!.listen(0, '127.0.0.1', done));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((done) => (this.server ? this.server.close(done) : done(undefined)));
  }
}

describe('WebhookOutbox over its repository', () => {
  let db: InMemoryWebhooks;
  let receiver: Receiver;
  const warnings: unknown[] = [];
  /** One replica of the hub's outbox (several share one database). */
  const replica = () =>
    new WebhookOutbox(
      db as unknown as WebhookOutboxRepository,
      { webhookRetryBaseSeconds: BASE_SECONDS } as HubConfig,
      { warn: (o: unknown) => void warnings.push(o), error: () => undefined } as unknown as PinoLogger,
    );

  beforeEach(async () => {
    db = new InMemoryWebhooks();
    receiver = new Receiver();
    warnings.length = 0;
    await receiver.start();
  });
  afterEach(() => receiver.stop());

  it('queues each notified audit record once per subscribed enabled endpoint, and skips the rest', async () => {
    const both = db.seedEndpoint({ url: receiver.url, events: ['study.started', 'study.completed'] });
    const completedOnly = db.seedEndpoint({ url: receiver.url, events: ['study.completed'] });
    db.seedEndpoint({ url: receiver.url, events: ['study.started'], enabled: false });
    db.seedAuditRecord('silo.registered', {}, { name: 'Basel' });
    const started = db.seedAuditRecord('study.started', STUDY, { participants: ['a'], planHash: 'h', secret: 'x' });
    const completed = db.seedAuditRecord('study.completed', STUDY, { finalModelHash: 'm' });

    expect(await replica().feed()).toBe(3);
    expect(db.feedPosition).toBe(3);
    const queued = db.deliveries.map((d) => [d.endpointId, d.eventId, d.status]).sort();
    expect(queued).toEqual(
      [
        [both.id, `audit-${started}`, 'pending'],
        [both.id, `audit-${completed}`, 'pending'],
        [completedOnly.id, `audit-${completed}`, 'pending'],
      ].sort(),
    );
    const body = JSON.parse(db.deliveries.find((d) => d.eventId === `audit-${started}`)!.body) as { data: object };
    expect(body.data).toEqual({ studyId: STUDY.studyId, participants: ['a'], planHash: 'h' });
    expect(await replica().feed()).toBe(0);
    expect(db.deliveries).toHaveLength(3);
  });

  it('feeds a long backlog in batches within one poll', async () => {
    db.seedEndpoint({ url: receiver.url, events: ['study.paused'] });
    for (let i = 0; i < 1001; i += 1) db.seedAuditRecord('study.paused', STUDY, { reason: `r${i}` });
    await replica().poll();
    expect(db.feedPosition).toBe(1001);
    expect(db.deliveries).toHaveLength(1001);
    expect(db.statements.filter((s) => s === 'inFeedTransaction')).toHaveLength(3); // 500 + 500 + 1
    expect(receiver.received).toHaveLength(16); // one claim's batch per poll
  });

  it('two replicas feeding at once queue each event once: the second finds the position held and skips', async () => {
    db.seedEndpoint({ url: receiver.url, events: ['study.stopped'] });
    for (let i = 0; i < 5; i += 1) db.seedAuditRecord('study.stopped', STUDY, { reason: 'operator' });
    const fed = await Promise.all([replica().feed(), replica().feed()]);
    expect(fed.sort()).toEqual([0, 5]);
    expect(db.deliveries).toHaveLength(5);
  });

  it('two replicas polling at once send each delivery once, with one attempt each', async () => {
    const endpoint = db.seedEndpoint({ url: receiver.url, events: ['webhook.test'] });
    for (let i = 0; i < 20; i += 1) db.seedDelivery(endpoint.id, `test-${i}`);
    const [a, b] = [replica(), replica()];
    await Promise.all([a.poll(), b.poll()]);
    expect(receiver.received).toHaveLength(20);
    expect(new Set(receiver.received.map((r) => r.deliveryId)).size).toBe(20);
    expect(receiver.received.every((r) => r.attempt === 1)).toBe(true);
    expect(db.deliveries.every((d) => d.status === 'delivered' && d.attempts === 1 && d.claim === null)).toBe(true);
    expect(db.attempts).toHaveLength(20);
    await Promise.all([a.poll(), b.poll()]);
    expect(receiver.received).toHaveLength(20);
  });

  it('retries a failed attempt after an exponential, jittered wait, and logs every attempt', async () => {
    const endpoint = db.seedEndpoint({ url: receiver.url, events: ['webhook.test'] });
    const { id } = db.seedDelivery(endpoint.id, 'test-retry');
    receiver.answer = (_r, res) => void res.writeHead(500).end();
    const outbox = replica();
    await outbox.poll();
    const first = db.delivery(id)!;
    const wait1 = first.nextAttemptAt.getTime() - db.now.getTime();
    expect(first).toMatchObject({ status: 'pending', attempts: 1, claim: null, finishedAt: null });
    expect(wait1).toBeGreaterThanOrEqual((BASE_SECONDS * 1000) / 2);
    expect(wait1).toBeLessThanOrEqual(BASE_SECONDS * 1000);
    expect(db.attempts.map((a) => [a.attempt, a.statusCode, a.error])).toEqual([[1, 500, 'HTTP 500']]);
    expect(warnings).toHaveLength(1);

    db.advance(wait1 - 1);
    await outbox.poll();
    expect(receiver.received).toHaveLength(1); // not due yet
    db.advance(1);
    await outbox.poll();
    expect(receiver.received.map((r) => r.attempt)).toEqual([1, 2]);
    const wait2 = db.delivery(id)!.nextAttemptAt.getTime() - db.now.getTime();
    expect(wait2).toBeGreaterThanOrEqual(BASE_SECONDS * 1000);
    expect(wait2).toBeLessThanOrEqual(2 * BASE_SECONDS * 1000);

    receiver.answer = (_r, res) => void res.writeHead(204).end();
    db.advance(wait2);
    await outbox.poll();
    expect(db.delivery(id)).toMatchObject({ status: 'delivered', attempts: 3, finishedAt: db.now });
    expect(db.attempts.map((a) => [a.attempt, a.statusCode, a.error])).toEqual([
      [1, 500, 'HTTP 500'],
      [2, 500, 'HTTP 500'],
      [3, 204, null],
    ]);
  });

  it('gives up after the last attempt, and never sends the delivery again', async () => {
    const endpoint = db.seedEndpoint({ url: receiver.url, events: ['webhook.test'] });
    const { id } = db.seedDelivery(endpoint.id, 'test-last', { attempts: MAX_WEBHOOK_ATTEMPTS - 1 });
    receiver.answer = (_r, res) => void res.writeHead(503).end();
    const outbox = replica();
    await outbox.poll();
    expect(receiver.received.map((r) => r.attempt)).toEqual([MAX_WEBHOOK_ATTEMPTS]);
    expect(db.delivery(id)).toMatchObject({ status: 'failed', attempts: MAX_WEBHOOK_ATTEMPTS, finishedAt: db.now });
    db.advance(86_400_000);
    await outbox.poll();
    expect(receiver.received).toHaveLength(1);
  });

  it("takes over the claim of a replica that went quiet, and the late answer cannot undo the other's delivery", async () => {
    const endpoint = db.seedEndpoint({ url: receiver.url, events: ['webhook.test'] });
    const { id } = db.seedDelivery(endpoint.id, 'test-lapsed');
    let held: ServerResponse | undefined;
    receiver.answer = (r, res) => {
      if (r.attempt === 1) held = res;
      else res.writeHead(200).end();
    };
    const slow = replica().poll();
    await vi.waitFor(() => expect(held).toBeDefined());
    expect(db.delivery(id)).toMatchObject({ status: 'delivering', attempts: 1 });

    const other = replica();
    await other.poll();
    expect(receiver.received).toHaveLength(1); // the lease still holds
    db.advance(60_001);
    await other.poll();
    expect(receiver.received.map((r) => r.attempt)).toEqual([1, 2]);
    expect(db.delivery(id)).toMatchObject({ status: 'delivered', attempts: 2 });

    held!.writeHead(500).end();
    await slow;
    expect(db.delivery(id)).toMatchObject({ status: 'delivered', attempts: 2, claim: null });
    expect(db.attempts.map((a) => [a.attempt, a.statusCode])).toEqual([
      [2, 200],
      [1, 500],
    ]);
  });

  it("a lapsed claim's answer arriving while the newer claim is still sending leaves the delivery to the newer one", async () => {
    const endpoint = db.seedEndpoint({ url: receiver.url, events: ['webhook.test'] });
    const { id } = db.seedDelivery(endpoint.id, 'test-overlap');
    const held = new Map<number, ServerResponse>();
    receiver.answer = (r, res) => void held.set(r.attempt, res);
    const first = replica().poll();
    await vi.waitFor(() => expect(held.has(1)).toBe(true));
    db.advance(60_001);
    const second = replica().poll();
    await vi.waitFor(() => expect(held.has(2)).toBe(true));

    held.get(1)!.writeHead(500).end(); // the quiet replica's answer comes back first: logged, nothing else
    await first;
    expect(db.delivery(id)).toMatchObject({ status: 'delivering', attempts: 2 });
    held.get(2)!.writeHead(200).end();
    await second;
    expect(db.delivery(id)).toMatchObject({ status: 'delivered', attempts: 2, claim: null });
    expect(db.attempts.map((a) => [a.attempt, a.statusCode])).toEqual([
      [1, 500],
      [2, 200],
    ]);
  });

  it('ends as failed a delivery whose claim lapsed after its last attempt, without sending it', async () => {
    const endpoint = db.seedEndpoint({ url: receiver.url, events: ['webhook.test'] });
    const { id } = db.seedDelivery(endpoint.id, 'test-dead', {
      status: 'delivering',
      attempts: MAX_WEBHOOK_ATTEMPTS,
      claim: '0b7d3f7e-5a43-4a1c-8d47-2f8f0f4a9c11',
      leaseUntil: new Date(db.now.getTime() - 1),
    });
    await replica().poll();
    expect(receiver.received).toEqual([]);
    expect(db.delivery(id)).toMatchObject({ status: 'failed', claim: null, leaseUntil: null, finishedAt: db.now });
  });

  it("holds a disabled endpoint's deliveries until it is enabled again", async () => {
    const endpoint = db.seedEndpoint({ url: receiver.url, events: ['webhook.test'], enabled: false });
    db.seedDelivery(endpoint.id, 'test-held');
    const outbox = replica();
    await outbox.poll();
    expect(receiver.received).toEqual([]);
    db.setEnabled(endpoint.id, true);
    await outbox.poll();
    expect(receiver.received).toHaveLength(1);
  });

  it('logs nothing for a delivery whose endpoint was deleted while it was sent', async () => {
    const endpoint = db.seedEndpoint({ url: receiver.url, events: ['webhook.test'] });
    db.seedDelivery(endpoint.id, 'test-gone');
    receiver.answer = (_r, res) => {
      db.deleteEndpointNow(endpoint.id);
      res.writeHead(200).end();
    };
    await replica().poll();
    expect(receiver.received).toHaveLength(1);
    expect(db.deliveries).toEqual([]);
    expect(db.attempts).toEqual([]);
  });

  it('an idle poll only reads', async () => {
    db.seedEndpoint({ url: receiver.url, events: ['study.started'] });
    await replica().poll();
    expect(db.statements).toEqual(['hasNewRecords', 'hasDueWork']);
  });
});
