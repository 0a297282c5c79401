import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { RowLocks, UniqueViolation } from '../silos/in-memory-silos.test-util';
import { WebhookAttemptEntity, WebhookDeliveryEntity } from './webhook-delivery.entity';
import { WebhookEndpointEntity } from './webhook-endpoint.entity';
import type {
  AttemptRecord,
  AttemptVerdict,
  ClaimedDelivery,
  ClaimRule,
  FeedRecord,
  FeedUnitOfWork,
  WebhookOutboxRepository,
} from './webhook-outbox.repository';
import type { DeliveryCounts, DeliveryLog, WebhooksRepository, WebhooksUnitOfWork } from './webhooks.repository';

/** What WebhooksService reads and writes through. */
export type WebhooksPort = Pick<
  WebhooksRepository,
  'inTransaction' | 'endpoints' | 'findEndpoint' | 'deliveryCounts' | 'newestDeliveryIds' | 'deliveryLog'
>;
/** What WebhookOutbox reads and writes through. */
export type OutboxPort = Pick<
  WebhookOutboxRepository,
  'hasNewRecords' | 'hasDueWork' | 'inFeedTransaction' | 'expireLapsed' | 'claimDue' | 'recordAttempt'
>;

const copy = <T extends object>(row: T): T =>
  Object.assign(Object.create(Object.getPrototypeOf(row) as object) as T, row);

/**
 * `webhook_endpoints`, `webhook_deliveries`, `webhook_attempts`, `webhook_feed` and the `audit_records` the feed
 * reads, in memory, on a clock the spec moves (`advance`, ms; the database's `now()`). Keeps what the tables and the
 * two repositories' statements guarantee: one delivery per endpoint and event (the unique key: the feed's
 * ON CONFLICT DO NOTHING skips, a second test delivery is refused), ON DELETE CASCADE from an endpoint to its
 * deliveries and log, the endpoint's row lock held until the transaction ends (FIFO), the feed position locked with
 * SKIP LOCKED (a second feeder gets nothing), each claim, expiry and attempt record as one atomic statement with the
 * claim check (`claim = $2`), and commits only when the work resolves: reads see what committed before them (no
 * statement of these services reads its own transaction's uncommitted writes). `openTransaction()` says which
 * transaction the running code is in (as AmbientTransactions does for the audit trail), `didCommit` whether it
 * committed; `statements` logs every repository call, in order.
 */
export class InMemoryWebhooks implements WebhooksPort, OutboxPort {
  private clock = Date.UTC(2026, 11, 7, 12);
  private readonly endpointRows = new Map<string, WebhookEndpointEntity>();
  private readonly deliveryRows = new Map<string, WebhookDeliveryEntity>();
  private attemptRows: WebhookAttemptEntity[] = [];
  private readonly audit: FeedRecord[] = [];
  private feedSeq = 0;
  private feedHeld = false;
  private attemptIds = 0;
  private readonly locks = new RowLocks();
  private readonly context = new AsyncLocalStorage<number>();
  private readonly committedIds = new Set<number>();
  private transactions = 0;
  readonly statements: string[] = [];

  get now(): Date {
    return new Date(this.clock);
  }

  advance(ms: number): void {
    this.clock += ms;
  }

  openTransaction(): number | undefined {
    return this.context.getStore();
  }

  didCommit(transaction: number): boolean {
    return this.committedIds.has(transaction);
  }

  // --- given state and assertions -------------------------------------------------------------------------------

  seedEndpoint(
    fields: Partial<WebhookEndpointEntity> & Pick<WebhookEndpointEntity, 'url' | 'events'>,
  ): WebhookEndpointEntity {
    const endpoint = this.newEndpoint({ description: '', enabled: true, secret: 'whsec_seed', ...fields });
    this.endpointRows.set(endpoint.id, endpoint);
    return copy(endpoint);
  }

