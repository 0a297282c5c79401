import { beforeEach, describe, expect, it } from 'vitest';
import type { AuditEvent, AuditTrail } from '../audit/audit-trail';
import { HubErrorCode, HubException } from '../common/hub.exception';
import type { HubConfig } from '../config/config.schema';
import { InMemoryWebhooks } from './in-memory-webhooks.test-util';
import type { WebhooksRepository } from './webhooks.repository';
import { WebhooksService } from './webhooks.service';

const ADMIN = { type: 'user', id: 'admin-1', name: 'root' } as const;
const URL_WITH_TOKEN = 'https://hooks.example.org/tessera?token=receiver-secret';

async function refusal(p: Promise<unknown>): Promise<HubException> {
  try {
    await p;
  } catch (err) {
    if (err instanceof HubException) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('WebhooksService over its repository', () => {
  let db: InMemoryWebhooks;
  let written: { event: AuditEvent; tx: number | undefined }[];
  let failRecords: boolean;
  let service: WebhooksService;
  /** The records kept: a record joins its transaction (AmbientTransactions) and is gone if it rolled back. */
  const records = () => written.filter((r) => r.tx !== undefined && db.didCommit(r.tx)).map((r) => r.event);

  beforeEach(() => {
    db = new InMemoryWebhooks();
    written = [];
    failRecords = false;
    const audit: AuditTrail = {
      record: (event: AuditEvent) => {
        if (failRecords) return Promise.reject(new Error('audit trail unavailable'));
        written.push({ event, tx: db.openTransaction() });
        return Promise.resolve();
      },
    };
    service = new WebhooksService(
      db as unknown as WebhooksRepository,
      { webhookAllowLoopbackHttp: false } as HubConfig,
      audit,
    );
  });

  it('creates an endpoint with a secret shown once, events deduplicated, and records it without the query string', async () => {
    const created = await service.create(
      { url: URL_WITH_TOKEN, events: ['study.started', 'round.closed', 'study.started'] },
      ADMIN,
    );
    expect(created.secret).toBe(db.endpoint(created.endpoint.id)!.secret);
    expect(JSON.stringify(created.endpoint)).not.toContain(created.secret);
    expect(created.endpoint).toMatchObject({
      url: URL_WITH_TOKEN,
      events: ['study.started', 'round.closed'],
      enabled: true,
      description: '',
      pending: 0,
      failed: 0,
    });
    expect(records()).toEqual([
      {
        actor: ADMIN,
        action: 'webhook.created',
        details: {
          endpointId: created.endpoint.id,
          url: 'https://hooks.example.org/tessera?…',
          events: ['study.started', 'round.closed'],
          enabled: true,
        },
      },
    ]);
  });

  it('refuses a bad endpoint with every problem at once, storing and recording nothing', async () => {
    const err = await refusal(service.create({ url: 'http://hooks.example.org/x', events: ['study.exploded'] }, ADMIN));
    expect(err.code).toBe(HubErrorCode.VALIDATION_FAILED);
    expect(err.message).toContain('https');
    expect(err.message).toContain('"study.exploded" is not an event this hub sends');
    expect(await service.list()).toEqual([]);
    expect(written).toEqual([]);
  });

  it('stores nothing when the record of a creation cannot be written', async () => {
    failRecords = true;
    await expect(service.create({ url: URL_WITH_TOKEN, events: ['study.started'] }, ADMIN)).rejects.toThrow(
      'audit trail unavailable',
    );
    expect(await service.list()).toEqual([]);
  });

  it('changes what is given, checks the result whole, and records which fields changed', async () => {
    const { endpoint } = await service.create({ url: URL_WITH_TOKEN, events: ['study.started'] }, ADMIN);
    const changed = await service.update(endpoint.id, { enabled: false, description: 'pager' }, ADMIN);
    expect(changed).toMatchObject({
      url: URL_WITH_TOKEN,
      events: ['study.started'],
      enabled: false,
      description: 'pager',
    });
    expect(records()[1]).toMatchObject({
      action: 'webhook.updated',
      details: { endpointId: endpoint.id, changed: ['enabled', 'description'], enabled: false },
    });
    const bad = await refusal(service.update(endpoint.id, { events: [] }, ADMIN));
    expect(bad.code).toBe(HubErrorCode.VALIDATION_FAILED);
    expect((await service.get(endpoint.id)).events).toEqual(['study.started']);
    expect(records()).toHaveLength(2);
    expect((await refusal(service.update('00000000-0000-4000-8000-000000000000', {}, ADMIN))).code).toBe(
      HubErrorCode.NOT_FOUND,
    );
  });

  it('deletes an endpoint with its deliveries and their log, and records that it existed', async () => {
    const { endpoint } = await service.create({ url: URL_WITH_TOKEN, events: ['study.started'] }, ADMIN);
    await service.sendTest(endpoint.id, ADMIN);
    await service.remove(endpoint.id, ADMIN);
    expect(db.deliveries).toEqual([]);
    expect((await refusal(service.get(endpoint.id))).code).toBe(HubErrorCode.NOT_FOUND);
    expect(records().map((r) => r.action)).toEqual(['webhook.created', 'webhook.test.queued', 'webhook.deleted']);
    expect(records()[2]!.details).toEqual({ endpointId: endpoint.id, url: 'https://hooks.example.org/tessera?…' });
  });

  it('an update waiting behind a deletion of its endpoint finds it gone', async () => {
    const { endpoint } = await service.create({ url: URL_WITH_TOKEN, events: ['study.started'] }, ADMIN);
    const [removed, updated] = await Promise.allSettled([
      service.remove(endpoint.id, ADMIN),
      service.update(endpoint.id, { description: 'too late' }, ADMIN),
    ]);
    expect(removed.status).toBe('fulfilled');
    expect(updated.status === 'rejected' && (updated.reason as HubException).code).toBe(HubErrorCode.NOT_FOUND);
    expect(records().map((r) => r.action)).toEqual(['webhook.created', 'webhook.deleted']);
  });

  it('two updates at once are applied one after the other, each recorded', async () => {
    const { endpoint } = await service.create({ url: URL_WITH_TOKEN, events: ['study.started'] }, ADMIN);
    await Promise.all([
      service.update(endpoint.id, { description: 'first' }, ADMIN),
      service.update(endpoint.id, { enabled: false }, ADMIN),
    ]);
    expect(await service.get(endpoint.id)).toMatchObject({ description: 'first', enabled: false });
    expect(records().map((r) => r.action)).toEqual(['webhook.created', 'webhook.updated', 'webhook.updated']);
  });

  it('queues a test event for an enabled endpoint only', async () => {
    const { endpoint } = await service.create(
      { url: URL_WITH_TOKEN, events: ['study.started'], enabled: false },
      ADMIN,
    );
    expect((await refusal(service.sendTest(endpoint.id, ADMIN))).code).toBe(HubErrorCode.CONFLICT);
    expect(db.deliveries).toEqual([]);
    await service.update(endpoint.id, { enabled: true }, ADMIN);
    const view = await service.sendTest(endpoint.id, ADMIN);
    expect(view).toMatchObject({
      eventType: 'webhook.test',
      status: 'pending',
      attempts: 0,
      log: [],
      finishedAt: null,
    });
    expect(JSON.parse(db.delivery(view.id)!.body)).toMatchObject({
      id: view.eventId,
      type: 'webhook.test',
      auditSeq: null,
      data: { endpointId: endpoint.id },
    });
    expect(records().map((r) => r.action)).toEqual(['webhook.created', 'webhook.updated', 'webhook.test.queued']);
    expect((await service.get(endpoint.id)).pending).toBe(1);
  });

  it('shows the delivery log newest first, within its bounds, with the attempts and the counts', async () => {
    const endpoint = db.seedEndpoint({ url: URL_WITH_TOKEN, events: ['study.started'] });
    const other = db.seedEndpoint({ url: URL_WITH_TOKEN, events: ['study.started'] });
    const old = db.seedDelivery(endpoint.id, 'audit-1', { status: 'failed', attempts: 8, finishedAt: db.now });
    db.advance(1000);
    db.seedDelivery(endpoint.id, 'audit-2', { status: 'delivering' });
    db.advance(1000);
    const newest = db.seedDelivery(endpoint.id, 'audit-3');
    db.seedDelivery(other.id, 'audit-3');
    await db.recordAttempt(
      {
        id: old.id,
        endpointId: endpoint.id,
        eventType: 'study.started',
        body: '{}',
        attempts: 1,
        url: '',
        secret: '',
        claim: '',
      },
      { at: db.now, statusCode: 500, durationMs: 12, error: 'HTTP 500' },
      { status: 'failed' },
    );
    const log = await service.deliveries(endpoint.id, 10);
    expect(log.map((d) => d.eventId)).toEqual(['audit-3', 'audit-2', 'audit-1']);
    expect(log[0]).toMatchObject({ id: newest.id, nextAttemptAt: newest.nextAttemptAt.toISOString() });
    expect(log[2]).toMatchObject({
      status: 'failed',
      nextAttemptAt: null,
      log: [{ attempt: 1, statusCode: 500, durationMs: 12, error: 'HTTP 500' }],
    });
    expect((await service.deliveries(endpoint.id, 0)).map((d) => d.eventId)).toEqual(['audit-3']);
    expect(await service.deliveries(endpoint.id, 10_000)).toHaveLength(3);
    expect((await service.list()).map((e) => [e.id, e.pending, e.failed])).toEqual([
      [endpoint.id, 2, 1],
      [other.id, 1, 0],
    ]);
    expect((await refusal(service.deliveries('00000000-0000-4000-8000-000000000000', 10))).code).toBe(
      HubErrorCode.NOT_FOUND,
    );
  });
});
