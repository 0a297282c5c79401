import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, In, type EntityManager } from 'typeorm';
import { WebhookAttemptEntity, WebhookDeliveryEntity } from './webhook-delivery.entity';
import { WebhookEndpointEntity } from './webhook-endpoint.entity';

/** An endpoint's fields as an administrator sets them (the secret at creation only). */
export interface EndpointFields {
  url: string;
  events: string[];
  description: string;
  enabled: boolean;
}

/** Deliveries of one endpoint not yet settled (pending or being sent), and those that ran out of attempts. */
export interface DeliveryCounts {
  pending: number;
  failed: number;
}

/** Deliveries with their attempts, oldest attempt first. */
export interface DeliveryLog {
  deliveries: WebhookDeliveryEntity[];
  attempts: WebhookAttemptEntity[];
}

/**
 * One transaction of an administrator's change to an endpoint. The audit trail joins it on its own
 * (AmbientTransactions), so the change and its record commit together.
 */
export interface WebhooksUnitOfWork {
  /** The endpoint, its row locked until the transaction ends (FOR UPDATE); null when there is none. */
  lockEndpoint(id: string): Promise<WebhookEndpointEntity | null>;
  insertEndpoint(fields: EndpointFields & { secret: string }): Promise<WebhookEndpointEntity>;
  updateEndpoint(id: string, fields: EndpointFields & { updatedAt: Date }): Promise<void>;
  /** Deletes the endpoint; its deliveries and their log go with it (ON DELETE CASCADE). */
  deleteEndpoint(id: string): Promise<void>;
  /** Queues an event for one endpoint, due at once; returns the delivery's id. */
  queueDelivery(endpointId: string, event: { id: string; type: string; body: string }): Promise<string>;
}

/**
 * The administrators' side of notifications: with WebhookOutboxRepository, the only code of notifications/ that runs
 * SQL or uses TypeORM (`webhook_endpoints`, and `webhook_deliveries` and `webhook_attempts` as the delivery log).
 * WebhooksService keeps the rules; its unit spec replaces this with a double (in-memory-webhooks.test-util.ts).
 */
@Injectable()
export class WebhooksRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  /** Runs `work` in one transaction; it commits when `work` resolves. */
  inTransaction<T>(work: (tx: WebhooksUnitOfWork) => Promise<T>): Promise<T> {
    return this.db.transaction((manager) => work(unitOfWork(manager)));
  }

  /** Every endpoint, oldest first. */
  endpoints(): Promise<WebhookEndpointEntity[]> {
    return this.db.getRepository(WebhookEndpointEntity).find({ order: { createdAt: 'ASC' } });
  }

  findEndpoint(id: string): Promise<WebhookEndpointEntity | null> {
    return this.db.getRepository(WebhookEndpointEntity).findOne({ where: { id } });
  }

  /** Per endpoint that has deliveries, how many are unsettled and how many failed. */
  async deliveryCounts(endpointIds: string[]): Promise<Map<string, DeliveryCounts>> {
    const rows = await this.db.query<{ id: string; pending: number; failed: number }[]>(
      `SELECT endpoint_id::text AS id,
              count(*) FILTER (WHERE status IN ('pending', 'delivering'))::int AS pending,
              count(*) FILTER (WHERE status = 'failed')::int AS failed
         FROM webhook_deliveries WHERE endpoint_id = ANY($1::uuid[]) GROUP BY endpoint_id`,
      [endpointIds],
    );
    return new Map(rows.map((r) => [r.id, { pending: r.pending, failed: r.failed }]));
  }

  /** The ids of an endpoint's newest deliveries, at most `limit`. */
  async newestDeliveryIds(endpointId: string, limit: number): Promise<string[]> {
    const rows = await this.db.getRepository(WebhookDeliveryEntity).find({
      select: { id: true },
      where: { endpointId },
      order: { createdAt: 'DESC', id: 'ASC' },
      take: limit,
    });
    return rows.map((r) => r.id);
  }

  /** These deliveries (those that exist) and their attempts. */
  async deliveryLog(deliveryIds: string[]): Promise<DeliveryLog> {
    const deliveries = await this.db.getRepository(WebhookDeliveryEntity).find({ where: { id: In(deliveryIds) } });
    const attempts = await this.db
      .getRepository(WebhookAttemptEntity)
      .find({ where: { deliveryId: In(deliveryIds) }, order: { id: 'ASC' } });
    return { deliveries, attempts };
  }
}

function unitOfWork(tx: EntityManager): WebhooksUnitOfWork {
  const endpoints = tx.getRepository(WebhookEndpointEntity);
  return {
    lockEndpoint: (id) => endpoints.findOne({ where: { id }, lock: { mode: 'pessimistic_write' } }),
    insertEndpoint: (fields) => endpoints.save(fields),
    updateEndpoint: async (id, fields) => {
      await endpoints.update(id, fields);
    },
    deleteEndpoint: async (id) => {
      await endpoints.delete(id);
    },
    queueDelivery: async (endpointId, event) => {
      const saved = await tx.getRepository(WebhookDeliveryEntity).save({
        endpointId,
        eventId: event.id,
        eventType: event.type,
        body: event.body,
        status: 'pending',
        attempts: 0,
        nextAttemptAt: new Date(),
        createdAt: new Date(),
      });
      return saved.id;
    },
  };
}