  /** An audit record committed by some feature; returns its seq. */
  seedAuditRecord(action: string, subject: FeedRecord['subject'], details: FeedRecord['details'] = {}): number {
    const seq = this.audit.length + 1;
    this.audit.push({ seq: String(seq), time: this.now.toISOString(), action, subject, details });
    return seq;
  }

  seedDelivery(
    endpointId: string,
    eventId: string,
    fields: Partial<WebhookDeliveryEntity> = {},
  ): WebhookDeliveryEntity {
    const d = this.newDelivery(endpointId, { id: eventId, type: 'webhook.test', body: '{}' });
    Object.assign(d, fields);
    this.deliveryRows.set(d.id, d);
    return copy(d);
  }

  setEnabled(endpointId: string, enabled: boolean): void {
    this.endpointRows.get(endpointId)!.enabled = enabled;
  }

  deleteEndpointNow(endpointId: string): void {
    this.cascadeDelete(endpointId);
  }

  get feedPosition(): number {
    return this.feedSeq;
  }

  get deliveries(): WebhookDeliveryEntity[] {
    return [...this.deliveryRows.values()].map(copy);
  }

  delivery(id: string): WebhookDeliveryEntity | undefined {
    const d = this.deliveryRows.get(id);
    return d ? copy(d) : undefined;
  }

  get attempts(): WebhookAttemptEntity[] {
    return this.attemptRows.map(copy);
  }

  endpoint(id: string): WebhookEndpointEntity | undefined {
    const e = this.endpointRows.get(id);
    return e ? copy(e) : undefined;
  }

  // --- WebhooksRepository ---------------------------------------------------------------------------------------

  async inTransaction<T>(work: (tx: WebhooksUnitOfWork) => Promise<T>): Promise<T> {
    this.statements.push('inTransaction');
    return this.run(async (pending, releases) => {
      const tx: WebhooksUnitOfWork = {
        lockEndpoint: async (id) => {
          if (!this.endpointRows.has(id)) return null;
          releases.push(await this.locks.acquire(`endpoint:${id}`));
          const row = this.endpointRows.get(id); // the newest version, once the lock is held
          return row ? copy(row) : null;
        },
        insertEndpoint: (fields) => {
          const endpoint = this.newEndpoint(fields);
          pending.push(() => this.endpointRows.set(endpoint.id, endpoint));
          return Promise.resolve(copy(endpoint));
        },
        updateEndpoint: (id, fields) => {
          pending.push(() => {
            const row = this.endpointRows.get(id);
            if (row) Object.assign(row, fields);
          });
          return Promise.resolve();
        },
        deleteEndpoint: (id) => {
          pending.push(() => this.cascadeDelete(id));
          return Promise.resolve();
        },
        queueDelivery: (endpointId, event) => {
          const d = this.newDelivery(endpointId, event);
          const clash = () =>
            [...this.deliveryRows.values()].some((x) => x.endpointId === endpointId && x.eventId === event.id);
          if (clash()) return Promise.reject(new UniqueViolation('webhook_deliveries_endpoint_id_event_id_key'));
          pending.push(() => {
            if (clash()) throw new UniqueViolation('webhook_deliveries_endpoint_id_event_id_key');
            this.deliveryRows.set(d.id, d);
          });
          return Promise.resolve(d.id);
        },
      };
      return work(tx);
    });
  }

