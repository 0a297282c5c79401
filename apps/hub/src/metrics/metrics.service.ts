import { Injectable, Optional } from '@nestjs/common';
import type { Socket } from 'node:net';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import { ReadCache } from '../database/read-cache';

/** The hub's Prometheus registry: process metrics plus request durations by route (never by raw URL). */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  readonly httpDuration = new Histogram({
    name: 'tessera_http_request_duration_seconds',
    help: 'HTTP request duration by listener, method, route template and status.',
    labelNames: ['listener', 'method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  /** Bytes on the wire (TLS records included) per listener, counted when each connection closes. */
  readonly wireBytes = new Counter({
    name: 'tessera_listener_bytes_total',
    help: 'Bytes received and sent on the silo and enrollment listeners, TLS included, counted when a connection closes.',
    labelNames: ['listener', 'direction'] as const,
    registers: [this.registry],
  });
  readonly connections = new Counter({
    name: 'tessera_listener_connections_total',
    help: 'Connections accepted by the silo and enrollment listeners (each one a TLS handshake).',
    labelNames: ['listener'] as const,
    registers: [this.registry],
  });

  /** Counts a listener's connections and, when each closes, its bytes both ways. */
  countConnection(listener: 'silo' | 'enroll', socket: Socket): void {
    this.connections.inc({ listener });
    socket.once('close', () => {
      this.wireBytes.inc({ listener, direction: 'received' }, socket.bytesRead);
      this.wireBytes.inc({ listener, direction: 'sent' }, socket.bytesWritten);
    });
  }

  /** Totals over both listeners since the hub started: connections, and bytes both ways of the closed ones. */
  async wireTotals(): Promise<{ connections: number; bytes: number }> {
    const sum = (values: { value: number }[]) => values.reduce((a, v) => a + v.value, 0);
    return {
      connections: sum((await this.connections.get()).values),
      bytes: sum((await this.wireBytes.get()).values),
    };
  }

  constructor(@Optional() cache?: ReadCache) {
    collectDefaultMetrics({ register: this.registry, prefix: 'tessera_' });
    if (cache?.enabled) this.countReads(cache);
  }

  /**
   * The embedded database's read cache: how console and agent reads were served, how many computations ran, and the
   * statements the database's connection was sent (ADR 0002). Counted by the cache; copied here when scraped.
   */
  private countReads(cache: ReadCache): void {
    const registers = [this.registry];
    const copied = new Map<string, number>();
    /** Moves `counter` (with `labels`) up to `total`, which only grows. */
    const follow = (name: string, counter: Counter<string>, labels: Record<string, string>, total: number) => {
      const key = `${name}${JSON.stringify(labels)}`;
      counter.inc(labels, total - (copied.get(key) ?? 0));
      copied.set(key, total);
    };
    new Counter({
      name: 'tessera_read_cache_requests_total',
      help: 'Reads through the cache by outcome: a kept result (hit), a share of a computation in flight (joined) or of the next one (queued), or a computation of their own (computed).',
      labelNames: ['outcome'] as const,
      registers,
      collect() {
        for (const [outcome, total] of Object.entries(cache.outcomes)) follow('requests', this, { outcome }, total);
      },
    });
    new Counter({
      name: 'tessera_read_cache_computations_total',
      help: 'Computations the read cache started (each one or more statements).',
      registers,
      collect() {
        follow('computations', this, {}, cache.computations);
      },
    });
    new Counter({
      name: 'tessera_database_statements_total',
      help: 'Statements sent to the embedded database, by whether they may change data (write) or only read.',
      labelNames: ['kind'] as const,
      registers,
      collect() {
        for (const [kind, total] of Object.entries(cache.statements ?? {})) follow('statements', this, { kind }, total);
      },
    });
  }
}