  endpoints(): Promise<WebhookEndpointEntity[]> {
    this.statements.push('endpoints');
    return Promise.resolve(
      [...this.endpointRows.values()].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime()).map(copy),
    );
  }

  findEndpoint(id: string): Promise<WebhookEndpointEntity | null> {
    this.statements.push('findEndpoint');
    return Promise.resolve(this.endpoint(id) ?? null);
  }

  deliveryCounts(endpointIds: string[]): Promise<Map<string, DeliveryCounts>> {
    this.statements.push('deliveryCounts');
    const counts = new Map<string, DeliveryCounts>();
    for (const d of this.deliveryRows.values()) {
      if (!endpointIds.includes(d.endpointId)) continue;
      const c = counts.get(d.endpointId) ?? { pending: 0, failed: 0 };
      if (d.status === 'pending' || d.status === 'delivering') c.pending += 1;
      if (d.status === 'failed') c.failed += 1;
      counts.set(d.endpointId, c);
    }
    return Promise.resolve(counts);
  }

  newestDeliveryIds(endpointId: string, limit: number): Promise<string[]> {
    this.statements.push('newestDeliveryIds');
    const rows = [...this.deliveryRows.values()]
      .filter((d) => d.endpointId === endpointId)
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || a.id.localeCompare(b.id));
    return Promise.resolve(rows.slice(0, limit).map((d) => d.id));
  }

  deliveryLog(deliveryIds: string[]): Promise<DeliveryLog> {
    this.statements.push('deliveryLog');
    return Promise.resolve({
      deliveries: deliveryIds.flatMap((id) => (this.deliveryRows.has(id) ? [copy(this.deliveryRows.get(id)!)] : [])),
      attempts: this.attemptRows.filter((a) => deliveryIds.includes(a.deliveryId)).map(copy),
    });
  }

  // --- WebhookOutboxRepository ----------------------------------------------------------------------------------

  async hasNewRecords(): Promise<boolean> {
    this.statements.push('hasNewRecords');
    await Promise.resolve();
    return this.audit.some((r) => Number(r.seq) > this.feedSeq);
  }

  async hasDueWork(): Promise<boolean> {
    this.statements.push('hasDueWork');
    await Promise.resolve();
    return [...this.deliveryRows.values()].some((d) => this.endpointRows.get(d.endpointId)?.enabled && this.isDue(d));
  }

  async inFeedTransaction<T>(work: (tx: FeedUnitOfWork) => Promise<T>): Promise<T> {
    this.statements.push('inFeedTransaction');
    return this.run(async (pending, releases) => {
      const tx: FeedUnitOfWork = {
        lockPosition: async () => {
          await Promise.resolve();
          if (this.feedHeld) return null; // SKIP LOCKED: another feeder holds the row
          this.feedHeld = true;
          releases.push(() => (this.feedHeld = false));
          return String(this.feedSeq);
        },
        recordsAfter: async (seq, limit) => {
          await Promise.resolve();
          return this.audit
            .filter((r) => Number(r.seq) > Number(seq))
            .slice(0, limit)
            .map((r) => ({ ...r }));
        },
        enabledSubscriptions: async () => {
          await Promise.resolve();
          return [...this.endpointRows.values()]
            .filter((e) => e.enabled)
            .map((e) => ({ id: e.id, events: [...e.events] }));
        },
        queue: async (endpointId, event) => {
          await Promise.resolve();
          pending.push(() => {
            const exists = [...this.deliveryRows.values()].some(
              (x) => x.endpointId === endpointId && x.eventId === event.id,
            );
            if (exists || !this.endpointRows.has(endpointId)) return; // ON CONFLICT DO NOTHING
            const d = this.newDelivery(endpointId, event);
            this.deliveryRows.set(d.id, d);
          });
        },
        advanceTo: async (seq) => {
          await Promise.resolve();
          pending.push(() => (this.feedSeq = Number(seq)));
        },
      };
      return work(tx);
    });
  }

  async expireLapsed(maxAttempts: number): Promise<void> {
    this.statements.push('expireLapsed');
    await Promise.resolve();
    for (const d of this.deliveryRows.values()) {
      if (d.status === 'delivering' && d.leaseUntil!.getTime() < this.clock && d.attempts >= maxAttempts) {
        Object.assign(d, { status: 'failed', claim: null, leaseUntil: null, finishedAt: this.now });
      }
    }
  }

  async claimDue(rule: ClaimRule): Promise<ClaimedDelivery[]> {
    this.statements.push('claimDue');
    await Promise.resolve();
    const due = [...this.deliveryRows.values()]
      .filter((d) => this.endpointRows.get(d.endpointId)?.enabled && d.attempts < rule.maxAttempts && this.isDue(d))
      .sort((a, b) => a.nextAttemptAt.getTime() - b.nextAttemptAt.getTime())
      .slice(0, rule.batch);
    return due.map((d) => {
      Object.assign(d, {
        status: 'delivering',
        claim: rule.claim,
        attempts: d.attempts + 1,
        leaseUntil: new Date(this.clock + rule.leaseSeconds * 1000),
      });
      const e = this.endpointRows.get(d.endpointId)!;
      return {
        id: d.id,
        endpointId: d.endpointId,
        eventType: d.eventType,
        body: d.body,
        attempts: d.attempts,
        url: e.url,
        secret: e.secret,
        claim: rule.claim,
      };
    });
  }

  async recordAttempt(d: ClaimedDelivery, attempt: AttemptRecord, verdict: AttemptVerdict): Promise<void> {
    this.statements.push('recordAttempt');
    await Promise.resolve();
    const row = this.deliveryRows.get(d.id);
    if (!row) return; // the endpoint (and with it the delivery) was deleted: nothing logged
    this.attemptRows.push(
      Object.assign(new WebhookAttemptEntity(), {
        id: String(++this.attemptIds),
        deliveryId: d.id,
        endpointId: d.endpointId,
        attempt: d.attempts,
        ...attempt,
      }),
    );
    if (row.claim !== d.claim) return;
    Object.assign(row, {
      status: verdict.status,
      claim: null,
      leaseUntil: null,
      nextAttemptAt:
        verdict.status === 'pending' ? new Date(this.clock + verdict.delaySeconds * 1000) : row.nextAttemptAt,
      finishedAt: verdict.status === 'pending' ? null : this.now,
    });
  }

  // --- inside ---------------------------------------------------------------------------------------------------

  private async run<T>(work: (pending: (() => void)[], releases: (() => void)[]) => Promise<T>): Promise<T> {
    const id = ++this.transactions;
    const pending: (() => void)[] = [];
    const releases: (() => void)[] = [];
    try {
      const result = await this.context.run(id, () => work(pending, releases));
      for (const apply of pending) apply();
      this.committedIds.add(id);
      return result;
    } finally {
      for (const release of releases) release();
    }
  }

  private isDue(d: WebhookDeliveryEntity): boolean {
    return (
      (d.status === 'pending' && d.nextAttemptAt.getTime() <= this.clock) ||
      (d.status === 'delivering' && d.leaseUntil!.getTime() < this.clock)
    );
  }

  private cascadeDelete(endpointId: string): void {
    this.endpointRows.delete(endpointId);
    for (const [id, d] of this.deliveryRows) if (d.endpointId === endpointId) this.deliveryRows.delete(id);
    this.attemptRows = this.attemptRows.filter((a) => a.endpointId !== endpointId);
  }

  /** A strictly increasing creation time, so "oldest first" is well defined within one tick of the clock. */
  private created(): Date {
    const latest = Math.max(
      0,
      ...[...this.endpointRows.values(), ...this.deliveryRows.values()].map((r) => r.createdAt.getTime()),
    );
    return new Date(Math.max(this.clock, latest + 1));
  }

  private newEndpoint(fields: Omit<WebhookEndpointEntity, 'id' | 'createdAt' | 'updatedAt'>): WebhookEndpointEntity {
    const at = this.created();
    return Object.assign(new WebhookEndpointEntity(), { id: randomUUID(), createdAt: at, updatedAt: at }, fields, {
      events: [...fields.events],
    });
  }

  private newDelivery(endpointId: string, event: { id: string; type: string; body: string }): WebhookDeliveryEntity {
    return Object.assign(new WebhookDeliveryEntity(), {
      id: randomUUID(),
      endpointId,
      eventId: event.id,
      eventType: event.type,
      body: event.body,
      status: 'pending' as const,
      attempts: 0,
      nextAttemptAt: this.now,
      claim: null,
      leaseUntil: null,
      createdAt: this.created(),
      finishedAt: null,
    });
  }
}
